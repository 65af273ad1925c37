"""A delivery report that beats our send call's return, with real workers and no beat (docs/recovery.md).

The carrier accepts the batch and reports on it before its answer reaches us; the report names a batch
id we have not recorded, so its apply finds no message and it waits with backoff. Without beat nothing
but the send can wake it: the send that records the batch id must (carriers.services.webhooks_wake_waiting).
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from carriers.models import WebhookEvent, WebhookState
from messaging.models import Message
from messaging.services import sending
from messaging.status import MessageStatus as S
from tests import factories, worker
from tests.messaging.test_prepare import _no_quiet_hours
from tests.messaging.test_send_worker import _point_line_at, _wait_for
from tests.webhooks import recipient_report
from tests.worker import FakeSinch

celery_worker_proc = worker.celery_worker_proc  # the fixture, under its own name

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fresh_webhook_caches"),
]

# "Within a few seconds": the report's first backoff is 5 s and the beat sweep's period 15 s, but without
# beat neither wakes a worker, so without the send's wake-up the report is never applied in this test.
APPLIED_WITHIN = 10.0


def test_a_report_that_beats_the_send_is_applied_when_the_send_records_its_batch_id(celery_worker_proc, client):
    with FakeSinch() as fake:
        # given: a carrier that takes the batch at once but answers our call only when the test says so
        fake.release = threading.Event()
        org = factories.OrganizationFactory()
        _no_quiet_hours(org)
        conversation = factories.ConversationFactory(organization=org)
        _point_line_at(conversation.line, fake.url)
        account = conversation.line.carrier_account
        celery_worker_proc.start(queues="prepare,send,webhooks", concurrency=2)  # no beat
        message = sending.message_send(organization=org, conversation_id=conversation.id, body="See you at 9")
        assert fake.arrived.wait(30), celery_worker_proc.log()
        batch_id = fake.batches[0]["id"]
        # when: its delivery report arrives before the call returns (no client_reference to place it by)
        message.refresh_from_db()
        assert message.status == S.SENDING and message.carrier_batch_id == ""
        report = recipient_report(message, batch_id=batch_id)
        answer = client.post(
            f"/webhooks/sinch/{account.webhook_secret}/delivery", json.dumps(report), content_type="application/json"
        )
        assert answer.status_code == 200
        _wait_for(
            lambda: WebhookEvent.objects.filter(
                state=WebhookState.PENDING, attempts=1, next_attempt_at__isnull=False
            ).exists(),
            30,
            "the report applied once, matching nothing, and waiting with backoff",
            celery_worker_proc,
        )
        fake.release.set()
        released = time.monotonic()
        # then: the send records the batch id, and the waiting report is applied within a few seconds
        _wait_for(
            lambda: Message.objects.get(pk=message.pk).status == S.DELIVERED,
            APPLIED_WITHIN,
            f"the report applied within {APPLIED_WITHIN} s of the send's answer",
            celery_worker_proc,
        )
        assert Message.objects.get(pk=message.pk).carrier_batch_id == batch_id
        assert WebhookEvent.objects.get().state == WebhookState.PROCESSED
        print(f"applied {time.monotonic() - released:.1f} s after the carrier answered the send")
