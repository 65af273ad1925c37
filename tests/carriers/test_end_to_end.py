"""Adapter → sandbox → real HTTP callbacks into our webhook views (live server) → batch apply."""

from __future__ import annotations

import time

import pytest
import redis

from carriers.base import OutboundBatch
from carriers.models import WebhookEvent, WebhookState
from carriers.registry import adapter_for
from messaging.models import Message, OptOut
from messaging.services.reports import webhook_process
from tests import factories


@pytest.fixture
def broker(settings):
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete("webhooks")
    yield client
    client.delete("webhooks")


def _wait_rows(count: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stored = WebhookEvent.objects.count()
        if stored >= count:
            return stored
        time.sleep(0.02)
    return WebhookEvent.objects.count()


def test_reports_flow_from_sandbox_to_message_status(transactional_db, live_server, sandbox_carrier, broker):
    # given: three messages handed to the sandbox in one batch, one of which will fail
    org = factories.OrganizationFactory()
    account = sandbox_carrier.account(org)
    line = factories.LineFactory(organization=org, carrier_account=account)
    messages = []
    for _ in range(3):
        conversation = factories.ConversationFactory(organization=org, line=line)
        messages.append(
            factories.MessageFactory(
                conversation=conversation,
                status="sending",
                carrier_recipient=conversation.contact.phone_number,
                send_batch_ref="b:e2e",
            )
        )
    sandbox_carrier.outcomes({messages[2].carrier_recipient: "Rejected"})
    sandbox_carrier.config.duplicate_rate = 0.5
    # when: sent with per-recipient reports to this account's webhook URL
    result = adapter_for(account).send_batch(
        OutboundBatch(
            from_number=line.phone_number,
            recipients=[m.carrier_recipient for m in messages],
            body="Hello",
            client_reference="b:e2e",
            delivery_report="per_recipient",
            callback_url=f"{live_server.url}/webhooks/sinch/{account.webhook_secret}/delivery",
        )
    )
    assert sandbox_carrier.wait_reports(15)
    assert _wait_rows(6) >= 6  # Dispatched + final per recipient (+ duplicates)
    assert broker.llen("webhooks") >= 1  # the view enqueued the apply task
    webhook_process(debounce=False)
    # then: matched through the batch reference (the send call's batch id was never recorded here)
    statuses = dict(Message.objects.filter(pk__in=[m.pk for m in messages]).values_list("pk", "status"))
    assert statuses == {messages[0].pk: "delivered", messages[1].pk: "delivered", messages[2].pk: "failed"}
    assert set(Message.objects.values_list("carrier_batch_id", flat=True)) == {result.batch_id}
    assert set(WebhookEvent.objects.values_list("state", flat=True)) == {WebhookState.PROCESSED}


def test_inbound_stop_from_sandbox(transactional_db, live_server, sandbox_carrier, broker):
    org = factories.OrganizationFactory()
    account = sandbox_carrier.account(org)
    line = factories.LineFactory(organization=org, carrier_account=account)
    sandbox_carrier.inbound(
        from_="+15125550100",
        to=line.phone_number,
        body="Stop",
        url=f"{live_server.url}/webhooks/sinch/{account.webhook_secret}/inbound",
    )
    assert _wait_rows(1) == 1
    webhook_process(debounce=False)
    assert OptOut.objects.filter(organization=org, phone_number="+15125550100", source="keyword").exists()
    assert Message.objects.get(direction="out").body == org.opt_out_reply
