import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging.models import Blast, BlastRecount
from messaging.processors.blast import blasts_recount_marked
from messaging.status import MessageStatus as S
from postprocessing.events import EventType
from postprocessing.models import Event, EventProcessing
from postprocessing.services import (
    MAX_ATTEMPTS,
    dead_letters_requeue,
    drain_batch,
    events_drain,
    events_record,
    processings_retry_due,
)
from postprocessing.services.drain import UNKNOWN_TYPE
from tests.factories import MessageFactory

from .conftest import blast_row, move, pending_count, queue


def _due_now():
    EventProcessing.objects.update(available_at=timezone.now() - timedelta(seconds=1))


def test_drain_dispatches_by_type_and_marks_done(db, temp_processor):
    # given
    seen = []
    temp_processor(EventType.LINK_CLICKED, name="t_clicks", fn=lambda events: seen.append([e.id for e in events]))
    m = MessageFactory(status=S.SENDING)
    move([m], S.SENT)
    events_record(type=EventType.LINK_CLICKED, message_ids=[m.id], payload={"click_id": 1})
    # when
    result = events_drain(batch_size=100)
    # then
    click = Event.objects.get(type="link.clicked")
    assert seen == [[click.id]]
    assert result.events == 2 and pending_count() == 0
    assert Event.objects.filter(processed_at__isnull=True).count() == 0


def test_drain_takes_events_in_id_order_in_batches(db, temp_processor):
    batches = []
    temp_processor(EventType.LINK_CLICKED, name="t_order", fn=lambda events: batches.append([e.id for e in events]))
    for i in range(7):
        events_record(type=EventType.LINK_CLICKED, payload={"i": i})
    ids = list(Event.objects.order_by("id").values_list("id", flat=True))
    assert events_drain(batch_size=3).batches == 3
    assert batches == [ids[0:3], ids[3:6], ids[6:7]]


