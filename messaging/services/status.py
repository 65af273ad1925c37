"""Applying status changes: the one code path for webhooks, the send step, backfill and admin.

`messages_apply_statuses` is set-based: one UPDATE ... FROM unnest(...) guarded by the transition
table, and in the same statement one INSERT of the post-processing outbox events for the rows that
really changed. An event therefore exists if and only if its status change committed, and a report
that would move a message backwards changes nothing and emits nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.utils import timezone

from config.sql import execute as execute_bound
from postprocessing.events import STATUS_EVENTS, EventType
from postprocessing.services.record import outbox_insert

from ..status import TRANSITIONS, MessageStatus, check_transition, sql_literals

# Allowed "from>to" pairs, the SQL form of the transition table.
_ALLOWED_PAIRS = sorted(f"{src}>{dst}" for src, targets in TRANSITIONS.items() for dst in targets)
# When two updates for one message arrive together, the furthest along wins.
_RANK: dict[str, int] = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SCHEDULED: 1,
    MessageStatus.PREPARED: 2,
    MessageStatus.SENDING: 3,
    MessageStatus.SENT: 4,
    MessageStatus.UNKNOWN: 5,
    MessageStatus.DELIVERED: 6,
    MessageStatus.UNDELIVERED: 6,
    MessageStatus.FAILED: 6,
    MessageStatus.BLOCKED: 6,
    MessageStatus.CANCELED: 6,
    MessageStatus.RECEIVED: 6,
}


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    message_id: int
    status: str
    at: datetime | None = None
    carrier_status: str = ""
    error_code: str = ""
    error_reason: str = ""
    carrier_batch_id: str = ""


_S = MessageStatus
_EVENT_CASE = " ".join(
    f"WHEN {sql_literals(MessageStatus(status))} THEN {sql_literals(EventType(event))}"
    for status, event in STATUS_EVENTS.items()
)

# The outbox events of the rows that really moved (postprocessing's one outbox writer), one per row
# whose new status has an event.
_EVENTS_SQL = outbox_insert(f"""SELECT CASE upd.status {_EVENT_CASE} END, upd.id,
           jsonb_build_object('status', upd.status, 'organization_id', upd.organization_id)
    FROM upd WHERE upd.status = ANY(%s::text[])
    ORDER BY upd.id""")  # noqa: S608 — statuses via sql_literals, fragments and table names are module constants; values bound

_APPLY_SQL = f"""
WITH v AS (
    SELECT * FROM unnest(
        %s::bigint[], %s::varchar[], %s::timestamptz[], %s::varchar[], %s::varchar[], %s::varchar[], %s::varchar[]
    ) AS t(id, status, at, carrier_status, error_code, error_reason, batch_id)
), upd AS (
    UPDATE messaging_message m SET
        status = v.status,
        status_updated_at = v.at,
        sent_at = CASE WHEN v.status IN ({sql_literals(_S.SENT, _S.DELIVERED, _S.UNDELIVERED)})
                       THEN COALESCE(m.sent_at, v.at) ELSE m.sent_at END,
        delivered_at = CASE WHEN v.status = {sql_literals(_S.DELIVERED)} THEN v.at ELSE m.delivered_at END,
        failed_at = CASE WHEN v.status IN ({sql_literals(_S.FAILED, _S.UNDELIVERED)})
                         THEN v.at ELSE m.failed_at END,
        carrier_status = CASE WHEN v.carrier_status <> '' THEN v.carrier_status ELSE m.carrier_status END,
        error_code = CASE WHEN v.error_code <> '' THEN v.error_code ELSE m.error_code END,
        error_reason = CASE WHEN v.error_reason <> '' THEN left(v.error_reason, 500) ELSE m.error_reason END,
        carrier_batch_id = CASE WHEN m.carrier_batch_id = '' THEN v.batch_id ELSE m.carrier_batch_id END
    FROM v
    WHERE m.id = v.id AND (m.status || '>' || v.status) = ANY(%s::text[])
    RETURNING m.id, m.status, m.organization_id
), ev AS (
    {_EVENTS_SQL}
)
SELECT upd.id, upd.status FROM upd
"""  # noqa: S608 — statuses via sql_literals, fragments and table names are module constants; values bound


def messages_apply_statuses(*, updates: Iterable[StatusUpdate]) -> dict[int, str]:
    """Apply many status updates in one statement. Returns {message_id: new_status} for rows that moved.

    Illegal or backward moves (a late "sent" after "delivered", a duplicate report) are skipped
    silently: that is the normal life of carrier reports, not an error.
    """
    best: dict[int, StatusUpdate] = {}
    for u in updates:
        current = best.get(u.message_id)
        if current is None or _RANK[u.status] > _RANK[current.status]:
            best[u.message_id] = u
    if not best:
        return {}
    now = timezone.now()
    rows = list(best.values())
    params = [
        [u.message_id for u in rows],
        [u.status for u in rows],
        [u.at or now for u in rows],
        [u.carrier_status for u in rows],
        [u.error_code for u in rows],
        [u.error_reason for u in rows],
        [u.carrier_batch_id for u in rows],
        _ALLOWED_PAIRS,
        list(STATUS_EVENTS),
    ]
    # Server-side binding (services/sql.py): client-side binding re-quotes seven 1000-element arrays
    # into the SQL text in Python on every call. One statement (its CTEs and the work-queue triggers
    # included) is atomic by itself: no transaction.atomic() around it, whose BEGIN and COMMIT (or
    # SAVEPOINT and RELEASE inside a caller's transaction) were two more round trips on every carrier
    # call of the send step (docs/send-pipeline.md, "Many lines at once").
    return dict(execute_bound(_APPLY_SQL, params))


def message_set_status(*, message_id: int, status: str, strict: bool = False, **fields) -> bool:
    """One message through the same path. strict=True raises IllegalTransition instead of skipping."""
    if strict:
        from ..models import Message

        current = Message.objects.filter(pk=message_id).values_list("status", flat=True).first()
        if current is None:
            raise Message.DoesNotExist(message_id)
        check_transition(current, status)
    changed = messages_apply_statuses(updates=[StatusUpdate(message_id=message_id, status=status, **fields)])
    return message_id in changed


def events_record_for_new_messages(*, message_ids: list[int], status: str) -> None:
    """Outbox events for freshly inserted messages (queued outbound, received inbound). Call inside
    the transaction that inserted them."""
    event = STATUS_EVENTS.get(status)
    if not event or not message_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            outbox_insert(
                "SELECT %s, m.id, jsonb_build_object('status', m.status, 'organization_id', m.organization_id)"
                " FROM messaging_message m WHERE m.id = ANY(%s::bigint[]) ORDER BY m.id"
            ),
            [event, message_ids],
        )
