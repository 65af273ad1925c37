"""RingCentral Team Messaging: conversations mirrored into private teams, replies from the team sent as
SMS. See docs/integrations.md.

The release item "ignore support users": members of the organization with Role.SUPPORT are never
team members, their outbound messages are never posted, and their posts in a team (identified by
the RingCentral person's email) are never sent as SMS.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from config.wakeup import wake_on_commit
from messaging.models import Direction, Message
from organizations.models import Membership, Role

from .. import wire
from ..clients import PartnerError, RingCentralClient
from ..models import ForwardedMessage, Partner, PartnerReply, ReplyState, RingCentralConnection, RingCentralTeam
from ..selectors import ringcentral_mirrorable
from .common import conversation_lock, reply_as_sms
from .forwards import LEASE_SECONDS, forward_record, forwards_settle

log = logging.getLogger(__name__)


def _client(conn: RingCentralConnection) -> RingCentralClient:
    return RingCentralClient(conn.base_url, conn.bot_token)


def team_members(*, organization_id: int) -> list[str]:
    """Emails of the organization's active users, support staff excluded (Membership is unique per
    user and organization, so one row per user)."""
    emails = (
        Membership.objects.filter(organization_id=organization_id, user__is_active=True)
        .exclude(role=Role.SUPPORT)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    return sorted({e.lower() for e in emails})


# ------------------------------------------------------------------------------------------ mirror
def ringcentral_messages_mirror(*, message_ids: list[int]) -> int:
    """Post these messages into their conversations' teams (creating a team on first use). Messages
    not on a connected line, sent by a support user, sent on behalf of a RingCentral post, or already
    posted are left out (selectors.ringcentral_mirrorable). Returns the number posted. A 429 raises
    PartnerError with its Retry-After; what was posted before it is recorded, so a retry resumes."""
    rows = ringcentral_mirrorable(message_ids=message_ids)
    groups: dict[tuple[int, int], list[int]] = {}
    for message_id, conversation_id, connection_id in rows:
        groups.setdefault((connection_id, conversation_id), []).append(message_id)
    posted = 0
    for (connection_id, conversation_id), ids in groups.items():
        with conversation_lock("ringcentral", conversation_id):
            posted += _mirror_group(connection_id, conversation_id, ids)
    forwards_settle(partner=Partner.RINGCENTRAL, message_ids=message_ids)  # the rest were left out on purpose
    return posted


def _mirror_group(connection_id: int, conversation_id: int, ids: list[int]) -> int:
    done = set(
        ForwardedMessage.objects.filter(message_id__in=ids, partner=Partner.RINGCENTRAL).values_list(
            "message_id", flat=True
        )
    )
    messages = list(
        Message.objects.filter(pk__in=[i for i in ids if i not in done])
        .select_related("contact", "line", "sent_by")
        .order_by("created_at", "id")
    )
    if not messages:
        return 0
    conn = RingCentralConnection.objects.get(pk=connection_id)
    client = _client(conn)
    team = RingCentralTeam.objects.filter(conversation_id=conversation_id).first()
    for m in messages:
        if team is None:
            team = _team_create(client, conn, m)
        try:
            post_id = client.post(chat=team.team_id, text=post_text(m))
        except PartnerError as exc:
            if not exc.not_found:
                raise
            # The team was deleted on RingCentral's side: mirror into a new one.
            team.delete()
            team = _team_create(client, conn, m)
            post_id = client.post(chat=team.team_id, text=post_text(m))
        forward_record(message_id=m.pk, partner=Partner.RINGCENTRAL, external_id=post_id)
    return len(messages)


def _team_create(client: RingCentralClient, conn: RingCentralConnection, m: Message) -> RingCentralTeam:
    contact = _contact_label(m)
    members = team_members(organization_id=m.organization_id)
    team_id = client.team_create(
        name=f"SMS {contact} · {m.line.name or m.line.phone_number}"[:250],
        description=f"Parley conversation {m.conversation_id} on {m.line.phone_number}",
        member_emails=members,
    )
    return RingCentralTeam.objects.create(
        organization_id=m.organization_id,
        connection=conn,
        conversation_id=m.conversation_id,
        team_id=team_id,
        member_emails=members,  # what the team sync (ringcentral_teams.py) compares with
        members_synced_at=timezone.now(),
    )


def _contact_label(m: Message) -> str:
    name = f"{m.contact.first_name} {m.contact.last_name}".strip()
    return f"{name} ({m.contact.phone_number})" if name else m.contact.phone_number


def post_text(m: Message) -> str:
    body = m.rendered_body  # the text as the phone saw it, whatever the direction (docs/messaging.md)
    media = "".join(f"\n{item.get('url', '')}" for item in (m.media or []) if isinstance(item, dict))
    if m.direction == Direction.INBOUND:
        return f"SMS from {_contact_label(m)}:\n{body}{media}"
    sender = (m.sent_by.get_full_name() or m.sent_by.email) if m.sent_by else "Parley"
    return f"SMS to {_contact_label(m)} by {sender}:\n{body}{media}"


# ----------------------------------------------------------------------------------------- replies
def ringcentral_webhook_receive(*, connection: RingCentralConnection, payload: dict) -> str:
    """A notification from the webhook subscription. A new text post in one of this connection's teams
    is stored (once per post id: RingCentral redelivers) and sent as SMS by a task after commit.
    Returns what was done (for the response and the tests)."""
    raw = payload.get("body")
    post: dict = raw if isinstance(raw, dict) else {}
    if post.get("eventType") != wire.RC_POST_ADDED or post.get("type", wire.RC_TEXT_MESSAGE) != wire.RC_TEXT_MESSAGE:
        return "ignored"
    if not str(post.get("text") or "").strip() or not post.get("id"):
        return "ignored"
    if str(post.get("creatorId") or "") == connection.bot_creator_id:
        return "own post"  # our own mirror post coming back: sending it would loop
    team = (
        RingCentralTeam.objects.filter(connection=connection, team_id=str(post.get("groupId") or ""))
        .only("conversation_id")
        .first()
    )
    if team is None:
        return "unknown chat"  # a chat the bot is in that is not a conversation's team
    with transaction.atomic():
        reply, created = PartnerReply.objects.get_or_create(
            partner=Partner.RINGCENTRAL,
            connection_id=connection.pk,
            external_key=str(post["id"])[:200],
            defaults={
                "organization_id": connection.organization_id,
                "kick_after": timezone.now() + timedelta(seconds=LEASE_SECONDS),  # then the sweep's
                "payload": {
                    "conversation_id": team.conversation_id,
                    "creatorId": str(post.get("creatorId") or ""),
                    "text": str(post["text"]),
                },
            },
        )
        if created:
            from ..tasks import ringcentral_reply

            wake_on_commit(ringcentral_reply, [reply.pk])
    return "stored" if created else "duplicate"


def ringcentral_reply_postpone(*, reply_id: int, seconds: float) -> None:
    """The reply's task retries in `seconds`: no re-kick before that retry is due."""
    PartnerReply.objects.filter(pk=reply_id, state=ReplyState.PENDING).update(
        kick_after=timezone.now() + timedelta(seconds=seconds + LEASE_SECONDS)
    )


