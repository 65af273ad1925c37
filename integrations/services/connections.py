"""The organization-wide RingCentral connection as its admins manage it (the web app's settings page):
connect — a bot's token, its person id and the platform URL, pasted from RingCentral's developer console
(Parley does no OAuth: tokens are stored as given, docs/integrations.md) — and disconnect (switched off,
kept: its teams stay linked and connecting again resumes them). Per-line connections stay in the admin."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from ..models import RingCentralConnection

DEFAULT_BASE_URL = RingCentralConnection._meta.get_field("base_url").get_default()


def ringcentral_connect(
    *, organization_id: int, bot_creator_id: str, bot_token: str = "", base_url: str = DEFAULT_BASE_URL
) -> RingCentralConnection:
    """Creates or updates the organization-wide connection and switches it on. An empty `bot_token` keeps
    the stored one (it is never shown, so a form cannot send it back). Refused: ValidationError naming the
    field, nothing saved."""
    bot_token, bot_creator_id, base_url = bot_token.strip(), bot_creator_id.strip(), base_url.strip()
    errors: dict[str, list[str]] = {}
    with transaction.atomic():
        conn = (
            RingCentralConnection.objects.select_for_update()
            .filter(organization_id=organization_id, line__isnull=True)
            .first()
        )
        if not bot_token and (conn is None or not conn.bot_token):
            errors["bot_token"] = ["The bot's access token is required."]
        if not bot_creator_id:
            errors["bot_creator_id"] = ["The bot's person id is required (its own posts are ignored by it)."]
        try:
            RingCentralConnection._meta.get_field("base_url").run_validators(base_url)
        except ValidationError as exc:
            errors["base_url"] = exc.messages
        if not base_url:
            errors["base_url"] = ["The platform URL is required."]
        if errors:
            raise ValidationError(errors)
        if conn is None:
            conn = RingCentralConnection(organization_id=organization_id)
        conn.bot_creator_id, conn.base_url, conn.is_active = bot_creator_id, base_url, True
        if bot_token:
            conn.bot_token = bot_token
        conn.save()
    return conn


def ringcentral_disconnect(*, organization_id: int) -> bool:
    """Switches the organization-wide connection off (nothing is mirrored or sent from its teams any more).
    Returns whether one was on."""
    return (
        RingCentralConnection.objects.filter(organization_id=organization_id, line__isnull=True, is_active=True).update(
            is_active=False
        )
        == 1
    )
