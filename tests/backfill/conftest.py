"""Backfill tests run against the sandbox carrier (carriers.sandbox: Sinch's wire format on loopback)."""

from __future__ import annotations

import pytest

from carriers.base import OutboundBatch
from carriers.registry import adapter_for
from messaging.status import MessageStatus as S
from tests import factories
from tests.sandbox import sandbox_carrier  # noqa: F401 (fixture)
from tests.worker import celery_worker_proc  # noqa: F401 (fixture)


@pytest.fixture
def sandbox(sandbox_carrier):  # noqa: F811 (the imported fixture)
    """The carriers area's sandbox fixture, with outcomes final at once unless a test says otherwise."""
    sandbox_carrier.config.delay_min = sandbox_carrier.config.delay_max = 0.0
    return sandbox_carrier


def counters(sandbox) -> dict:
    with sandbox.state.lock:
        return dict(sandbox.state.counters)


@pytest.fixture
def make_line(sandbox):
    def make(organization, *, rate: float = 50.0):
        account = sandbox.account(organization, name="Sandbox", backfill_rate=rate)
        return factories.LineFactory(organization=organization, carrier_account=account)

    return make


@pytest.fixture
def send_batch(sandbox):
    """A real batch at the sandbox (POST /batches); returns its id."""

    def send(line, recipients: list[str], *, client_reference: str = "") -> str:
        adapter = adapter_for(line.carrier_account)
        batch = OutboundBatch(
            from_number=line.phone_number,
            recipients=recipients,
            body="Hi",
            client_reference=client_reference,
            delivery_report="none",
        )
        return adapter.send_batch(batch).batch_id

    return send


@pytest.fixture
def stuck(db):
    """An outbound message of `line` stuck in `status`, optionally with a batch id / batch reference."""

    def make(line, *, status=S.SENT, batch_id: str = "", ref: str = "", contact=None, **fields):
        contact = contact or factories.ContactFactory(organization=line.organization)
        conversation = factories.ConversationFactory(organization=line.organization, line=line, contact=contact)
        return factories.MessageFactory(
            conversation=conversation,
            status=status,
            carrier_batch_id=batch_id,
            carrier_recipient=contact.phone_number if batch_id or ref else "",
            send_batch_ref=ref,
            **fields,
        )

    return make