def ringcentral_reply_send(*, reply_id: int) -> str:
    """Send a stored RingCentral post as SMS, unless its author is a support user. Exactly once: the
    row is claimed FOR UPDATE while pending and leaves pending in the same transaction as the SMS."""
    with transaction.atomic():
        reply = (
            PartnerReply.objects.select_for_update(skip_locked=True)
            .filter(pk=reply_id, partner=Partner.RINGCENTRAL, state=ReplyState.PENDING)
            .first()
        )
        if reply is None:
            return "done"
        conn = RingCentralConnection.objects.filter(pk=reply.connection_id).first()
        if conn is None:
            return "gone"
        email = _author_email(conn, reply.payload.get("creatorId", ""))
        member = (
            Membership.objects.filter(organization_id=reply.organization_id, user__email__iexact=email)
            .select_related("user")
            .first()
            if email
            else None
        )
        if member is not None and member.role == Role.SUPPORT:
            reply.state, reply.note = ReplyState.SKIPPED, "posted by a support user"
        else:
            message_id, why = reply_as_sms(
                organization_id=reply.organization_id,
                conversation_id=int(reply.payload["conversation_id"]),
                body=reply.payload.get("text", ""),
                sent_by=member.user if member else None,
            )
            reply.message_id = message_id
            reply.state, reply.note = (ReplyState.SENT, "") if message_id else (ReplyState.SKIPPED, why)
        reply.save(update_fields=["message", "state", "note"])
        return reply.state


def _author_email(conn: RingCentralConnection, person_id: str) -> str:
    """The post author's email (RingCentral posts carry only creatorId). An unknown person (404) is not
    one of our users; any other failure raises, and the task retries rather than guess."""
    if not person_id:
        return ""
    try:
        return _client(conn).person_email(person_id=person_id)
    except PartnerError as exc:
        if exc.not_found:
            return ""
        raise
