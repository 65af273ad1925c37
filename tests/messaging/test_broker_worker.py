"""The pipeline on both brokers and across worker processes (docs/scaling.md): on RabbitMQ our queues
are quorum queues, a countdown under a second still arrives (Celery delays countdowns in the broker
there, in whole seconds: config/celery.py), and a blast goes through a prepare worker and a separate
send worker as it would on two machines. RabbitMQ at TEST_AMQP_URL; its cases skip when it is not
reachable."""

from __future__ import annotations

import re
import time

import pytest
from django.conf import settings

from config.queues import ALL_QUEUES, Queue
from messaging.models import Message
from messaging.services import sending
from messaging.status import MessageStatus as S
from tests import factories, worker
from tests.messaging.test_prepare import _audience, _blast, _no_quiet_hours
from tests.messaging.test_send_worker import _point_line_at, _wait_for
from tests.worker import WorkerProc, start_sandbox, stop_process

celery_worker_proc = worker.celery_worker_proc  # the fixture, under its own name

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_url(request, celery_worker_proc):
    """The broker of the case: this process publishes to it and the workers it starts consume from it."""
    url = settings.REDIS_URL
    if request.param == "rabbitmq":
        url = worker.AMQP_URL
        if reason := worker.amqp_reachable(url):
            pytest.skip(reason)
        worker.purge_amqp_queues(url)
    with worker.publishing_to(url):
        yield url


def _runs(log: str, task: str, what: str) -> int:
    return len(re.findall(rf"Task {re.escape(task)}\[[^\]]+\] {what}", log))


def _native_delays_or_skip(broker_url: str) -> None:
    """Countdowns on RabbitMQ go through Celery's native delayed delivery, which this process sets up
    only when its app starts on RabbitMQ: with the suite on Redis and the app switched at run time
    (worker.publishing_to), a countdown is never delivered (seen on Celery 5.7), although the same
    case passes when the whole run is on RabbitMQ. Those cases run there: PARLEY_TEST_BROKER=rabbitmq
    (.ci/run does so when TEST_AMQP_URL is set)."""
    if broker_url.startswith("amqp") and not settings.CELERY_BROKER_URL.startswith("amqp"):
        pytest.skip("countdowns on RabbitMQ need the run on RabbitMQ: PARLEY_TEST_BROKER=rabbitmq")


def test_a_countdown_under_a_second_is_published_and_runs_once(celery_worker_proc, broker_url):
    from messaging.tasks import send_resume

    _native_delays_or_skip(broker_url)
    # given: a worker on the send queue
    celery_worker_proc.start(queues=Queue.SEND.value, env={"CELERY_BROKER_URL": broker_url})
    # when: a paced remainder's kind of countdown, 0.3 s (a retry that finds nothing to do)
    send_resume.apply_async(args=[0, "b:" + "0" * 32, 1], countdown=0.3)
    # then: it is published (on quorum queues Celery 5.7 raised ValueError for it) and runs once
    _wait_for(lambda: _runs(celery_worker_proc.log(), "messaging.send_resume", "succeeded") >= 1, 60, "the task")
    time.sleep(2)
    assert _runs(celery_worker_proc.log(), "messaging.send_resume", "received") == 1, celery_worker_proc.log()


def test_on_rabbitmq_every_queue_is_a_durable_quorum_queue(celery_worker_proc, broker_url):
    from amqp.exceptions import PreconditionFailed
    from kombu import Connection

    if not broker_url.startswith("amqp"):
        pytest.skip("RabbitMQ only")
    # given: a worker that declared every queue
    celery_worker_proc.start(queues=ALL_QUEUES, concurrency=1, env={"CELERY_BROKER_URL": broker_url})
    with Connection(broker_url) as conn:
        for q in Queue:
            # then: declaring it as a quorum queue matches what exists, declaring a classic one is refused
            channel = conn.channel()
            channel.queue_declare(q.value, durable=True, auto_delete=False, arguments={"x-queue-type": "quorum"})
            channel.close()
            channel = conn.channel()
            with pytest.raises(PreconditionFailed):
                channel.queue_declare(q.value, durable=True, auto_delete=False, arguments={"x-queue-type": "classic"})


def test_a_blast_goes_through_a_prepare_worker_and_a_separate_send_worker(celery_worker_proc, broker_url):
    _native_delays_or_skip(broker_url)  # a paced remainder waits with a countdown
    # given: the sandbox carrier, one worker process on "prepare" and another on "send" (two machines)
    sandbox = start_sandbox("--delay-min", "0.05", "--delay-max", "0.1")
    send_worker = WorkerProc()
    try:
        org = factories.OrganizationFactory()
        _no_quiet_hours(org)
        blast = _blast(org, "Hi {first_name}, doors open at 9", _audience(org, 1200))
        _point_line_at(blast.line, sandbox.url, provider="sandbox")
        conv = factories.ConversationFactory(organization=org, line=blast.line)
        env = {"CELERY_BROKER_URL": broker_url}
        celery_worker_proc.start(queues=Queue.PREPARE.value, concurrency=1, env=env)
        send_worker.start(queues=Queue.SEND.value, concurrency=1, env=env)
        # when: a launch (two prepare chunks) and one conversation message
        sending.blast_launch(organization=org, blast_id=blast.id)
        single = sending.message_send(organization=org, conversation_id=conv.id, body="See you at 9")
        # then: everything is accepted by the carrier once; each worker ran only its own queue's tasks
        _wait_for(lambda: Message.objects.filter(status=S.SENT).count() == 1201, 90, "1201 sent", send_worker)
        assert Message.objects.filter(blast=blast).exclude(carrier_batch_id="").count() == 1200
        single.refresh_from_db()
        assert single.carrier_batch_id
        prepare_log, send_log = celery_worker_proc.log(), send_worker.log()
        assert _runs(prepare_log, "messaging.prepare_blast_chunk", "succeeded") == 2
        assert _runs(prepare_log, "messaging.send_batch", "received") == 0
        assert _runs(send_log, "messaging.send_batch", "succeeded") >= 2
        assert _runs(send_log, "messaging.prepare_blast_chunk", "received") == 0
    finally:
        send_worker.stop()
        stop_process(sandbox.proc)