@pytest.mark.parametrize("n", [10, 60])
def test_query_count_per_batch_is_constant_in_batch_size(
    n, blast_with_messages, django_assert_num_queries, release_processors_only
):
    # given a batch with every release processor involved: queued, sent and failed (Deleted) blast messages
    blast, msgs = blast_with_messages(n)
    queue(msgs)
    move(msgs, S.PREPARED, S.SENDING, S.SENT)
    move(msgs[: n // 2], S.UNDELIVERED, carrier_status="Deleted")
    assert pending_count() == n + n + n // 2
    # when / then: claim, 4 processors × (savepoint, statement, release), done. Same for 10 and 60 messages:
    # savepoint 1 + claim 1 + conversation 3 + links 3 + optout 3 + blast mark 3 + done 1 + release 1 = 16.
    with django_assert_num_queries(16):
        claimed, failed = drain_batch(batch_size=1000)
    assert (claimed, failed) == (n * 2 + n // 2, 0)
    # and the deferred recount of the marked blast: savepoint, claim marks, lock blasts, recount, clear, release
    with django_assert_num_queries(6):
        assert blasts_recount_marked() == (1, 0)
    assert Blast.objects.get(pk=blast.pk).sent_count == n


def test_failing_processor_is_isolated_retried_with_backoff_then_dead(db, temp_processor):
    # given a processor that always fails, next to a working one
    ok_seen = []

    def broken(events):
        with connection.cursor() as c:
            c.execute("UPDATE messaging_message SET body = 'half-done' WHERE id = %s", [events[0].message_id])
        raise RuntimeError("boom: processor bug")

    temp_processor(EventType.LINK_CLICKED, name="t_broken", fn=broken)
    temp_processor(EventType.LINK_CLICKED, name="t_ok", fn=lambda events: ok_seen.extend(e.id for e in events))
    m = MessageFactory(body="original")
    events_record(type=EventType.LINK_CLICKED, message_ids=[m.id])
    event = Event.objects.get()
    # when
    events_drain()
    # then: the event is done, the good processor ran, the broken one's writes rolled back, a retry row exists
    event.refresh_from_db()
    m.refresh_from_db()
    assert event.state == "done" and ok_seen == [event.id] and m.body == "original"
    failure = EventProcessing.objects.get()
    assert (failure.processor, failure.state, failure.attempts) == ("t_broken", "retry", 1)
    assert "boom: processor bug" in failure.error
    assert failure.available_at > timezone.now() + timedelta(seconds=5)  # backoff, not immediately due
    # not due yet: nothing is retried
    assert processings_retry_due() == (0, 0)
    # each due retry fails again until the last try makes it a dead letter
    for attempt in range(2, MAX_ATTEMPTS + 1):
        _due_now()
        assert processings_retry_due() == (0, 1)
        failure.refresh_from_db()
        assert failure.attempts == attempt
    assert failure.state == "dead"
    _due_now()
    assert processings_retry_due() == (0, 0)  # dead letters are not retried by the drain
    assert ok_seen == [event.id]  # the good processor never re-ran


def test_dead_letter_rerun_from_the_command_after_a_fix(db, temp_processor):
    # given a dead letter
    state = {"fixed": False, "seen": []}

    def flaky(events):
        if not state["fixed"]:
            raise ValueError("not yet")
        state["seen"].extend(e.id for e in events)

    temp_processor(EventType.LINK_CLICKED, name="t_flaky", fn=flaky)
    events_record(type=EventType.LINK_CLICKED, payload={"a": 1})
    events_record(type=EventType.LINK_CLICKED, payload={"a": 2})
    events_drain()
    EventProcessing.objects.update(state="dead", attempts=MAX_ATTEMPTS)
    first, second = Event.objects.order_by("id")
    # when: fixed, and only the first event re-run
    state["fixed"] = True
    call_command("postprocessing_retry", "--processor", "t_flaky", "--ids", str(first.id))
    # then
    assert state["seen"] == [first.id]
    assert list(EventProcessing.objects.values_list("event_id", "state")) == [(second.id, "dead")]
    # and the rest through the service the admin action uses
    assert dead_letters_requeue(processor="t_flaky") == 1
    assert processings_retry_due() == (1, 0)
    assert state["seen"] == [first.id, second.id] and not EventProcessing.objects.exists()


def test_retry_command_rejects_unknown_processor(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--processor"):
        call_command("postprocessing_retry", "--processor", "no_such")


def test_unknown_event_type_in_the_outbox_becomes_a_failure_not_a_crash(db):
    with connection.cursor() as c:
        c.execute("INSERT INTO postprocessing_event (type, payload) VALUES ('message.teleported', '{}')")
    events_record(type=EventType.LINK_CLICKED)
    result = events_drain()
    assert result.events == 2 and pending_count() == 0
    failure = EventProcessing.objects.get()
    assert failure.processor == UNKNOWN_TYPE and "unknown event type" in failure.error


def test_status_command_reports_backlog_lag_and_dead_letters(db, temp_processor, capsys):
    temp_processor(EventType.LINK_CLICKED, name="t_dead", fn=lambda events: 1 / 0)
    events_record(type=EventType.LINK_CLICKED)
    events_drain()
    EventProcessing.objects.update(state="dead")
    events_record(type=EventType.MESSAGE_RECEIVED)
    Event.objects.filter(state="pending").update(created_at=timezone.now() - timedelta(seconds=90))
    call_command("postprocessing_status", "--json")
    import json

    stats = json.loads(capsys.readouterr().out)
    assert stats["pending"] == 1 and stats["dead"] == 1 and stats["dead_by_processor"] == {"t_dead": 1}
    assert 89 < stats["lag_seconds"] < 200


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_drains_never_process_an_event_twice(temp_processor):
    # given 600 events and a slow processor that records which drain saw which event
    with connection.cursor() as c:
        c.execute("CREATE TABLE IF NOT EXISTS pp_test_seen (event_id bigint NOT NULL, drain text NOT NULL)")
        c.execute("TRUNCATE pp_test_seen")

    def record(events):
        with connection.cursor() as c:
            c.execute("SELECT pg_sleep(0.02)")  # hold the claim long enough for the drains to overlap
            c.execute(
                "INSERT INTO pp_test_seen SELECT unnest(%s::bigint[]), %s",
                [[e.id for e in events], threading.current_thread().name],
            )

    temp_processor(EventType.LINK_CLICKED, name="t_seen", fn=record)
    try:
        for _ in range(6):
            events_record(type=EventType.LINK_CLICKED, message_ids=list(range(1, 101)))
        start = threading.Barrier(2)
        errors = []

        def run():
            try:
                start.wait()
                events_drain(batch_size=25)
            except Exception as exc:  # surfaced below
                errors.append(exc)
            finally:
                connections.close_all()  # this thread's own connection

        threads = [threading.Thread(target=run, name=f"drain-{i}") for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        # then
        assert not errors
        with connection.cursor() as c:
            c.execute("SELECT count(*), count(DISTINCT event_id), count(DISTINCT drain) FROM pp_test_seen")
            total, distinct, drains = c.fetchone()
        assert total == distinct == 600
        assert drains == 2  # both drains did work side by side (SKIP LOCKED), neither waited the other out
        assert pending_count() == 0
    finally:
        with connection.cursor() as c:
            c.execute("DROP TABLE IF EXISTS pp_test_seen")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_on_the_postprocessing_queue_drains_after_the_debounced_kick(celery_worker_proc):
    import time

    from django.core.cache import cache

    from postprocessing.services.record import _KICK_KEY

    # given a worker consuming only the postprocessing queue, and no beat: only the kick can wake it
    celery_worker_proc.start(queues="postprocessing", concurrency=1)
    cache.delete(_KICK_KEY)
    m = MessageFactory(status=S.SENDING)
    # when an event is recorded in a committed transaction
    with transaction.atomic():
        events_record(type=EventType.LINK_CLICKED, message_ids=[m.id], payload={"click_id": 1})
    # then the worker drains it
    deadline = time.monotonic() + 30
    while pending_count() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pending_count() == 0, celery_worker_proc.log()
    assert Event.objects.get().processed_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_blast_locked_by_preparation_never_blocks_the_drain(blast_with_messages):
    # given a blast row held FOR SHARE by another connection, as a prepare chunk holds it
    blast, msgs = blast_with_messages(3, status=S.SENT)
    move(msgs, S.DELIVERED)
    locked, release = threading.Event(), threading.Event()

    def prepare_chunk():
        try:
            with transaction.atomic(), connection.cursor() as c:
                c.execute("SELECT id FROM messaging_blast WHERE id = %s FOR SHARE", [blast.id])
                locked.set()
                release.wait(30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=prepare_chunk)
    holder.start()
    assert locked.wait(10)
    try:
        # when the drain runs: its events are done at once, the blast keeps its mark, counters wait
        with connection.cursor() as c:
            c.execute("SET lock_timeout = '2s'")  # a wait on the blast row would fail the test, not hang it
        result = events_drain()
        assert result.events == 3 and pending_count() == 0
        assert Blast.objects.get(pk=blast.pk).delivered_count == 0
        assert list(BlastRecount.objects.values_list("blast_id", flat=True)) == [blast.id]
    finally:
        release.set()
        holder.join(10)
        with connection.cursor() as c:
            c.execute("RESET lock_timeout")
    # then the next pass (the next tick) recounts it
    events_drain()
    blast.refresh_from_db()
    assert (blast.delivered_count, blast.status) == (3, "completed")
    assert not BlastRecount.objects.exists()


def _recounts(queries) -> int:
    return sum(1 for q in queries if q["sql"].lstrip().startswith("WITH cells AS"))


@pytest.mark.parametrize(("interval", "recounts"), [(0, 6), (3600, 1)])
def test_a_blast_whose_events_span_many_batches_is_recounted_once_per_interval_and_exact_at_the_end(
    interval, recounts, blast_with_messages
):
    # given a blast whose 30 delivered messages' events (sent, delivered) fill 6 batches of 10
    blast, msgs = blast_with_messages(30, status=S.SENDING)
    move(msgs, S.SENT, S.DELIVERED)
    # when one drain takes them all
    with CaptureQueriesContext(connection) as ctx:
        result = events_drain(batch_size=10, after_batch_interval=interval)
    # then the recount (which re-reads all the blast's messages) ran after every batch only with no interval;
    # with one, once (after the last batch), and the counters and completion are exact when the drain returns
    assert result.batches == 6 and pending_count() == 0
    assert _recounts(ctx.captured_queries) == recounts
    blast.refresh_from_db()
    assert (blast.sent_count, blast.delivered_count, blast.status) == (30, 30, "completed")
    assert not BlastRecount.objects.exists()


def test_a_drain_that_ends_on_a_full_batch_still_recounts_what_it_marked(blast_with_messages):
    # given exactly one full batch of events (the next claim finds nothing)
    blast, msgs = blast_with_messages(5, status=S.SENT)
    move(msgs, S.DELIVERED)
    # when
    with CaptureQueriesContext(connection) as ctx:
        result = events_drain(batch_size=5, after_batch_interval=3600)
    # then
    assert result.batches == 1 and _recounts(ctx.captured_queries) == 1
    assert (blast_row(blast).delivered_count, blast_row(blast).status) == (5, "completed")


def test_a_drain_stopped_by_its_budget_recounts_before_it_returns(blast_with_messages):
    # given more events than the drain may take this time
    blast, msgs = blast_with_messages(20, status=S.SENT)
    move(msgs, S.DELIVERED)
    # when it stops after 2 of 4 batches
    result = events_drain(batch_size=5, max_batches=2, after_batch_interval=3600)
    # then the blast its batches marked was recounted (from its messages, all delivered) and its mark is gone
    assert result.more and result.events == 10
    assert (blast_row(blast).delivered_count, blast_row(blast).status) == (20, "completed")
    assert not BlastRecount.objects.exists()
