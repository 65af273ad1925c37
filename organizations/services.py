"""Writes of the organizations app: API keys, the organization's settings, memberships. The API and the
web app's settings pages (webapp/views/settings.py) both call these; refusals are Django ValidationErrors
naming the field."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import available_timezones

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .models import ApiKey, ApiKeyScope, Membership, Organization, Role


@dataclass(frozen=True)
class CreatedApiKey:
    api_key: ApiKey
    # The only time the key exists in clear: hand it to the caller, never store or log it.
    raw_key: str


def api_key_create(
    *, organization: Organization, name: str, scope: str = ApiKeyScope.ALL, created_by=None
) -> CreatedApiKey:
    raw_key = ApiKey.generate()
    api_key = ApiKey.objects.create(
        organization=organization,
        name=name,
        scope=scope,
        prefix=raw_key[: ApiKey.PREFIX_LEN],
        key_hash=ApiKey.hash(raw_key),
        created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
    )
    return CreatedApiKey(api_key=api_key, raw_key=raw_key)


def api_keys_revoke(*, organization_id: int | None = None, api_key_ids: list[int]) -> int:
    """Revokes the given keys (of one organization when organization_id is given). Idempotent: an
    already revoked key keeps its first revocation time. Returns how many were revoked now."""
    keys = ApiKey.objects.filter(pk__in=api_key_ids, revoked_at__isnull=True)
    if organization_id is not None:
        keys = keys.filter(organization_id=organization_id)
    return keys.update(revoked_at=timezone.now())


SETTINGS_FIELDS = ("time_zone", "quiet_hours_enabled", "quiet_hours_start", "quiet_hours_end")


def organization_update_settings(*, organization: Organization, **changes) -> Organization:
    """Time zone and quiet hours. The caller parses the values (times, booleans); the rules are here: an
    IANA zone name, and a window that is on is not empty (the database's check constraint backs it up).
    Refused: ValidationError naming the field, nothing saved. Saving bumps the send pipeline's settings
    cache."""
    unknown = set(changes) - set(SETTINGS_FIELDS)
    if unknown:
        raise TypeError(f"not an organization setting: {', '.join(sorted(unknown))}")
    zone = changes.get("time_zone")
    if zone is not None and zone not in available_timezones():
        raise ValidationError({"time_zone": [f"'{zone}' is not an IANA time zone name (e.g. America/Chicago)."]})

    def current(name):
        return changes.get(name, getattr(organization, name))

    if current("quiet_hours_enabled") and current("quiet_hours_start") == current("quiet_hours_end"):
        raise ValidationError(
            {
                "quiet_hours_end": [
                    "Must differ from quiet_hours_start while quiet hours are on; "
                    "to turn them off set quiet_hours_enabled to false."
                ]
            }
        )
    for name, value in changes.items():
        setattr(organization, name, value)
    if changes:
        organization.save(update_fields=list(changes))
    return organization


# ------------------------------------------------------------------------------------------ memberships
LAST_ADMIN = "The organization needs at least one admin: make someone else an admin first."


def membership_add(*, organization: Organization, email: str, role: str) -> Membership:
    """Adds the Parley user with this email to the organization with `role`. With no account for it, makes
    one that cannot sign in yet (no usable password, the email as its sign-in name): an invited member,
    whom the caller mails the link that chooses a password (webapp.invitations; `membership_is_invited`)."""
    if role not in Role.values:
        raise ValidationError({"role": [f"'{role}' is not a role ({', '.join(Role.values)})."]})
    email = email.strip()
    user_model = get_user_model()
    with transaction.atomic():
        users = list(user_model.objects.filter(email__iexact=email, is_active=True).order_by("id")[:2])
        if len(users) > 1:
            raise ValidationError(
                {"email": ["Several Parley users share this email: ask support to add the right one."]}
            )
        if users:
            user = users[0]
            if Membership.objects.filter(organization=organization, user=user).exists():
                raise ValidationError({"email": ["This user is already a member."]})
        else:
            username = email.lower()
            if user_model.objects.filter(username__iexact=username).exists():
                # An inactive account, or one whose sign-in name is this email but whose email is another.
                raise ValidationError({"email": ["An account already signs in with this email: ask support."]})
            user = user_model.objects.create_user(username=username, email=username)  # password unusable
        # The unique constraint settles a race between two adds: the loser's IntegrityError is a 500, not a twin.
        return Membership.objects.create(organization=organization, user=user, role=role)


def membership_is_invited(membership: Membership) -> bool:
    """Invited and not yet arrived: the account has never had a password (one is chosen through the
    invitation's link). Reads only the membership's user, so a list with select_related asks nothing more."""
    return not membership.user.has_usable_password()


def _locked_admins(organization: Organization) -> list[int]:
    """The organization's admin memberships, locked in pk order: two admins demoting or removing each
    other at once are serialized here, so the second sees the first's change and the last admin stays."""
    return list(
        Membership.objects.select_for_update()
        .filter(organization=organization, role=Role.ADMIN)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def membership_change_role(*, organization: Organization, membership_id: int, role: str) -> Membership:
    """Raises Membership.DoesNotExist for another organization's membership (the caller answers 404)."""
    if role not in Role.values:
        raise ValidationError({"role": [f"'{role}' is not a role ({', '.join(Role.values)})."]})
    with transaction.atomic():
        admins = _locked_admins(organization)
        membership = Membership.objects.select_for_update().get(organization=organization, pk=membership_id)
        if membership.role == role:
            return membership
        if admins == [membership.pk]:
            raise ValidationError({"role": [LAST_ADMIN]})
        membership.role = role
        membership.save(update_fields=["role"])  # a model save: the RingCentral team sync follows it
    return membership


def membership_remove(*, organization: Organization, membership_id: int) -> None:
    """Removes a member (their account stays). Raises Membership.DoesNotExist for another organization's."""
    with transaction.atomic():
        admins = _locked_admins(organization)
        membership = Membership.objects.select_for_update().get(organization=organization, pk=membership_id)
        if admins == [membership.pk]:
            raise ValidationError({"membership": [LAST_ADMIN]})
        membership.delete()
