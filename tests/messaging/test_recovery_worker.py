"""Faults with real processes (docs/recovery.md): the broker emptied under a launched blast, and a worker
SIGKILLed mid-blast on Redis and on RabbitMQ. The workers run the project's own broker settings and
embed beat, so the sweepers run as in production; the carrier is a fake on loopback that counts every
recipient it was handed (duplicates are what these tests look for)."""

from __future__ import annotations

import os
import time

import pytest
from django.conf import settings

from messaging import ratelimit
from messaging.models import Message
from messaging.status import MessageStatus as S
from tests import factories, worker
from tests.messaging.test_prepare import _audience, _blast, _no_quiet_hours
from tests.messaging.test_send_worker import _wait_for
from tests.worker import FakeSinch

celery_worker_proc = worker.celery_worker_proc  # the fixture, under its own name

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# The project's settings (30 s visibility timeout, not the test workers' 5 s): what is measured here is
# what production does.
PRODUCTION = {"DJANGO_SETTINGS_MODULE": "config.settings"}
QUEUES = "prepare,send,default"


def _blast_to(fake, n: int, rate: int):
    org = factories.OrganizationFactory()
    _no_quiet_hours(org)
    blast = _blast(org, "Hello {first_name}", _audience(org, n))
    account = blast.line.carrier_account
    account.provider = "sinch"
    account.config = {**account.config, "base_url": fake.url}
    account.save()
    blast.line.rate_per_second = rate
    blast.line.save()
    ratelimit.reset(line_id=blast.line.id)
    return org, blast


def _sent(blast) -> int:
    return Message.objects.filter(blast=blast, status=S.SENT).count()


def _assert_each_recipient_once(fake, n: int) -> None:
    sent = fake.recipients_sent()
    assert len(set(sent)) == n, f"{n - len(set(sent))} recipients never reached the carrier"
    assert len(sent) == n, f"{len(sent) - n} texts sent twice"


redis_broker_only = pytest.mark.skipif(
    os.environ.get("PARLEY_TEST_BROKER") == "rabbitmq",
    reason="a FLUSHDB and kombu's visibility timeout are the Redis broker's (RabbitMQ: the parametrized kill test)",
)


