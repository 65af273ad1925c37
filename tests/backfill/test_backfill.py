"""statuses_backfill against the sandbox carrier: stuck messages of each kind, dry run, rerun, carrier
errors, the reconciler's unknown verdict, and the query count per repaired message."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from backfill.models import BackfillRun, RunKind, RunState
from backfill.services import BackfillOptions, backfill_run_create, messages_reconcile, statuses_backfill
from carriers.sandbox.state import new_batch_id
from messaging.models import Message
from messaging.status import MessageStatus as S
from postprocessing.models import Event
from tests import factories
from tests.backfill.conftest import counters as counters_of


def backfill(line, **options) -> BackfillRun:
    run = backfill_run_create(organization_id=line.organization_id, line_id=line.id, options=BackfillOptions(**options))
    return statuses_backfill(run_id=run.id)


def status_of(message) -> str:
    return Message.objects.values_list("status", flat=True).get(pk=message.pk)


@pytest.fixture
def kinds(org, make_line, stuck, send_batch, sandbox):
    """One line with a stuck message of every kind the issue names."""
    line = make_line(org)
    delivered = stuck(line, status=S.SENT)
    failed = stuck(line, status=S.SENDING)
    by_reference = stuck(line, status=S.SENDING)
    contacts = [delivered.contact.phone_number, failed.contact.phone_number, by_reference.contact.phone_number]
    sandbox.outcomes({contacts[0]: "Delivered", contacts[1]: "Failed", contacts[2]: "Delivered"})
    batch_id = send_batch(line, contacts[:2], client_reference="b:first")
    Message.objects.filter(pk__in=[delivered.pk, failed.pk]).update(carrier_batch_id=batch_id)
    # The send step died after the carrier call: only our reference was recorded.
    send_batch(line, [contacts[2]], client_reference="b:second")
    Message.objects.filter(pk=by_reference.pk).update(send_batch_ref="b:second")
    never = stuck(line, status=S.SENDING, ref="b:never-sent")  # the carrier call never happened
    return line, {"delivered": delivered, "failed": failed, "by_reference": by_reference, "never": never}


def test_repairs_every_kind_of_stuck_message_through_the_webhook_path(kinds):
    # given
    line, m = kinds
    # when
    run = backfill(line)
    # then
    assert run.state == RunState.SUCCEEDED
    assert status_of(m["delivered"]) == S.DELIVERED
    assert status_of(m["failed"]) == S.FAILED
    assert status_of(m["by_reference"]) == S.DELIVERED
    assert status_of(m["never"]) == S.SENDING
    repaired = Message.objects.get(pk=m["by_reference"].pk)
    assert repaired.carrier_batch_id and repaired.carrier_status == "Delivered"
    failed = Message.objects.get(pk=m["failed"].pk)
    assert failed.carrier_status == "Failed" and failed.error_code and failed.failed_at
    assert run.counts == {
        "checked": 4,
        "updated": {"delivered": 2, "failed": 1},
        "unchanged": 0,
        "not_found": 1,
        "errors": 0,
    }
    assert run.processed == run.total == 4 and run.finished_at and run.started_at
    # Post-processing events fire exactly as for a live webhook: one per real change.
    assert sorted(Event.objects.values_list("message_id", "type")) == sorted(
        [
            (m["delivered"].pk, "message.delivered"),
            (m["failed"].pk, "message.failed"),
            (m["by_reference"].pk, "message.delivered"),
        ]
    )


def test_dry_run_reports_what_would_change_and_changes_nothing(kinds):
    line, m = kinds
    before = dict(Message.objects.values_list("id", "status"))

    run = backfill(line, dry_run=True)

    assert run.state == RunState.SUCCEEDED
    assert run.counts["updated"] == {"delivered": 2, "failed": 1} and run.counts["not_found"] == 1
    assert dict(Message.objects.values_list("id", "status")) == before
    assert not Message.objects.exclude(carrier_batch_id="").filter(pk=m["by_reference"].pk).exists()
    assert not Event.objects.exists()


def test_a_rerun_changes_nothing_more(kinds):
    line, m = kinds
    backfill(line)
    snapshot = list(Message.objects.order_by("id").values())
    events = Event.objects.count()

    again = backfill(line)

    assert list(Message.objects.order_by("id").values()) == snapshot
    assert Event.objects.count() == events
    # Only the message the carrier never saw is still stuck, so only it is asked about again.
    assert again.counts == {"checked": 1, "updated": {}, "unchanged": 0, "not_found": 1, "errors": 0}


def test_in_flight_report_found_through_the_batch_of_our_reference(org, make_line, stuck, send_batch, sandbox):
    # given: the carrier has the batch but the recipient is not final yet (not in the reports list)
    sandbox.state.config.delay_min = sandbox.state.config.delay_max = 3600.0
    line = make_line(org)
    message = stuck(line, status=S.SENDING, ref="b:slow")
    batch_id = send_batch(line, [message.contact.phone_number], client_reference="b:slow")
    # when
    run = backfill(line)
    # then: "sending" → "sent", and the batch id is recorded for the next pass
    message.refresh_from_db()
    assert (message.status, message.carrier_batch_id, message.carrier_status) == (S.SENT, batch_id, "Dispatched")
    assert run.counts["updated"] == {"sent": 1}


def test_options_select_by_status_creation_time_and_limit(org, make_line, stuck, sandbox):
    line = make_line(org)
    old = stuck(line, status=S.SENT, batch_id=new_batch_id())
    Message.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    recent = [stuck(line, status=S.SENT, batch_id=new_batch_id()) for _ in range(3)]
    delivered = stuck(line, status=S.DELIVERED, batch_id=new_batch_id())
    unknown = stuck(line, status=S.UNKNOWN, batch_id=new_batch_id())

    run = backfill(line, since=timezone.now() - timedelta(days=1), limit=2)
    assert run.counts["checked"] == 2 and run.total == 2
    assert [status_of(m) for m in recent] == [S.DELIVERED, S.DELIVERED, S.SENT]
    assert status_of(old) == S.SENT

    run = backfill(line, until=timezone.now() - timedelta(days=1))
    assert run.counts["checked"] == 1 and status_of(old) == S.DELIVERED

    run = backfill(line, statuses=(S.UNKNOWN,))
    assert run.counts["checked"] == 1 and status_of(unknown) == S.DELIVERED
    assert status_of(delivered) == S.DELIVERED


def test_another_lines_messages_are_left_alone(org, make_line, stuck, sandbox):
    line, other_line = make_line(org), make_line(org)
    mine = stuck(line, batch_id=new_batch_id())
    theirs = stuck(other_line, batch_id=new_batch_id())

    backfill(line)

    assert status_of(mine) == S.DELIVERED and status_of(theirs) == S.SENT


def test_all_lines_of_an_organization_each_at_its_own_account(org, other_org, make_line, stuck, sandbox):
    lines = [make_line(org), make_line(org)]
    messages = [stuck(line, batch_id=new_batch_id()) for line in lines]
    foreign = stuck(make_line(other_org), batch_id=new_batch_id())

    run = backfill_run_create(organization_id=org.id, options=BackfillOptions())
    run = statuses_backfill(run_id=run.id)

    assert run.counts["updated"] == {"delivered": 2}
    assert [status_of(m) for m in messages] == [S.DELIVERED, S.DELIVERED]
    assert status_of(foreign) == S.SENT


def test_transient_errors_are_retried(org, make_line, stuck, sandbox):
    line = make_line(org)
    messages = [stuck(line, batch_id=new_batch_id()) for _ in range(3)]
    sandbox.force({"status": 500, "count": 2}, {"status": 503})

    run = backfill(line)

    assert run.counts["errors"] == 0 and run.counts["updated"] == {"delivered": 3}
    assert all(status_of(m) == S.DELIVERED for m in messages)


def test_a_permanent_error_is_counted_and_the_run_goes_on(org, make_line, stuck, sandbox):
    line = make_line(org, rate=5)  # one thread: the forced answer hits the first message
    messages = [stuck(line, batch_id=new_batch_id()) for _ in range(3)]
    sandbox.force({"status": 400, "code": "syntax_invalid_parameter_format", "text": "bad msisdn"})

    run = backfill(line)

    assert run.counts["errors"] == 1 and run.counts["updated"] == {"delivered": 2}
    assert run.error_samples[0]["message_id"] == messages[0].id
    assert "syntax_invalid_parameter_format" in run.error_samples[0]["error"]
    assert "sandbox-token" not in str(run.error_samples)
    assert status_of(messages[0]) == S.SENT


def test_429_pauses_the_whole_pool_instead_of_hammering(org, make_line, stuck, sandbox):
    # given: the carrier allows 5 requests/s (a full bucket of 5), we are told to go at 50/s
    line = make_line(org, rate=50)
    messages = [stuck(line, batch_id=new_batch_id()) for _ in range(15)]
    sandbox.rate_limit(5)
    # when
    run = backfill(line)
    # then: everything repaired, and 429s are a handful per Retry-After pause, not one per request
    assert run.counts["updated"] == {"delivered": 15} and run.counts["errors"] == 0
    assert all(status_of(m) == S.DELIVERED for m in messages)
    counters = counters_of(sandbox)
    assert 1 <= counters["throttled"] <= 8, counters
    assert counters["requests"] - counters["throttled"] == 15


def test_429_retry_after_is_honoured(org, make_line, stuck, sandbox):
    line = make_line(org, rate=5)
    message = stuck(line, batch_id=new_batch_id())
    sandbox.force({"status": 429, "retry_after": 0.2, "count": 3})

    run = backfill(line)

    assert run.counts["errors"] == 0 and status_of(message) == S.DELIVERED
    assert counters_of(sandbox)["requests"] == 4


def test_reconciler_marks_what_the_carrier_no_longer_knows_as_unknown(org, make_line, stuck, sandbox, settings):
    # given
    settings.BACKFILL_RECONCILE_AFTER = timedelta(hours=1)
    line = make_line(org)
    now = timezone.now()
    fresh = stuck(line, status=S.SENDING, ref="b:fresh")  # younger than the reconcile age: not touched
    lost_recently = stuck(line, status=S.SENDING, ref="b:lost-recently")
    lost_long_ago = stuck(line, status=S.SENT, batch_id="01BX5ZZKBKACTAV9WEVGEMMVRZ")  # 2017: past retention
    delivered = stuck(line, status=S.SENT, batch_id=new_batch_id())
    Message.objects.filter(pk=lost_recently.pk).update(created_at=now - timedelta(days=2))
    Message.objects.filter(pk__in=[lost_long_ago.pk, delivered.pk]).update(created_at=now - timedelta(days=20))
    # when
    run_ids = messages_reconcile()
    # then
    assert status_of(fresh) == S.SENDING
    assert status_of(lost_recently) == S.SENDING
    assert status_of(delivered) == S.DELIVERED
    lost = Message.objects.get(pk=lost_long_ago.pk)
    assert lost.status == S.UNKNOWN and "14-day retention window" in lost.error_reason
    assert Event.objects.filter(message_id=lost.pk, type="message.failed").count() == 1
    (run,) = BackfillRun.objects.filter(pk__in=run_ids)
    assert run.kind == RunKind.RECONCILE and run.state == RunState.SUCCEEDED
    assert run.counts["updated"] == {"delivered": 1, "unknown": 1} and run.counts["not_found"] == 1


def test_reconciler_ages_messages_from_their_hand_over_not_their_creation(org, make_line, stuck, sandbox):
    # given: a blast message created 20 days ago (scheduled) whose send started a minute ago
    line = make_line(org)
    now = timezone.now()
    message = stuck(line, status=S.SENDING, ref="b:in-flight")
    Message.objects.filter(pk=message.pk).update(
        created_at=now - timedelta(days=20), sending_at=now - timedelta(minutes=1)
    )
    # when
    run_ids = messages_reconcile()
    # then: not the reconciler's business yet (the send step owns it), let alone "unknown"
    assert run_ids == [] and status_of(message) == S.SENDING


def test_reconciler_passes_are_small_and_take_turns(org, make_line, stuck, sandbox, settings):
    settings.BACKFILL_RECONCILE_BATCH = 2
    line = make_line(org)
    old = timezone.now() - timedelta(hours=2)
    messages = [stuck(line, status=S.SENDING, ref=f"b:none-{i}") for i in range(3)]  # never at the carrier
    Message.objects.filter(pk__in=[m.pk for m in messages]).update(created_at=old)

    first = BackfillRun.objects.get(pk=messages_reconcile()[0])
    second = BackfillRun.objects.get(pk=messages_reconcile()[0])
    third = BackfillRun.objects.get(pk=messages_reconcile()[0])

    assert (first.counts["checked"], second.counts["checked"], third.counts["checked"]) == (2, 1, 2)
    assert second.cursor["after_id"] == messages[2].pk  # continued after the first pass's cursor


def test_a_canceled_run_stops_and_a_claimed_run_is_not_run_twice(org, make_line, stuck, sandbox):
    line = make_line(org)
    stuck(line, batch_id=new_batch_id())
    run = backfill_run_create(organization_id=org.id, line_id=line.id, options=BackfillOptions())
    BackfillRun.objects.filter(pk=run.pk).update(state=RunState.RUNNING, heartbeat_at=timezone.now())

    again = statuses_backfill(run_id=run.id)  # a redelivered task: the run is held by a live worker

    assert again.state == RunState.RUNNING and again.counts["checked"] == 0


@pytest.mark.parametrize("n", [2, 40])
def test_queries_per_run_do_not_grow_with_the_messages_repaired(
    n, org, make_line, stuck, sandbox, django_assert_num_queries
):
    # given
    line = make_line(org, rate=500)
    for _ in range(n):
        stuck(line, batch_id=new_batch_id())
    run = backfill_run_create(organization_id=org.id, line_id=line.id, options=BackfillOptions())
    # when / then: claim, load the run, lines, count, total, one keyset read, one apply (one statement,
    # no savepoint around it: messages_apply_statuses), progress, final state, refresh. Each further
    # chunk of 500 adds a keyset read, an apply and a progress write.
    with django_assert_num_queries(10):
        run = statuses_backfill(run_id=run.id)
    assert run.counts["updated"] == {"delivered": n}


def test_blast_counters_follow_through_post_processing(org, make_line, stuck, sandbox):
    # given: a blast whose messages stayed "sent" (webhooks were never configured)
    from messaging.models import Blast
    from postprocessing.services.drain import events_drain

    line = make_line(org)
    blast = factories.BlastFactory(organization=org, line=line, status="sending", recipient_count=2)
    batch_id = new_batch_id()
    stuck(line, batch_id=batch_id, blast=blast, body="Sale today")
    failed = stuck(line, batch_id=batch_id, blast=blast, body="Sale today")
    sandbox.outcomes({failed.contact.phone_number: "Failed"})
    # when: the backfill, then the post-processing drain (as the postprocessing worker does)
    backfill(line)
    events_drain()
    # then
    blast = Blast.objects.get(pk=blast.pk)
    assert (blast.delivered_count, blast.failed_count) == (1, 1)


def test_a_sliced_run_resumes_from_its_cursor_without_gaps_or_double_counts(org, make_line, stuck, sandbox):
    # given: a run whose time budget runs out at once (what a Celery slice does after 10 minutes)
    line = make_line(org, rate=20)
    messages = [stuck(line, batch_id=new_batch_id()) for _ in range(12)]
    run = backfill_run_create(organization_id=org.id, line_id=line.id, options=BackfillOptions())
    # when
    first = statuses_backfill(run_id=run.id, time_budget=1e-6)
    # then: stopped early, resumable, cursor below every message not yet done
    assert first.state == RunState.PENDING and first.counts["checked"] < 12
    undone = [m.pk for m in messages if status_of(m) == S.SENT]
    assert undone and first.cursor["after_id"] < min(undone)
    # when: the next slice
    final = statuses_backfill(run_id=run.id)
    # then
    assert final.state == RunState.SUCCEEDED
    assert all(status_of(m) == S.DELIVERED for m in messages)
    assert final.counts["checked"] == final.processed == 12 and final.counts["updated"] == {"delivered": 12}
    assert Event.objects.filter(type="message.delivered").count() == 12
