"""The pipeline with real processes: Celery workers (prefork) against the test database, the sandbox
carrier, and a worker killed with SIGKILL in the middle of a carrier call."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest

from messaging import ratelimit
from messaging.models import Message
from messaging.services import carrier_send, prepare, sending
from messaging.status import MessageStatus as S
from messaging.tasks import enqueue_send_groups
from tests import factories, worker
from tests.messaging.test_prepare import _audience, _blast, _no_quiet_hours
from tests.worker import FakeSinch, start_sandbox, stop_process

celery_worker_proc = worker.celery_worker_proc  # the fixture, under its own name

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _wait_for(predicate, timeout: float, what: str, worker=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{worker.log()}" if worker else ""))


def _point_line_at(line, url, provider="sinch"):
    account = line.carrier_account
    account.provider = provider
    account.config = {**account.config, "base_url": url}
    account.save()
    line.rate_per_second = 100_000
    line.save()
    ratelimit.reset(line_id=line.id)


def test_blast_and_conversation_message_go_through_real_workers_to_the_sandbox(celery_worker_proc):
    # given: the sandbox carrier and a worker on the prepare and send queues
    sandbox = start_sandbox("--delay-min", "0.05", "--delay-max", "0.1")
    try:
        org = factories.OrganizationFactory()
        _no_quiet_hours(org)
        blast = _blast(org, "Hi {first_name}, doors open at 9", _audience(org, 1500))
        _point_line_at(blast.line, sandbox.url, provider="sandbox")
        conv = factories.ConversationFactory(organization=org, line=blast.line)
        celery_worker_proc.start(queues="prepare,send")
        # when: launch (two prepare chunks of ≤1000) and one conversation message
        sending.blast_launch(organization=org, blast_id=blast.id)
        single = sending.message_send(organization=org, conversation_id=conv.id, body="See you at 9")
        # then: every message is accepted by the carrier, once, with its batch id
        _wait_for(lambda: Message.objects.filter(status=S.SENT).count() == 1501, 60, "1501 sent messages")
        batches = set(Message.objects.filter(blast=blast).values_list("carrier_batch_id", flat=True))
        assert len(batches) == 2 and "" not in batches
        single.refresh_from_db()
        assert single.carrier_batch_id and single.rendered_body == "See you at 9"
    finally:
        stop_process(sandbox.proc)


@pytest.mark.parametrize("carrier_got_it", [True, False], ids=["carrier-accepted", "never-reached-carrier"])
def test_a_worker_killed_mid_send_loses_nothing_and_sends_nothing_twice(celery_worker_proc, carrier_got_it):
    with FakeSinch() as fake:
        # given: 20 prepared messages and a carrier that holds the call for a long time
        org = factories.OrganizationFactory()
        _no_quiet_hours(org)
        blast = _blast(org, "Hello {first_name}", _audience(org, 20))
        _point_line_at(blast.line, fake.url)
        sending.blast_launch(organization=org, blast_id=blast.id)
        ((lo, hi),) = sending._chunk_ranges(blast.id)
        groups = prepare.blast_prepare_chunk(blast_id=blast.id, first_recipient_id=lo, last_recipient_id=hi)
        fake.hold_seconds = 30
        fake.accept_before_hold = carrier_got_it
        celery_worker_proc.start(queues="send")
        enqueue_send_groups(groups)
        assert fake.arrived.wait(30), celery_worker_proc.log()

        # when: the worker (main process and pool children) is killed during the carrier call
        celery_worker_proc.kill9()
        fake.hold_seconds = 0
        ids = groups[0].message_ids
        assert set(Message.objects.filter(id__in=ids).values_list("status", flat=True)) == {S.SENDING}

        # and a new worker comes up (it gets the unacknowledged task redelivered) and recovery runs
        celery_worker_proc.start(queues="send")
        result = carrier_send.sends_recover(lease=timedelta(0))
        enqueue_send_groups(result.to_send)

        # then: every message ends sent, and the carrier holds each recipient exactly once
        _wait_for(lambda: Message.objects.filter(id__in=ids, status=S.SENT).count() == 20, 30, "20 sent")
        if carrier_got_it:
            assert result.recorded_sent == 20 and result.to_send == []
        else:
            assert result.recorded_sent == 0 and sum(len(g.message_ids) for g in result.to_send) == 20
        # the redelivered copy of the killed task runs on the new worker and must claim nothing
        _wait_for(
            lambda: (
                len(re.findall(r"Task messaging\.send_batch\[[^\]]+\] received", celery_worker_proc.log()))
                >= (1 if carrier_got_it else 2)
            ),
            30,
            "the redelivered task",
        )
        _wait_for(
            lambda: (
                len(re.findall(r"Task messaging\.send_batch\[[^\]]+\] succeeded", celery_worker_proc.log()))
                >= (1 if carrier_got_it else 2)
            ),
            30,
            "the redelivered task to finish",
            celery_worker_proc,
        )
        sent = fake.recipients_sent()
        assert len(sent) == 20 and len(set(sent)) == 20
        batch_ids = set(Message.objects.filter(id__in=ids).values_list("carrier_batch_id", flat=True))
        assert batch_ids == {b["id"] for b in fake.batches}
