"""NICE CXone: inbound SMS → chat, agent replies → SMS, and the poll lease. See docs/integrations.md.

Polling is a chain of one-poll tasks ("integrations.nice_poll"). Each task first takes the chat's
lease with a compare-and-set UPDATE (free, expired, or handed over to it by its predecessor), so two
tasks never poll one chat at once; it then does one long poll, applies what came back, and renews the
lease for a short handover window in which its successor (enqueued with the lease token) takes over.
A chain that breaks (worker killed, task lost) leaves a lease that expires: the beat job
`nice_polls_rekick` starts a new chain for it.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from config.wakeup import wake_on_commit
from messaging.models import ConversationStatus, Direction, Message, OptOut

from .. import wire
from ..clients import NiceClient, PartnerError
from ..models import ForwardedMessage, NiceChat, NiceChatState, NiceConnection, Partner, PartnerReply, ReplyState
from .common import conversation_lock, reply_as_sms
from .forwards import forward_record, forwards_settle

log = logging.getLogger(__name__)

# The lease a poller holds during its long poll: the poll's own timeout plus the client's connect and
# read slack (clients.py: 5 + 10 s) plus margin, so a live poller never loses it mid-call.
LEASE_SLACK_SECONDS = 30
# After a poll, the successor task (same lease token) must start within this window; later, the lease
# is expired and the beat may start another chain (only one of them will get the lease).
HANDOVER_SECONDS = 60
# After a failed poll (5xx, no answer), the next one waits this long (or the partner's Retry-After).
RETRY_DELAY_SECONDS = 5
# A countdown longer than the Redis visibility timeout is safe: the worker holding it heartbeats it.
MAX_RETRY_DELAY_SECONDS = 300
# Chats re-kicked per beat pass: each costs one small task; a pass stays well under a second.
REKICK_BATCH = 500


class UnknownChat(Exception):
    """An event for a chat this connection does not have (another tenant's, or none): answered 404."""


def _client(conn_base_url: str, conn_token: str) -> NiceClient:
    return NiceClient(conn_base_url, conn_token)


def _enqueue_poll(chat_id: int, token: str, delay: float = 0) -> None:
    from ..tasks import nice_poll

    wake_on_commit(nice_poll, [chat_id, token], countdown=delay or None)


# --------------------------------------------------------------------------------------- forwarding
def nice_messages_forward(*, message_ids: list[int]) -> int:
    """Forward these inbound messages (those on lines with an active NICE connection, not forwarded
    yet) into the conversation's active chat, starting one when there is none. Returns how many were
    forwarded. Safe to run twice: a message forwarded is recorded (ForwardedMessage) and skipped. Their
    pending markers go with the record, and the rest's once every message was dealt with (a partner
    error raises before that: the retry, or the sweep, comes back for them)."""
    messages = list(
        Message.objects.filter(pk__in=message_ids, direction=Direction.INBOUND, line__nice_connection__is_active=True)
        .select_related("line__nice_connection", "contact")
        .order_by("id")
    )
    by_conversation: dict[int, list[Message]] = {}
    for m in messages:
        by_conversation.setdefault(m.conversation_id, []).append(m)
    forwarded = 0
    for conversation_id, group in by_conversation.items():
        with conversation_lock("nice", conversation_id):
            forwarded += _forward_group(group)
    forwards_settle(partner=Partner.NICE, message_ids=message_ids)
    return forwarded


def _forward_group(group: list[Message]) -> int:
    done = set(
        ForwardedMessage.objects.filter(message_id__in=[m.pk for m in group], partner=Partner.NICE).values_list(
            "message_id", flat=True
        )
    )
    pending = [m for m in group if m.pk not in done]
    if not pending:
        return 0
    conn: NiceConnection = pending[0].line.nice_connection
    client = _client(conn.base_url, conn.access_token)
    chat = NiceChat.objects.filter(conversation_id=pending[0].conversation_id, state=NiceChatState.ACTIVE).first()
    if _opted_out(pending[0]):
        # The contact opted out (their STOP is among these messages, or came before): the agent sees it
        # in the chat if one is open, the chat is then ended; no new chat is started for it.
        if chat is None:
            return 0
        forwarded = 0
        for m in pending:
            try:
                client.send_text(chat=chat.chat_session_id, label=_label(m), message=m.body)
            except PartnerError as exc:
                if not exc.not_found:
                    raise
                break
            forward_record(message_id=m.pk, partner=Partner.NICE, external_id=chat.chat_session_id)
            forwarded += 1
        _end_at_partner(client, chat)
        return forwarded
    for m in pending:
        label = _label(m)
        if chat is None:
            chat = _chat_start(client, conn, m)
        try:
            client.send_text(chat=chat.chat_session_id, label=label, message=m.rendered_body)
        except PartnerError as exc:
            if not exc.not_found:
                raise
            # The chat ended on NICE's side (timeout, agent closed it): a new message opens a new one.
            nice_chat_end(chat_id=chat.pk)
            chat = _chat_start(client, conn, m)
            client.send_text(chat=chat.chat_session_id, label=label, message=m.rendered_body)
        forward_record(message_id=m.pk, partner=Partner.NICE, external_id=chat.chat_session_id)
    return len(pending)


def _label(m: Message) -> str:
    return f"{m.contact.first_name} {m.contact.last_name}".strip() or m.contact.phone_number


def _opted_out(m: Message) -> bool:
    return OptOut.objects.filter(organization_id=m.organization_id, phone_number=m.contact.phone_number).exists()


def _chat_start(client: NiceClient, conn: NiceConnection, m: Message) -> NiceChat:
    session_id, contact_id = client.chat_start(
        point_of_contact=conn.point_of_contact,
        from_address=m.contact.phone_number,
        parameters=[f"parley_conversation={m.conversation_id}"],
    )
    # The release item: with the line's flag, polling starts with the chat (lease handed to the first
    # poll task); without it, at the first agent event (nice_event_receive).
    start_now = m.line.nice_start_polling_on_chat_creation
    now = timezone.now()
    token = uuid.uuid4().hex if start_now else ""
    with transaction.atomic():
        chat = NiceChat.objects.create(
            organization_id=m.organization_id,
            connection=conn,
            conversation_id=m.conversation_id,
            chat_session_id=session_id,
            contact_id=contact_id,
            polling_started_at=now if start_now else None,
            poll_lease_token=token,
            poll_lease_until=now + timedelta(seconds=HANDOVER_SECONDS) if start_now else None,
        )
        if start_now:
            _enqueue_poll(chat.pk, token)
    return chat


# ------------------------------------------------------------------------------------ chat lifecycle
_START_POLLING_SQL = """
UPDATE integrations_nicechat
SET polling_started_at = now(), poll_lease_token = %s, poll_lease_until = now() + make_interval(secs => %s)
WHERE id = %s AND state = 'active' AND polling_started_at IS NULL
"""
_END_SQL = """
UPDATE integrations_nicechat SET state = 'ended', ended_at = now(), poll_lease_token = '', poll_lease_until = NULL
WHERE id = %s AND state = 'active'
"""


def nice_chat_start_polling(*, chat_id: int) -> bool:
    """Start polling a chat that is not polled yet (compare-and-set: one chain, however many events)."""
    token = uuid.uuid4().hex
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_START_POLLING_SQL, [token, HANDOVER_SECONDS, chat_id])
            started = cursor.rowcount == 1
        if started:
            _enqueue_poll(chat_id, token)
    return started


