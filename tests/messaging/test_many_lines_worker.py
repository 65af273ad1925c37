"""Blasts of several organizations launched together, each on its own paced line (issue 17, item 4), with
real processes: a prefork worker on prepare and send, Redis, and the sandbox carrier journaling each
batch it accepted with its arrival time. Checked on the carrier's record: every organization's first
batch arrives before any organization's second (no blast waits behind another's preparation), and
every line holds its pace.

Before the fix a blast's audience went into the prepare queue as all its chunks of 1,000 at once, so
the organization launched last waited for every chunk of the ones before it; now a blast on a paced
line starts with a chunk of one batch and chains the rest (messaging/services/sending.py:
blast_chunk_plan; docs/send-pipeline.md, "Many lines at once"). Two send groups of one line then wait for
the same refill, and their calls reached the carrier under a second apart (20 in a 1 s window) until a
batched take was also spaced from the line's last call (ratelimit.mark_call).
"""

from __future__ import annotations

import pytest
from django.db import transaction

from messaging import ratelimit
from messaging.services import sending
from tests import factories, worker
from tests.messaging import test_batching_worker as batching
from tests.messaging.test_batching_worker import _calls, _wait_for, max_in_one_second, pacing_excess

# The fixtures, under their own names: the worker, and the sandbox carrier with its journal.
celery_worker_proc = worker.celery_worker_proc
journal, sandbox = batching.journal, batching.sandbox

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ORGS, RATE = 3, 10.0
# Two chunks of 1,000 per blast before the fix: enough that the third organization's first chunk
# waited behind the first two organizations' whole audiences.
RECIPIENTS = 1_200


def _org_blast(url: str):
    org, blast = batching._paced_blast(url, RECIPIENTS, RATE)
    factories.LineFactory(organization=org, carrier_account=blast.line.carrier_account)  # a second, idle line
    return org, blast


def test_blasts_of_several_organizations_start_together_and_each_line_keeps_its_pace(
    celery_worker_proc, sandbox, journal
):
    # given: three organizations, each with a blast of 1,200 on its own line at 10 segments/s
    made = [_org_blast(sandbox.url) for _ in range(ORGS)]
    numbers = {b.line.phone_number: org.id for org, b in made}
    celery_worker_proc.start(queues="prepare,send")
    # when: launched together (their chunks reach the queue at one commit, in launch order)
    with transaction.atomic():
        for org, blast in made:
            sending.blast_launch(organization=org, blast_id=blast.id)

    def calls_by_org() -> dict[int, list[dict]]:
        out: dict[int, list[dict]] = {}
        for c in _calls(journal):
            out.setdefault(numbers[c["from"]], []).append(c)
        return out

    _wait_for(
        lambda: len(calls_by_org()) == ORGS and min(len(v) for v in calls_by_org().values()) >= 3,
        120,
        "three batches of every organization",
        celery_worker_proc,
    )
    for org, blast in made:  # the rest would take two minutes at 10/s
        sending.blast_cancel(organization=org, blast_id=blast.id)
    by_org = calls_by_org()
    # then: every organization's first batch reached the carrier before any organization's second
    firsts = sorted(v[0]["created"] for v in by_org.values())
    seconds = sorted(v[1]["created"] for v in by_org.values())
    print(
        f"\nfirst batches {[round(t - firsts[0], 2) for t in firsts]} s, second batches from "
        f"{seconds[0] - firsts[0]:.2f} s; most in 1 s per line {[max_in_one_second(v) for v in by_org.values()]}"
    )
    assert firsts[-1] < seconds[0]
    # and each line kept its pace in the carrier's record: batches of r × W, and at most the bucket's
    # capacity plus the rate over any run of calls (with our own latency's allowance, JITTER_S)
    for calls in by_org.values():
        assert max(len(c["to"]) for c in calls) <= RATE
        assert max_in_one_second(calls) <= RATE  # the check: no 1 s window above the line's rate
        assert pacing_excess(calls, rate=RATE, capacity=ratelimit.capacity(RATE)) <= 0
    # nothing twice: each recipient reached the carrier once
    sent = [r for v in by_org.values() for c in v for r in c["to"]]
    assert len(sent) == len(set(sent))
