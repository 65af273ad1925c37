"""The queue-time opt-out re-check of single messages (issue 18.4): a number that opts out after a
conversation message is queued and before it is prepared is not texted, and the STOP confirmation
(enqueued with check_opt_out=False) is. Both run through the prepare task as the broker hands it over:
the task's arguments are read back from the real Redis broker."""

from __future__ import annotations

import pytest

from carriers.base import InboundMessage
from messaging.models import Direction, Message, OptOut, OptOutSource
from messaging.services.inbound import InboundItem, inbound_messages_receive
from messaging.services.prepare import OPTED_OUT_CODE
from messaging.services.sending import message_send
from messaging.status import MessageStatus as S
from messaging.tasks import prepare_messages
from tests import factories
from tests.worker import broker_tasks, purge_queues

pytestmark = pytest.mark.django_db


def _broker_tasks(task_name: str) -> list[list]:
    return broker_tasks(task_name, ("prepare", "send", "default"))


@pytest.fixture(autouse=True)
def _clean_broker():
    purge_queues()
    yield
    purge_queues()


def _run_prepare_tasks() -> None:
    """What a prepare worker does: each queued prepare task, with the arguments it was enqueued with."""
    tasks = _broker_tasks("messaging.prepare_messages")
    assert tasks, "nothing was enqueued for prepare"
    purge_queues()
    for args in tasks:
        prepare_messages(*args)


def _sends() -> list[int]:
    return [i for args in _broker_tasks("messaging.send_batch") for i in args[1]]


def test_a_number_that_opts_out_after_queueing_is_not_texted(org, django_capture_on_commit_callbacks):
    conv = factories.ConversationFactory(organization=org)
    other = factories.ConversationFactory(organization=org, line=conv.line)
    # given: two conversation messages queued (the prepare task is in the broker)
    with django_capture_on_commit_callbacks(execute=True):
        blocked = message_send(organization=org, conversation_id=conv.pk, body="Your table is ready")
        kept = message_send(organization=org, conversation_id=other.pk, body="Your table is ready")
    # when: the first contact opts out before the prepare worker gets to it
    OptOut.objects.create(organization=org, phone_number=conv.contact.phone_number, source=OptOutSource.KEYWORD)
    _run_prepare_tasks()
    # then: it is blocked with the opt-out reason and never handed to the send queue; the other is sent
    blocked.refresh_from_db()
    assert (blocked.status, blocked.error_code) == (S.BLOCKED, OPTED_OUT_CODE)
    assert _sends() == [kept.pk]


def test_the_stop_confirmation_goes_through_prepare_to_the_number_that_just_opted_out(
    org, django_capture_on_commit_callbacks
):
    line = factories.LineFactory(organization=org)
    conv = factories.ConversationFactory(organization=org, line=line)
    number = conv.contact.phone_number
    # given: an agent's message queued to the contact
    with django_capture_on_commit_callbacks(execute=True):
        pending = message_send(organization=org, conversation_id=conv.pk, body="Anything else?")
    # when: the contact texts STOP before it is prepared (the carrier webhook's apply step)
    with django_capture_on_commit_callbacks(execute=True):
        inbound_messages_receive(
            items=[
                InboundItem(
                    key=1,
                    account_id=line.carrier_account_id,
                    message=InboundMessage(
                        carrier_id="MO-1", from_number=number, to_number=line.phone_number, body="STOP"
                    ),
                )
            ]
        )
    assert OptOut.objects.filter(organization=org, phone_number=number).exists()
    _run_prepare_tasks()
    # then: the agent's message is blocked, the confirmation is prepared and handed to the send queue
    confirmation = Message.objects.get(direction=Direction.OUTBOUND, body=org.opt_out_reply)
    pending.refresh_from_db()
    confirmation.refresh_from_db()
    assert (pending.status, pending.error_code) == (S.BLOCKED, OPTED_OUT_CODE)
    assert confirmation.status == S.PREPARED and confirmation.carrier_recipient == number
    assert _sends() == [confirmation.pk]


def test_a_scheduled_message_to_a_number_that_opted_out_meanwhile_is_not_texted(
    org, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from messaging.services.prepare import messages_release_due

    conv = factories.ConversationFactory(organization=org)
    other = factories.ConversationFactory(organization=org, line=conv.line)
    later = timezone.now() + timedelta(minutes=5)
    # given: two messages scheduled for later, prepared (status scheduled)
    with django_capture_on_commit_callbacks(execute=True):
        blocked = message_send(organization=org, conversation_id=conv.pk, body="Reminder", send_at=later)
        kept = message_send(organization=org, conversation_id=other.pk, body="Reminder", send_at=later)
    _run_prepare_tasks()
    assert set(Message.objects.filter(pk__in=[blocked.pk, kept.pk]).values_list("status", flat=True)) == {S.SCHEDULED}
    # when: the first contact opts out before the send time, and the time comes
    OptOut.objects.create(organization=org, phone_number=conv.contact.phone_number, source=OptOutSource.KEYWORD)
    groups = messages_release_due(now=later + timedelta(seconds=1))
    # then: only the other one is released for sending
    assert [i for g in groups for i in g.message_ids] == [kept.pk]
    blocked.refresh_from_db()
    assert (blocked.status, blocked.error_code) == (S.BLOCKED, OPTED_OUT_CODE)