@redis_broker_only
@pytest.mark.parametrize("lost", ["chunks", "sends"])
def test_a_flushed_broker_delays_a_blast_by_seconds_and_loses_nothing(celery_worker_proc, lost):
    """Issue 12.1: launched while the worker is down (lost: its prepare tasks) or after its messages were
    prepared (lost: their send tasks), then FLUSHDB of the broker, then the worker starts."""
    from messaging.services import sending

    with FakeSinch() as fake:
        org, blast = _blast_to(fake, 1500, rate=100_000)
        if lost == "sends":
            celery_worker_proc.start(queues="prepare", env=PRODUCTION)
        sending.blast_launch(organization=org, blast_id=blast.id)
        if lost == "sends":
            _wait_for(
                lambda: Message.objects.filter(blast=blast, status=S.PREPARED).count() == 1500,
                60,
                "1500 prepared",
                celery_worker_proc,
            )
            celery_worker_proc.stop()
        # when: the broker loses everything, then a worker (with beat) comes up
        worker.flush_broker()
        assert _sent(blast) == 0
        celery_worker_proc.start(queues=QUEUES, env=PRODUCTION, beat=True)
        # then: the sweeper finds the work in the database; every recipient is sent once
        _wait_for(lambda: _sent(blast) == 1500, 150, "1500 sent", celery_worker_proc)
        _assert_each_recipient_once(fake, 1500)


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_a_worker_killed_mid_blast_is_replaced_within_a_minute_and_sends_nothing_twice(celery_worker_proc, broker):
    """Issue 12.2: SIGKILL of the whole worker (main process and pool) while a carrier call is in flight
    and paced remainders wait for their countdown in the worker's memory; a new worker starts at once."""
    from messaging.services import sending

    url = settings.CELERY_BROKER_URL
    if broker == "rabbitmq":
        url = worker.AMQP_URL
        reason = worker.amqp_reachable(url)
        if reason:
            pytest.skip(reason)
        worker.purge_amqp_queues(url)
    env = {**PRODUCTION, "CELERY_BROKER_URL": url}
    with FakeSinch() as fake, worker.publishing_to(url):
        # given: a 2,000-recipient blast on a 400/s line: paced sends, remainders held with a countdown
        fake.hold_seconds = 0.3
        org, blast = _blast_to(fake, 2000, rate=400)
        celery_worker_proc.start(queues=QUEUES, env=env, beat=True)
        sending.blast_launch(organization=org, blast_id=blast.id)
        _wait_for(lambda: len(fake.recipients_sent()) >= 400, 60, "the first sends", celery_worker_proc)
        # when: the next carrier call hangs (the carrier has the batch) and the worker is killed during it
        fake.arrived.clear()
        fake.hold_seconds = 60
        assert fake.arrived.wait(60), celery_worker_proc.log()
        celery_worker_proc.kill9()
        killed_at = time.monotonic()
        fake.hold_seconds = 0.3
        assert Message.objects.filter(blast=blast, status=S.SENDING).exists()
        celery_worker_proc.start(queues=QUEUES, env=env, beat=True)
        # then: everything is out well inside the old 15-minute stall, and each recipient once
        _wait_for(lambda: _sent(blast) == 2000, 150, "2000 sent", celery_worker_proc)
        took = time.monotonic() - killed_at
        _assert_each_recipient_once(fake, 2000)
        # Target (docs/recovery.md): work resumes ≤ 60 s after the death; the remaining ~1,600 at
        # 400/s take ~4 s more. Generous for a loaded machine; the bench measures the real figure.
        assert took < 100, f"{took:.0f} s from the kill to the last send"


@redis_broker_only
def test_a_task_held_longer_than_the_visibility_timeout_is_not_handed_out_twice(celery_worker_proc):
    """The short Redis visibility timeout (30 s) is safe for long countdowns and long tasks: the worker
    re-scores the deliveries it holds (config/broker_heartbeat.py), so only a dead worker's run again."""
    import re

    from messaging.tasks import send_resume

    celery_worker_proc.start(queues="send", env=PRODUCTION)
    send_resume.apply_async(args=[0, "b:" + "0" * 32, 1], countdown=45)  # a retry that finds nothing to do

    def runs(what: str) -> int:
        return len(re.findall(rf"Task messaging\.send_resume\[[^\]]+\] {what}", celery_worker_proc.log()))

    _wait_for(lambda: runs("succeeded") >= 1, 120, "the task to run", celery_worker_proc)
    time.sleep(10)  # a restore after the visibility timeout would have been received by now
    assert runs("received") == 1, celery_worker_proc.log()


@redis_broker_only
def test_a_running_worker_keeps_taking_work_after_a_flush(celery_worker_proc):
    """FLUSHDB drops the queues and kombu's binding tables under a running worker and a producer that has
    declared its queue already: what is published afterwards must still reach the worker."""
    import re

    from messaging.tasks import send_resume

    def runs() -> int:
        return len(re.findall(r"Task messaging\.send_resume\[[^\]]+\] succeeded", celery_worker_proc.log()))

    celery_worker_proc.start(queues="send", env=PRODUCTION)
    # a publish before the flush: this process's producer has declared the queue and will not again
    send_resume.apply_async(args=[0, "b:" + "0" * 32, 1])
    _wait_for(lambda: runs() == 1, 30, "the first task", celery_worker_proc)
    worker.flush_broker()
    time.sleep(12)  # past one broker heartbeat (10 s) of the worker
    send_resume.apply_async(args=[0, "b:" + "0" * 32, 1])
    _wait_for(lambda: runs() == 2, 30, "the task published after the flush to run", celery_worker_proc)
