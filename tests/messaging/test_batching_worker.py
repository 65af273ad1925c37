"""Blasts on paced lines go out in carrier batches of about rate × window (issue 17, item 1), with real
processes: a prefork Celery worker on the test database, Redis for the token bucket and the broker, and
the sandbox carrier in its own process journaling every batch it accepted with its arrival time (the
carrier's own record, which is what the pacing is checked against).

Before the batching window a 10/s line sent a blast as one burst of 10 and then one recipient per call
(the bucket handed out its first refilled unit every 0.1 s).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

from messaging import ratelimit
from messaging.models import Message
from messaging.services import sending
from messaging.status import MessageStatus as S
from tests import factories, worker
from tests.messaging.test_prepare import _audience, _blast, _no_quiet_hours
from tests.messaging.test_send_worker import _point_line_at
from tests.worker import start_sandbox, stop_process

celery_worker_proc = worker.celery_worker_proc  # the fixture, under its own name

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# What our own latency (claim, HTTP, a loaded machine's scheduling) may shift one call against the
# next at the carrier: the pacing check allows this much extra time per window.
JITTER_S = 0.3


@pytest.fixture
def journal():
    with tempfile.TemporaryDirectory(prefix="parley-carrier-journal-") as folder:
        yield Path(folder) / "carrier.jsonl"


@pytest.fixture
def sandbox(journal):
    proc = start_sandbox("--delay-min", "0.05", "--delay-max", "0.1", "--journal", str(journal))
    yield proc
    stop_process(proc.proc)


def _calls(journal: Path) -> list[dict]:
    """The carrier's record: accepted batches in arrival order ("created" is its unix time)."""
    if not journal.exists():
        return []
    calls = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    return sorted(calls, key=lambda c: c["created"])


def _paced_blast(url: str, n: int, rate: float):
    org = factories.OrganizationFactory()
    _no_quiet_hours(org)
    blast = _blast(org, "Hi {first_name}, doors open at 9", _audience(org, n))
    _point_line_at(blast.line, url, provider="sandbox")
    blast.line.rate_per_second = rate
    blast.line.save()
    ratelimit.reset(line_id=blast.line.id)
    return org, blast


def _wait_for(predicate, timeout: float, what: str, proc) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}: not by the deadline\n{proc.log()}")


def _all_sent(blast, n: int) -> bool:
    return Message.objects.filter(blast=blast, status=S.SENT).count() == n


def pacing_excess(calls: list[dict], *, rate: float, capacity: float, jitter: float = JITTER_S) -> float:
    """How far the carrier's record exceeds a token bucket of `rate` and `capacity`: for every run of
    consecutive calls i..j, recipients(i..j) ≤ capacity + rate × (t_j − t_i + jitter). ≤ 0 = paced.
    (One-segment messages: recipients are segments.) With capacity = one second of rate this is the
    line's rate in every window, plus one burst of at most the capacity after an idle spell."""
    worst = float("-inf")
    for i in range(len(calls)):
        total = 0
        for j in range(i, len(calls)):
            total += len(calls[j]["to"])
            allowed = capacity + rate * (calls[j]["created"] - calls[i]["created"] + jitter)
            worst = max(worst, total - allowed)
    return worst


def max_in_one_second(calls: list[dict]) -> int:
    """The most recipients the carrier received in any 1 s window (for the printout)."""
    times = [(c["created"], len(c["to"])) for c in calls]
    return max((sum(n for t2, n in times if t <= t2 < t + 1.0) for t, _ in times), default=0)


def _assert_each_recipient_once(calls: list[dict], blast) -> None:
    seen = Counter(r for c in calls for r in c["to"])
    assert seen and max(seen.values()) == 1
    assert set(seen) >= set(Message.objects.filter(blast=blast).values_list("carrier_recipient", flat=True))


