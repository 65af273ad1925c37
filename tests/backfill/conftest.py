"""Backfill tests run against the sandbox carrier (carriers.sandbox: Sinch's wire format on loopback)."""

from __future__ import annotations

import threading
import time

import pytest

from carriers.base import OutboundBatch
from carriers.models import CarrierAccount, Provider
from carriers.registry import adapter_for, adapters_clear
from carriers.sandbox.server import SandboxConfig, make_server
from messaging.status import MessageStatus as S
from tests import factories


class Sandbox:
    def __init__(self, url: str, state):
        self.url, self.state = url, state

    def reset(self) -> None:
        self.state.reset()
        c = self.state.config
        c.delay_min = c.delay_max = 0.0  # outcomes are final at once unless a test says otherwise
        c.mix = {"Delivered": 1.0}
        self.rate_limit(0)

    def rate_limit(self, per_second: float) -> None:
        self.state.config.rate_limit = per_second
        self.state._bucket = (per_second, time.monotonic())  # a full bucket, as a fresh process has

    def outcomes(self, mapping: dict[str, str]) -> None:
        with self.state.lock:
            self.state.status_overrides.update({k.lstrip("+"): v for k, v in mapping.items()})

    def force(self, *specs: dict) -> None:
        with self.state.lock:
            self.state.forced.extend(dict(s) for s in specs)

    @property
    def counters(self) -> dict:
        with self.state.lock:
            return dict(self.state.counters)


@pytest.fixture(scope="session")
def sandbox_server():
    server, state = make_server(SandboxConfig(port=0, delay_min=0.0, delay_max=0.0))
    thread = threading.Thread(target=server.serve_forever, name="sandbox", daemon=True)
    thread.start()
    yield Sandbox(f"http://127.0.0.1:{server.server_address[1]}", state)
    server.shutdown()


@pytest.fixture
def sandbox(sandbox_server):
    sandbox_server.reset()
    adapters_clear()
    yield sandbox_server
    sandbox_server.reset()


@pytest.fixture
def make_line(sandbox):
    def make(organization, *, rate: float = 50.0):
        account = CarrierAccount.objects.create(
            organization=organization, name="Sandbox", provider=Provider.SANDBOX, backfill_rate=rate,
            config={"service_plan_id": "plan1", "api_token": "sandbox-token", "base_url": sandbox.url},
        )
        return factories.LineFactory(organization=organization, carrier_account=account)

    return make


@pytest.fixture
def send_batch(sandbox):
    """A real batch at the sandbox (POST /batches); returns its id."""

    def send(line, recipients: list[str], *, client_reference: str = "") -> str:
        adapter = adapter_for(line.carrier_account)
        batch = OutboundBatch(from_number=line.phone_number, recipients=recipients, body="Hi",
                              client_reference=client_reference, delivery_report="none")
        return adapter.send_batch(batch).batch_id

    return send


@pytest.fixture
def stuck(db):
    """An outbound message of `line` stuck in `status`, optionally with a batch id / batch reference."""

    def make(line, *, status=S.SENT, batch_id: str = "", ref: str = "", contact=None, **fields):
        contact = contact or factories.ContactFactory(organization=line.organization)
        conversation = factories.ConversationFactory(organization=line.organization, line=line, contact=contact)
        return factories.MessageFactory(
            conversation=conversation, status=status, carrier_batch_id=batch_id,
            carrier_recipient=contact.phone_number if batch_id or ref else "", send_batch_ref=ref, **fields,
        )

    return make
