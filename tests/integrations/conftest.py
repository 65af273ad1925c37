"""Partner integration tests: the fake NICE and RingCentral servers (integrations/fakes.py) on loopback,
real PostgreSQL and the real Redis broker (enqueued tasks are read back from their queue list)."""

from __future__ import annotations

import pytest

from integrations.fakes import FakeNice, FakeRingCentral
from integrations.models import NiceConnection, RingCentralConnection
from messaging.models import Direction, Message
from messaging.services.status import events_record_for_new_messages
from messaging.status import MessageStatus as S
from tests.factories import ContactFactory, ConversationFactory, LineFactory
from tests.worker import broker_tasks, purge_queues


def queued(task_name: str) -> list[list]:
    """The args of every `task_name` waiting in the broker."""
    return broker_tasks(task_name, ("default", "prepare"))


@pytest.fixture(autouse=True)
def _clean_broker():
    purge_queues()
    yield
    purge_queues()


@pytest.fixture
def fake_nice():
    with FakeNice() as fake:
        yield fake


@pytest.fixture
def fake_rc():
    with FakeRingCentral(bot_id="bot-1") as fake:
        yield fake


def nice_line(org, fake: FakeNice, *, flag: bool, poll_timeout: int = 1):
    line = LineFactory(organization=org, nice_start_polling_on_chat_creation=flag)
    conn = NiceConnection.objects.create(
        organization=org,
        line=line,
        base_url=fake.url,
        access_token=fake.token,
        point_of_contact="poc-42",
        poll_timeout_seconds=poll_timeout,
    )
    return line, conn


def rc_connection(org, fake: FakeRingCentral, *, line=None) -> RingCentralConnection:
    return RingCentralConnection.objects.create(
        organization=org, line=line, base_url=fake.url, bot_token=fake.token, bot_creator_id=fake.bot_id
    )


def inbound(line, body: str = "Hello, I need help", conversation=None) -> Message:
    """An inbound message as the carriers' inbound path stores it (received, with its outbox event)."""
    conversation = conversation or ConversationFactory(
        organization=line.organization, line=line, contact=ContactFactory(organization=line.organization)
    )
    m = Message.objects.create(
        organization=line.organization,
        line=line,
        conversation=conversation,
        contact=conversation.contact,
        direction=Direction.INBOUND,
        body=body,
        rendered_body=body,  # the inbound path fills the one text field too (docs/messaging.md)
        status=S.RECEIVED,
    )
    events_record_for_new_messages(message_ids=[m.pk], status=S.RECEIVED)
    return m


def outbound(conversation, body: str = "We can help", sent_by=None, status: str = S.SENT) -> Message:
    return Message.objects.create(
        organization=conversation.organization,
        line=conversation.line,
        conversation=conversation,
        contact=conversation.contact,
        direction=Direction.OUTBOUND,
        body=body,
        rendered_body=body,
        status=status,
        sent_by=sent_by,
    )