def test_a_blast_on_a_10_per_second_line_goes_out_in_batches_of_rate_times_window(celery_worker_proc, sandbox, journal):
    # given: 150 recipients on a line paced at 10 segments/s, the default window W = 1 s
    rate, n = 10.0, 150
    org, blast = _paced_blast(sandbox.url, n, rate)
    celery_worker_proc.start(queues="prepare,send")
    # when
    sending.blast_launch(organization=org, blast_id=blast.id)
    _wait_for(lambda: _all_sent(blast, n), 120, "all 150 sent", celery_worker_proc)
    # then: calls of about r × W recipients (≥ 0.8 × r × W on average), each recipient once
    calls = _calls(journal)
    per_call = n / len(calls)
    print(
        f"\n{len(calls)} calls, {per_call:.1f} recipients/call, sizes {Counter(len(c['to']) for c in calls)}, "
        f"max {max_in_one_second(calls)} in a 1 s window"
    )
    assert per_call >= 0.8 * rate * 1.0, Counter(len(c["to"]) for c in calls)
    assert max(len(c["to"]) for c in calls) <= rate  # never more than the bucket holds
    _assert_each_recipient_once(calls, blast)
    # and the carrier's record is paced: the line's rate, one burst of at most the capacity (1 s of rate)
    assert pacing_excess(calls, rate=rate, capacity=ratelimit.capacity(rate)) <= 0


def test_a_fast_line_sends_full_batches_of_1000(celery_worker_proc, sandbox, journal):
    # given: 2,000 recipients (two prepare chunks, so two send groups competing for the bucket) on a
    # 1,000/s line: the second group must wait for a whole batch, not send what refilled meanwhile
    rate, n = 1000.0, 2000
    org, blast = _paced_blast(sandbox.url, n, rate)
    celery_worker_proc.start(queues="prepare,send")
    # when
    sending.blast_launch(organization=org, blast_id=blast.id)
    _wait_for(lambda: _all_sent(blast, n), 120, "all 2,000 sent", celery_worker_proc)
    # then
    calls = _calls(journal)
    print(f"\ncall sizes {[len(c['to']) for c in calls]}")
    assert [len(c["to"]) for c in calls] == [1000, 1000]
    _assert_each_recipient_once(calls, blast)
    assert pacing_excess(calls, rate=rate, capacity=ratelimit.capacity(rate)) <= 0


def test_a_conversation_message_on_a_busy_line_does_not_wait_for_the_window(
    celery_worker_proc, sandbox, journal, settings
):
    # given: a long window (W = 6 s) on a 4/s line: the blast goes in batches of 24, 6 s apart (the
    # launching process sees the same window as the worker: it sizes the blast's first chunk by it)
    rate, window, n = 4.0, 6.0, 48
    settings.SEND_BATCH_WINDOW_SECONDS = window
    org, blast = _paced_blast(sandbox.url, n, rate)
    celery_worker_proc.start(queues="prepare,send", env={"SEND_BATCH_WINDOW_SECONDS": str(window)})
    sending.blast_launch(organization=org, blast_id=blast.id)
    _wait_for(lambda: len(_calls(journal)) >= 1, 60, "the blast's first batch", celery_worker_proc)
    # when: a conversation message on the same line, while the blast waits for its next batch
    asked = time.time()
    msg = sending.message_send_to_number(organization=org, line_id=blast.line.id, to="+15125550199", body="Hi there")
    _wait_for(lambda: _all_sent(blast, n), 90, "the blast sent", celery_worker_proc)
    # then: it went on its own, well before the window was up, between the blast's two batches
    calls = _calls(journal)
    mine = [c for c in calls if c["to"] == ["+15125550199"]]
    blast_calls = [c for c in calls if c not in mine]
    print(f"\nconversation message at the carrier {mine[0]['created'] - asked:.2f} s after the API call")
    assert len(mine) == 1 and Message.objects.get(pk=msg.pk).status in {S.SENT, S.DELIVERED}
    assert [len(c["to"]) for c in blast_calls] == [24, 24]
    assert blast_calls[0]["created"] < mine[0]["created"] < blast_calls[1]["created"]
    assert mine[0]["created"] - asked < window
    # the conversation message counts against the line's pace too (the bucket holds r × W here)
    assert pacing_excess(calls, rate=rate, capacity=rate * window) <= 0
