"""Overdue delivery reports: sent messages whose report has not come by their carrier account's report
delay are asked about at the sandbox carrier (which never posted those reports), paced, once, through
the backfill runner; statuses only move forward. And the beat job runs it in a real worker."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from backfill.models import BackfillRun, RunKind, RunState
from backfill.services import messages_check_overdue
from config.beat import BEAT_SCHEDULE
from config.celery import app
from messaging.models import Message
from messaging.status import MessageStatus as S
from postprocessing.models import Event


def status_of(message) -> str:
    return Message.objects.values_list("status", flat=True).get(pk=message.pk)


def report_reads(sandbox) -> list[float]:
    """Times of the carrier reads of one recipient's status (GET /batches/{id}/delivery_report/{msisdn})."""
    with sandbox.state.lock:
        log = list(sandbox.state.request_log)
    return [at for at, method, path in log if method == "GET" and path.count("/delivery_report/") == 1]


@pytest.fixture
def sent_at_carrier(stuck, send_batch):
    """n messages of `line` the carrier accepted (one batch, no report will ever be posted: delivery_report
    "none"), recorded as sent with its batch id and handed over `ago`."""

    def make(line, n: int, ago: timedelta, *, status=S.SENT):
        messages = [stuck(line, status=status, batch_id="pending") for _ in range(n)]
        batch_id = send_batch(line, [m.contact.phone_number for m in messages])
        Message.objects.filter(pk__in=[m.pk for m in messages]).update(
            carrier_batch_id=batch_id, sending_at=timezone.now() - ago, sent_at=timezone.now() - ago
        )
        return messages

    return make


def test_a_report_the_carrier_never_sent_is_fetched_and_applied_once_it_is_overdue(
    org, make_line, sent_at_carrier, sandbox
):
    # given: a line on an account with the default 15-minute report delay, and one whose reports
    # normally come within a minute
    line = make_line(org)
    quick = make_line(org)
    quick.carrier_account.report_delay_seconds = 60
    quick.carrier_account.save()
    overdue, failed = sent_at_carrier(line, 2, timedelta(minutes=20))
    (not_yet,) = sent_at_carrier(line, 1, timedelta(minutes=5))
    (quick_overdue,) = sent_at_carrier(quick, 1, timedelta(minutes=2))
    sandbox.outcomes({failed.contact.phone_number: "Failed"})
    # when: the pass runs
    run_ids = messages_check_overdue()
    # then: the overdue ones were asked about and their real status applied, through the webhook path
    assert status_of(overdue) == S.DELIVERED and status_of(quick_overdue) == S.DELIVERED
    assert status_of(failed) == S.FAILED
    assert status_of(not_yet) == S.SENT  # not overdue yet: not asked
    assert len(report_reads(sandbox)) == 3
    assert Message.objects.get(pk=overdue.pk).carrier_status == "Delivered"
    assert sorted(Event.objects.filter(message_id__in=[overdue.pk, failed.pk]).values_list("type", flat=True)) == [
        "message.delivered",
        "message.failed",
    ]
    runs = BackfillRun.objects.filter(pk__in=run_ids)
    assert {r.kind for r in runs} == {RunKind.OVERDUE} and {r.state for r in runs} == {RunState.SUCCEEDED}
    assert sum(r.counts["checked"] for r in runs) == 3


def test_the_pass_is_paced_at_the_accounts_backfill_rate(org, make_line, sent_at_carrier, sandbox):
    # given: 25 overdue messages on an account allowed 10 requests/s
    line = make_line(org, rate=10.0)
    sent_at_carrier(line, 25, timedelta(minutes=20))
    # when
    messages_check_overdue()
    # then: 25 reads, never more than 10 in any second (plus the bucket's 50 ms burst tolerance)
    reads = sorted(report_reads(sandbox))
    assert len(reads) == 25
    assert reads[-1] - reads[0] >= 24 / 10 * 0.9
    assert max(sum(1 for t in reads if start <= t < start + 1.0) for start in reads) <= 11
    assert Message.objects.filter(line=line, status=S.DELIVERED).count() == 25


def test_statuses_only_move_forward_and_each_message_is_asked_about_once(org, make_line, sent_at_carrier, sandbox):
    # given: the carrier still has the messages in flight (Dispatched), and one message is already final
    sandbox.config.delay_min = sandbox.config.delay_max = 3600.0
    line = make_line(org)
    in_flight = sent_at_carrier(line, 3, timedelta(minutes=20))
    (final,) = sent_at_carrier(line, 1, timedelta(minutes=20), status=S.DELIVERED)
    # when
    messages_check_overdue()
    # then: "Dispatched" is no step back from sent, nothing changes; the delivered one is not asked about
    assert {status_of(m) for m in in_flight} == {S.SENT} and status_of(final) == S.DELIVERED
    assert len(report_reads(sandbox)) == 3
    (run,) = BackfillRun.objects.filter(kind=RunKind.OVERDUE)
    assert run.counts["unchanged"] == 3
    # and the next pass does not ask again (the hourly reconciler is the next to look)
    assert messages_check_overdue() == [] and len(report_reads(sandbox)) == 3


def test_a_pass_stopped_at_its_limit_is_resumed_by_the_next_without_gaps(
    org, make_line, sent_at_carrier, sandbox, settings
):
    settings.BACKFILL_OVERDUE_BATCH = 2
    line = make_line(org)
    messages = sent_at_carrier(line, 5, timedelta(minutes=20))
    checked = [sum(r.counts["checked"] for r in BackfillRun.objects.filter(pk__in=messages_check_overdue()))]
    while checked[-1]:
        checked.append(sum(r.counts["checked"] for r in BackfillRun.objects.filter(pk__in=messages_check_overdue())))
    assert checked == [2, 2, 1, 0]
    assert {status_of(m) for m in messages} == {S.DELIVERED} and len(report_reads(sandbox)) == 5


def test_messages_past_the_reconcilers_age_are_left_to_the_reconciler(org, make_line, sent_at_carrier, sandbox):
    line = make_line(org)
    (old,) = sent_at_carrier(line, 1, timedelta(hours=2))
    assert messages_check_overdue() == [] and status_of(old) == S.SENT


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_beat_job_runs_the_pass_in_a_bulk_worker(org, make_line, sent_at_carrier, sandbox, celery_worker_proc):
    # given
    line = make_line(org)
    (message,) = sent_at_carrier(line, 1, timedelta(minutes=30))
    celery_worker_proc.start(queues="bulk")
    # when: beat publishes its entry
    entry = BEAT_SCHEDULE["backfill.overdue_reports"]
    assert entry["schedule"] <= 60
    app.send_task(entry["task"])
    # then
    deadline = time.monotonic() + 60
    while status_of(message) != S.DELIVERED:
        assert time.monotonic() < deadline, celery_worker_proc.log()
        time.sleep(0.2)
