"""A reply typed in the thread goes the whole way (issue 16): the app served by Granian, a real Celery
worker and the sandbox carrier (Sinch's wire format on loopback, delivery reports posted back to the served
app's webhook); the thread's 3-second refresh shows the status move to Delivered without a reload."""

from __future__ import annotations

import pytest

from config.queues import ALL_QUEUES
from messaging.models import Direction, Message, MessageStatus
from tests import factories
from tests.worker import (  # noqa: F401  (celery_worker_proc: the fixture)
    celery_worker_proc,
    free_port,
    served_web,
    start_sandbox,
    stop_process,
)

from .conftest import sign_in

pytestmark = [pytest.mark.slow, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sandbox():
    proc = start_sandbox(
        "--delay-min", "0.2", "--delay-max", "0.5", "--duplicate-rate", "0", "--out-of-order-rate", "0"
    )
    yield proc
    stop_process(proc.proc)


def test_a_reply_reaches_delivered_in_the_open_thread(page, celery_worker_proc, sandbox, agent_user, org, settings):  # noqa: F811
    # given: a sandbox line, the served app and a worker that both know the public URL and the sandbox
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"PUBLIC_BASE_URL": base, "SANDBOX_CARRIER_URL": sandbox.url}
    account = factories.CarrierAccountFactory(
        organization=org, provider="sandbox", config={"service_plan_id": "plan-browser", "api_token": "tok"}
    )
    line = factories.LineFactory(organization=org, carrier_account=account)
    conversation = factories.ConversationFactory(organization=org, line=line)
    factories.MessageFactory(
        conversation=conversation, direction=Direction.INBOUND, body="Open today?", status="received"
    )
    # with beat, as `make run` has it: the sweepers are the net for a lost wake-up (docs/recovery.md;
    # reports coalesced into an ending apply task or that beat the send are now woken without them).
    celery_worker_proc.start(queues=ALL_QUEUES, env=env, beat=True)
    with served_web(port=port, REDIS_KEY_PREFIX=f"{settings.REDIS_KEY_PREFIX}-browser", **env) as app_url:
        sign_in(page, app_url, agent_user)
        page.goto(f"{app_url}/inbox/{conversation.pk}/")
        # when
        page.fill("textarea[name=body]", "Yes, until 6pm.")
        page.click("form.reply button[type=submit]")
        page.wait_for_url(f"{app_url}/inbox/{conversation.pk}/")
        message = Message.objects.get(conversation=conversation, direction=Direction.OUTBOUND)
        status = page.locator(f'.msg[data-id="{message.pk}"] .status-name')
        # then: without a reload, the thread shows it delivered (generous: a loaded machine, 2 cores)
        status.filter(has_text="Delivered").wait_for(timeout=90_000)
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED and message.carrier_batch_id