def nice_chat_end(*, chat_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(_END_SQL, [chat_id])
        return cursor.rowcount == 1


def _end_at_partner(client: NiceClient, chat: NiceChat) -> None:
    """End the chat at NICE (DELETE; a 404 means it is gone already), then here. In that order: if the
    DELETE fails the chat stays active here and the task retries (or the beat sweep finds it), so no
    agent is left in a chat we consider ended."""
    try:
        client.chat_end(chat=chat.chat_session_id)
    except PartnerError as exc:
        if not exc.not_found:
            raise
    nice_chat_end(chat_id=chat.pk)


def nice_chats_end(*, chat_ids: list[int]) -> int:
    """End these chats at NICE and here (their conversation was closed or the contact opted out).
    Chats already ended are skipped. Returns how many were ended. A partner failure raises
    PartnerError after ending the ones before it (the task retries the rest)."""
    ended = 0
    chats = NiceChat.objects.filter(pk__in=chat_ids, state=NiceChatState.ACTIVE).select_related("connection")
    for chat in chats.order_by("id"):
        with conversation_lock("nice", chat.conversation_id):  # not while a forward starts or uses it
            if not NiceChat.objects.filter(pk=chat.pk, state=NiceChatState.ACTIVE).exists():
                continue
            _end_at_partner(_client(chat.connection.base_url, chat.connection.access_token), chat)
            ended += 1
    return ended


def nice_chats_to_end(
    *,
    conversation_ids: list[int] | None = None,
    organization_id: int | None = None,
    phone_numbers: list[str] | None = None,
) -> list[int]:
    """Active chats that must end: of these conversations if closed, or of one organization's contacts
    with these (opted-out) numbers."""
    chats = NiceChat.objects.filter(state=NiceChatState.ACTIVE)
    if conversation_ids is not None:
        chats = chats.filter(conversation_id__in=conversation_ids, conversation__status=ConversationStatus.CLOSED)
    elif organization_id is not None and phone_numbers:
        chats = chats.filter(organization_id=organization_id, conversation__contact__phone_number__in=phone_numbers)
    else:
        return []
    return list(chats.values_list("id", flat=True))


# Active chats whose conversation is closed or whose contact opted out: the beat's safety sweep for a
# lost task or a change made where no signal is sent (admin form, SQL). Active chats are few (one per
# live conversation) and reached through the partial unique index on active chats.
_STALE_SQL = """
SELECT ch.id FROM integrations_nicechat ch
JOIN messaging_conversation c ON c.id = ch.conversation_id
JOIN messaging_contact ct ON ct.id = c.contact_id
WHERE ch.state = %s AND (c.status = %s OR EXISTS (
    SELECT 1 FROM messaging_optout o WHERE o.organization_id = ch.organization_id AND o.phone_number = ct.phone_number))
ORDER BY ch.id LIMIT %s
"""


def nice_chats_stale(*, limit: int = REKICK_BATCH) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(_STALE_SQL, [NiceChatState.ACTIVE, ConversationStatus.CLOSED, limit])
        return [r[0] for r in cursor.fetchall()]


def nice_event_receive(*, connection_id: int, payload: dict) -> str:
    """An agent-side event from NICE's webhook. Returns what was done; UnknownChat when the chat is not
    one of this connection's."""
    session_id = str(payload.get(wire.NICE_EVENT_CHAT_FIELD) or "")
    chat = (
        NiceChat.objects.filter(connection_id=connection_id, chat_session_id=session_id).only("id", "state").first()
        if session_id
        else None
    )
    if chat is None:
        raise UnknownChat(session_id)
    if chat.state != NiceChatState.ACTIVE:
        return "ended"
    if payload.get(wire.NICE_EVENT_TYPE_FIELD) == wire.NICE_CHAT_ENDED:
        nice_chat_end(chat_id=chat.pk)
        return "ended"
    return "started" if nice_chat_start_polling(chat_id=chat.pk) else "polling"


# ------------------------------------------------------------------------------------------- polling
_CLAIM_SQL = """
UPDATE integrations_nicechat ch
SET poll_lease_token = %(new)s, poll_lease_until = now() + make_interval(secs => c.poll_timeout_seconds + %(slack)s)
FROM integrations_niceconnection c
WHERE ch.id = %(id)s AND c.id = ch.connection_id AND c.is_active
  AND ch.state = 'active' AND ch.polling_started_at IS NOT NULL
  AND (ch.poll_lease_until IS NULL OR ch.poll_lease_until < now()
       OR (%(handover)s <> '' AND ch.poll_lease_token = %(handover)s))
RETURNING ch.chat_session_id, ch.organization_id, ch.conversation_id, ch.connection_id,
          c.base_url, c.access_token, c.poll_timeout_seconds
"""
# Renewal only by the holder of the lease: a poller that overran and lost it stops.
_RENEW_SQL = """
UPDATE integrations_nicechat SET poll_lease_until = now() + make_interval(secs => %s), last_polled_at = now()
WHERE id = %s AND state = 'active' AND poll_lease_token = %s
"""


@dataclass
class PollOutcome:
    polled: bool  # held the lease and asked NICE
    next_token: str = ""  # continue the chain with this lease token ("" = stop)
    delay: float = 0.0
    replies: int = 0
    ended: bool = False


def nice_chat_poll(*, chat_id: int, handover: str = "") -> PollOutcome:
    """One long poll of one chat, if this caller gets the lease. Agent messages become SMS (once each)."""
    token = uuid.uuid4().hex
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, {"new": token, "slack": LEASE_SLACK_SECONDS, "id": chat_id, "handover": handover})
        row = cursor.fetchone()
    if row is None:
        return PollOutcome(polled=False)  # ended, not started, or someone else is polling it
    session_id, org_id, conversation_id, connection_id, base_url, access_token, poll_timeout = row
    try:
        messages = _client(base_url, access_token).poll(chat=session_id, timeout=poll_timeout)
    except PartnerError as exc:
        if exc.not_found:
            nice_chat_end(chat_id=chat_id)
            return PollOutcome(polled=True, ended=True)
        delay = min(exc.retry_after or RETRY_DELAY_SECONDS, MAX_RETRY_DELAY_SECONDS)
        log.warning("NICE poll of chat %s failed (%s); next poll in %ss", chat_id, exc, delay)
        return PollOutcome(polled=True, next_token=_renew(chat_id, token, delay + HANDOVER_SECONDS), delay=delay)
    replies, ended = 0, False
    for item in messages:
        if item.get(wire.NICE_MESSAGE_TYPE_FIELD) == wire.NICE_CHAT_ENDED:
            ended = True
        elif item.get("PartyTypeValue") == wire.NICE_AGENT_PARTY:
            replies += _agent_reply(chat_id, session_id, org_id, conversation_id, connection_id, item)
    if ended:
        nice_chat_end(chat_id=chat_id)
        return PollOutcome(polled=True, replies=replies, ended=True)
    return PollOutcome(polled=True, next_token=_renew(chat_id, token, HANDOVER_SECONDS), replies=replies)


