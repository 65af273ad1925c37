"""Carrier outages with real processes: a Celery worker (prefork) against the test database, the sandbox
carrier in its own process with a journal of every batch it accepted (kept across its restarts, as a
real carrier's database is), so duplicates are counted by the carrier itself.

Goal of docs/send-pipeline.md ("Carrier outages"): every message out within the outage + 30 s, none twice.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from carriers import breaker
from messaging.models import Message
from messaging.services import sending
from messaging.status import MessageStatus as S
from tests import factories, worker
from tests.messaging.test_prepare import _audience, _blast, _no_quiet_hours
from tests.messaging.test_send_worker import _point_line_at
from tests.worker import free_port, start_sandbox, stop_process

celery_worker_proc = worker.celery_worker_proc  # the fixture, under its own name

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# The goal is outage + 30 s; the slack is for a loaded 2-core machine (the figure is printed).
GOAL_S = 30.0
SLACK_S = 20.0


@pytest.fixture
def journal():
    """Where the sandbox journals what it accepted. Not pytest's tmp_path: other pytest sessions of the
    same user prune old base folders, which once removed the journal under a running sandbox."""
    with tempfile.TemporaryDirectory(prefix="parley-carrier-journal-") as folder:
        yield Path(folder) / "carrier.jsonl"


def _journal(path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _sent_count(ids) -> int:
    return Message.objects.filter(id__in=ids, status=S.SENT).count()


def _wait_all_sent(ids, deadline: float, proc) -> float:
    """Until every message is sent; returns the monotonic time it happened."""
    while time.monotonic() < deadline:
        if _sent_count(ids) == len(ids):
            return time.monotonic()
        time.sleep(0.2)
    raise AssertionError(
        f"{_sent_count(ids)}/{len(ids)} sent by the deadline; statuses "
        f"{Counter(Message.objects.filter(id__in=ids).values_list('status', flat=True))}\n{proc.log()}"
    )


def _assert_each_recipient_once(journal: list[dict], blast) -> None:
    recipients = Counter(r for batch in journal for r in batch["to"])
    messages = list(Message.objects.filter(blast=blast).values_list("carrier_recipient", "carrier_batch_id"))
    assert recipients and max(recipients.values()) == 1, [r for r, n in recipients.items() if n > 1][:5]
    missing = [
        (r, b, ref)
        for r, b, ref in Message.objects.filter(blast=blast).values_list(
            "carrier_recipient", "carrier_batch_id", "send_batch_ref"
        )
        if r not in recipients
    ]
    assert not missing, (missing[:10], [(b["id"], b.get("client_reference"), len(b["to"])) for b in journal])
    assert set(recipients) == {r for r, _ in messages}
    # and each message holds the id of the carrier batch that has its recipient
    by_batch = {batch["id"]: set(batch["to"]) for batch in journal}
    assert all(recipient in by_batch[batch_id] for recipient, batch_id in messages)


def _paced_blast(url: str, n: int, rate: float):
    org = factories.OrganizationFactory()
    _no_quiet_hours(org)
    blast = _blast(org, "Hi {first_name}, doors open at 9", _audience(org, n))
    _point_line_at(blast.line, url, provider="sandbox")
    blast.line.rate_per_second = rate  # many small batches, as a paced line sends them
    blast.line.save()
    return org, blast


def _requests_between(sandbox_url: str, start: float, end: float) -> list[dict]:
    log = requests.get(f"{sandbox_url}/_sandbox/requests", timeout=5).json()["requests"]
    return [r for r in log if start <= r["at"] < end]


def test_a_carrier_answering_503_for_20_seconds_pauses_the_line_and_it_resumes_by_itself(celery_worker_proc, journal):
    sandbox = start_sandbox("--delay-min", "0.05", "--delay-max", "0.2", "--journal", str(journal))
    try:
        # given: 300 messages on a 30/s line (10 batches of 30) and a carrier answering 503 for 20 s
        org, blast = _paced_blast(sandbox.url, 300, 30)
        celery_worker_proc.start(queues="prepare,send")
        outage = 20.0
        requests.post(f"{sandbox.url}/_sandbox/outage", json={"seconds": outage}, timeout=5)
        wall_start, outage_end = time.time(), time.monotonic() + outage
        # when
        sending.blast_launch(organization=org, blast_id=blast.id)
        ids = list(Message.objects.filter(blast=blast).values_list("id", flat=True))
        # (the chunk is prepared by the worker; wait for the rows before watching them)
        deadline = time.monotonic() + 60
        while len(ids) < 300 and time.monotonic() < deadline:
            time.sleep(0.2)
            ids = list(Message.objects.filter(blast=blast).values_list("id", flat=True))
        done = _wait_all_sent(ids, outage_end + GOAL_S + SLACK_S, celery_worker_proc)
        # then: everything out soon after the outage, nothing twice, the breaker did its work
        print(f"\nall 300 sent {done - outage_end:.1f} s after the 20 s outage ended")
        assert done - outage_end <= GOAL_S + SLACK_S
        _assert_each_recipient_once(_journal(journal), blast)
        account = blast.line.carrier_account_id
        assert int(breaker.state(account_id=account)["opened"]) >= 1 and breaker.is_closed(account_id=account)
        # while open, only probes reached the carrier (not every batch's retries)
        during = _requests_between(sandbox.url, wall_start, wall_start + outage)
        assert len(during) <= 25, len(during)
        assert "giving up" not in celery_worker_proc.log()
    finally:
        stop_process(sandbox.proc)


def test_503s_then_the_carrier_process_gone_then_restarted_loses_nothing_and_sends_nothing_twice(
    celery_worker_proc, journal
):
    port = free_port()
    args = ("--delay-min", "0.05", "--delay-max", "0.2", "--journal", str(journal))
    sandbox = start_sandbox(*args, port=port)
    try:
        # given: 300 messages on a 30/s line, some already sent when the carrier falters
        org, blast = _paced_blast(sandbox.url, 300, 30)
        celery_worker_proc.start(queues="prepare,send")
        sending.blast_launch(organization=org, blast_id=blast.id)
        deadline = time.monotonic() + 60
        while Message.objects.filter(blast=blast, status=S.SENT).count() < 60:
            assert time.monotonic() < deadline, celery_worker_proc.log()
            time.sleep(0.1)
        # when: 503s for 8 s, then its process is killed (its pending reports die with it) for 12 s
        requests.post(f"{sandbox.url}/_sandbox/outage", json={"seconds": 8}, timeout=5)
        time.sleep(8)
        os.killpg(sandbox.proc.pid, signal.SIGKILL)
        sandbox.proc.wait(10)
        time.sleep(12)
        sandbox = start_sandbox(*args, port=port)  # the same journal: it knows what it accepted
        back = time.monotonic()
        # then
        ids = list(Message.objects.filter(blast=blast).values_list("id", flat=True))
        assert len(ids) == 300
        done = _wait_all_sent(ids, back + GOAL_S + SLACK_S, celery_worker_proc)
        print(f"\nall 300 sent {done - back:.1f} s after the carrier came back (outage 20 s)")
        _assert_each_recipient_once(_journal(journal), blast)
        assert "giving up" not in celery_worker_proc.log()
    finally:
        stop_process(sandbox.proc)


def test_a_batch_whose_answer_was_lost_after_the_carrier_accepted_it_is_not_sent_again(celery_worker_proc, journal):
    sandbox = start_sandbox("--delay-min", "0.05", "--delay-max", "0.2", "--journal", str(journal))
    try:
        # given: the carrier will accept the next batch and then drop the connection unanswered
        org, blast = _paced_blast(sandbox.url, 20, 100_000)
        requests.post(f"{sandbox.url}/_sandbox/next", json=[{"lose_answer": True}], timeout=5)
        celery_worker_proc.start(queues="prepare,send")
        # when
        start = time.time()
        sending.blast_launch(organization=org, blast_id=blast.id)
        deadline = time.monotonic() + 60
        while Message.objects.filter(blast=blast, status=S.SENT).count() < 20:
            assert time.monotonic() < deadline, celery_worker_proc.log()
            time.sleep(0.1)
        # then: the retry asked by our reference, found the batch and recorded it: one batch, once
        (batch,) = _journal(journal)
        assert set(Message.objects.filter(blast=blast).values_list("carrier_batch_id", flat=True)) == {batch["id"]}
        _assert_each_recipient_once([batch], blast)
        calls = [(r["method"], r["path"].rsplit("/", 1)[-1]) for r in _requests_between(sandbox.url, start, 1e12)]
        assert calls == [("POST", "batches"), ("GET", "batches")]
    finally:
        stop_process(sandbox.proc)
