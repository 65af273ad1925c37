"""The work queue (messaging_message_inflight, kept by triggers) and HOT status updates (docs/indexes.md)."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.utils import timezone

from backfill import selectors as backfill_selectors
from messaging.models import Message, MessageInFlight
from messaging.services import carrier_send, prepare
from messaging.services.status import StatusUpdate, messages_apply_statuses
from messaging.status import MessageStatus as S
from operations.selectors import messages_in_flight
from tests.factories import MessageFactory


def _queue() -> dict[int, str]:
    return dict(MessageInFlight.objects.values_list("message_id", "status"))


def _updates_so_far() -> tuple[int, int]:
    """(updates, HOT updates) of messaging_message in the current transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_stat_get_xact_tuples_updated('messaging_message'::regclass),"
            " pg_stat_get_xact_tuples_hot_updated('messaging_message'::regclass)"
        )
        return cursor.fetchone()


def test_the_queue_holds_exactly_the_messages_in_flight_whoever_writes(db):
    # given: ORM inserts in every kind of status
    queued = MessageFactory(status=S.QUEUED)
    sent = MessageFactory(status=S.SENT, carrier_batch_id="B1")
    delivered = MessageFactory(status=S.DELIVERED)
    received = MessageFactory(status=S.RECEIVED, direction="in")
    assert _queue() == {queued.id: S.QUEUED, sent.id: S.SENT}
    # when: the status path, an ORM update and raw SQL move them
    messages_apply_statuses(
        updates=[
            StatusUpdate(sent.id, S.DELIVERED),
            StatusUpdate(queued.id, S.PREPARED),
            StatusUpdate(delivered.id, S.SENT),
        ]
    )
    # then: the report took the sent one out; the backward move changed nothing
    assert _queue() == {queued.id: S.PREPARED}
    at = timezone.now() - timedelta(minutes=5)
    Message.objects.filter(pk=queued.pk).update(prepared_at=at)
    assert MessageInFlight.objects.get(pk=queued.id).prepared_at == at
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE messaging_message SET status = 'sending', sending_at = %s WHERE id = %s", [at, queued.id]
        )
    row = MessageInFlight.objects.get(pk=queued.id)
    assert (row.status, row.sending_at, row.line_id) == (S.SENDING, at, queued.line_id)
    assert messages_in_flight() == {S.QUEUED: 0, S.SCHEDULED: 0, S.PREPARED: 0, S.SENDING: 1, S.SENT: 0}
    Message.objects.filter(pk=queued.pk).delete()
    assert _queue() == {}
    assert Message.objects.filter(pk__in=[delivered.pk, received.pk]).count() == 2


def test_a_delivery_report_is_a_hot_update(db):
    # given: sent messages (no index reads status or the columns a report writes)
    messages = [
        MessageFactory(status=S.SENT, carrier_batch_id="B1", carrier_recipient=f"+1512555{n:04d}") for n in range(3)
    ]
    updates, hot = _updates_so_far()
    # when
    changed = messages_apply_statuses(
        updates=[StatusUpdate(m.id, S.DELIVERED, carrier_status="Delivered") for m in messages]
    )
    # then: three status changes, all heap-only (no index entry written)
    assert len(changed) == 3
    after_updates, after_hot = _updates_so_far()
    assert (after_updates - updates, after_hot - hot) == (3, 3)


def _plan(sql: str, params) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SET LOCAL enable_seqscan = on")
    return plan


def test_the_sweeps_and_the_backfill_are_index_probes(db):
    # Seq scans switched off: a plan that still reads messaging_message sequentially has no index to use.
    now = timezone.now()
    plans = {
        "sends": _plan(carrier_send._STUCK_SQL, [now]),
        "prepared": _plan(carrier_send._STALE_PREPARED_SQL, [now, now]),
        "queued": _plan(carrier_send._STALE_QUEUED_SQL, [now]),
        "due": _plan(prepare._DUE_SQL, {"due": now, "limit": 10}),
        "backfill": _plan(
            *backfill_selectors.stuck_messages_qs(line_ids=[1], statuses=[S.SENDING, S.SENT], after_id=10)
            .order_by("id")[:500]
            .query.sql_with_params()
        ),
    }
    for name, plan in plans.items():
        assert "Seq Scan" not in plan, (name, plan)
        assert "messaging_message_inflight" in plan, (name, plan)