def _renew(chat_id: int, token: str, seconds: float) -> str:
    with connection.cursor() as cursor:
        cursor.execute(_RENEW_SQL, [seconds, chat_id, token])
        return token if cursor.rowcount == 1 else ""


def _agent_reply(chat_id: int, session_id: str, org_id: int, conversation_id: int, connection_id: int, item) -> int:
    """The agent's message as an outbound SMS, exactly once: the reply row's unique key and the SMS
    commit together."""
    stamp = str(item.get("Timestamp") or "")
    text = str(item.get("Text") or "")
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    key = f"{session_id[:120]}|{stamp[:48]}|{digest}"
    with transaction.atomic():
        reply, created = PartnerReply.objects.get_or_create(
            partner=Partner.NICE,
            connection_id=connection_id,
            external_key=key,
            defaults={"organization_id": org_id, "payload": {"Label": item.get("Label", ""), "Timestamp": stamp}},
        )
        if not created:
            return 0
        message_id, why = reply_as_sms(organization_id=org_id, conversation_id=conversation_id, body=text)
        reply.message_id = message_id
        reply.state, reply.note = (ReplyState.SENT, "") if message_id else (ReplyState.SKIPPED, why)
        reply.save(update_fields=["message", "state", "note"])
        try:
            at: datetime | None = parse_datetime(stamp) if stamp else None
        except ValueError:
            at = None
        NiceChat.objects.filter(pk=chat_id).update(last_agent_timestamp=stamp[:64], last_agent_message_at=at)
    return 1 if message_id else 0


def nice_polls_rekick(*, limit: int = REKICK_BATCH) -> int:
    """Beat: start a poll chain for every polled active chat whose lease expired (its poller died or
    its successor task was lost). The poll task's own claim decides who polls; this only wakes one."""
    from ..tasks import nice_poll

    ids = list(
        NiceChat.objects.filter(
            state=NiceChatState.ACTIVE,
            polling_started_at__isnull=False,
            poll_lease_until__lt=timezone.now(),
            connection__is_active=True,
        )
        .order_by("poll_lease_until")
        .values_list("id", flat=True)[:limit]
    )
    for chat_id in ids:
        nice_poll.apply_async(args=[chat_id, ""])
    return len(ids)
