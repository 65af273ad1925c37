"""The blast rollup (messaging.models.BlastRollup) that a blast's report reads: after a real pipeline run
(a Celery worker with beat, the sandbox carrier posting delivery reports back to the served app) it holds
exactly what the blast's messages say — per status, error code and time bucket — and a redelivered batch of
events, a repeated recount and the backfill command leave it unchanged."""

from __future__ import annotations

import time

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from config.queues import ALL_QUEUES
from messaging import reports
from messaging.models import Blast, BlastRollup, BlastStatus, Message, OptOut
from messaging.processors.blast import blasts_recount
from messaging.services import sending
from messaging.status import MessageStatus as S
from postprocessing.models import EventState
from postprocessing.services.drain import events_drain
from tests import factories
from tests.messaging.test_prepare import _audience, _blast, _no_quiet_hours
from tests.worker import (  # noqa: F401  (celery_worker_proc: the fixture)
    celery_worker_proc,
    free_port,
    served_web,
    start_sandbox,
    stop_process,
)

pytestmark = [pytest.mark.slow, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# The figures straight from the messages: what the report read before the rollup (one pass over them).
_FROM_MESSAGES_SQL = """
SELECT m.status,
       CASE WHEN m.status = ANY(%(failures)s) THEN m.error_code ELSE '' END,
       CASE WHEN m.status = ANY(%(timed)s)
            THEN floor(extract(epoch FROM COALESCE(m.delivered_at, m.failed_at) - %(start)s) / %(bucket)s)::int END,
       count(*)
FROM messaging_message m
WHERE m.blast_id = %(blast)s
GROUP BY 1, 2, 3
"""


def _from_messages(blast: Blast, start, bucket: int) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            _FROM_MESSAGES_SQL,
            {
                "blast": blast.pk,
                "start": start,
                "bucket": bucket,
                "failures": [str(s) for s in reports.FAILURES],
                "timed": [str(S.DELIVERED), *[str(s) for s in reports.FAILURES]],
            },
        )
        return _merged(cursor.fetchall())


def _merged(rows) -> dict:
    out: dict = {}
    for status, code, bucket, n in rows:
        out[(status, code or "", bucket)] = out.get((status, code or "", bucket), 0) + n
    return out


def _from_rollup(blast: Blast, start, bucket: int) -> dict:
    rows = reports.blast_message_rows(blast_id=blast.pk, start=start, bucket_seconds=bucket)
    return _merged((r.status, r.error_code, r.bucket, r.count) for r in rows)


def test_the_rollup_equals_the_messages_figures_after_a_real_run_and_never_counts_twice(
    celery_worker_proc,  # noqa: F811
):
    # given: a blast of 40 to the sandbox carrier, which fails or expires some (with carrier error codes),
    # and an opted-out recipient among them (blocked at preparation)
    sandbox = start_sandbox(
        "--delay-min", "0.1", "--delay-max", "3", "--mix", "delivered=0.6,failed=0.2,expired=0.2", "--seed", "16"
    )
    port = free_port()
    env = {"PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "SANDBOX_CARRIER_URL": sandbox.url}
    try:
        org = factories.OrganizationFactory()
        _no_quiet_hours(org)
        contacts = _audience(org, 40)
        OptOut.objects.create(organization=org, phone_number=contacts[0].phone_number)
        blast = _blast(org, "Hi {first_name}, sale today", contacts)
        account = factories.CarrierAccountFactory(
            organization=org, provider="sandbox", config={"service_plan_id": "plan-rollup", "api_token": "tok"}
        )
        blast.line.carrier_account = account
        blast.line.save()
        celery_worker_proc.start(queues=ALL_QUEUES, env=env, beat=True)
        with served_web(port=port, **env):
            # when: launched, and every message has its final report
            sending.blast_launch(organization=org, blast_id=blast.pk)
            deadline = time.monotonic() + 150
            while Blast.objects.get(pk=blast.pk).status != BlastStatus.COMPLETED:
                assert time.monotonic() < deadline, celery_worker_proc.log()
                time.sleep(0.5)
    finally:
        stop_process(sandbox.proc)
    blast.refresh_from_db()
    start = reports.slot_start(blast.launched_at)
    statuses = set(Message.objects.filter(blast=blast).values_list("status", flat=True))
    assert {S.DELIVERED, S.BLOCKED} <= statuses and statuses & {S.FAILED, S.UNDELIVERED}, statuses
    # then: per status, error code and bucket, for buckets of every size a report uses, the rollup's
    # figures are the messages' own
    for bucket in (10, 30, 60, 3600):
        assert _from_rollup(blast, start, bucket) == _from_messages(blast, start, bucket), bucket
    # and the counters the recount wrote in the same statement agree with it
    cells = _from_rollup(blast, start, 3600)
    assert blast.delivered_count == sum(n for (s, _, _), n in cells.items() if s == S.DELIVERED)
    assert blast.opted_out_count == 1
    kept = list(BlastRollup.objects.filter(blast=blast).order_by("id").values_list("id", "count"))

    # when: every event of the blast is delivered again (a redelivered batch), drained and recounted, and the
    # backfill runs over it
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE postprocessing_event SET state = %s WHERE message_id IN "
            "(SELECT id FROM messaging_message WHERE blast_id = %s)",
            [EventState.PENDING, blast.pk],
        )
    events_drain()
    blasts_recount(blast_ids=[blast.pk])
    call_command("recompute_derived", "--blast", str(blast.pk), "--only", "blasts", verbosity=0)
    # then: nothing counted twice, not a row rewritten
    assert list(BlastRollup.objects.filter(blast=blast).order_by("id").values_list("id", "count")) == kept
    assert _from_rollup(blast, start, 60) == _from_messages(blast, start, 60)


def test_the_backfill_builds_the_rollup_of_a_blast_from_before_it(org):
    # given: a blast whose messages were final before the rollup existed (no rows)
    blast = factories.BlastFactory(organization=org, status=BlastStatus.SENDING)
    conversation = factories.ConversationFactory(organization=org, line=blast.line)
    now = timezone.now()
    for status, code in ((S.DELIVERED, ""), (S.DELIVERED, ""), (S.FAILED, "30007"), (S.UNDELIVERED, "30008")):
        factories.MessageFactory(
            conversation=conversation,
            blast=blast,
            status=status,
            error_code=code,
            delivered_at=now if status == S.DELIVERED else None,
            failed_at=None if status == S.DELIVERED else now,
        )
    assert not BlastRollup.objects.filter(blast=blast).exists()
    # when
    call_command("recompute_derived", "--blast", str(blast.pk), "--only", "blasts", verbosity=0)
    # then
    start = reports.slot_start(now)
    assert (
        _from_rollup(blast, start, 60)
        == _from_messages(blast, start, 60)
        == {
            (S.DELIVERED, "", 0): 2,
            (S.FAILED, "30007", 0): 1,
            (S.UNDELIVERED, "30008", 0): 1,
        }
    )
