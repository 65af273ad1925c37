"""NICE chats end when Parley is done with the conversation (issue 18.3): the conversation is closed (API,
admin action) or the contact opts out (STOP, the opt-out API). Against the fake NICE server: the chat
is DELETEd there, ended here, and polling stops; a failure at NICE leaves it active for the retry."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from carriers.base import InboundMessage
from integrations.clients import PartnerError
from integrations.models import NiceChat, NiceChatState
from integrations.services import nice_chat_poll, nice_chats_end, nice_messages_forward
from integrations.tasks import nice_end, nice_end_stale
from messaging.models import Conversation, ConversationStatus, OptOut
from messaging.services.contacts import opt_out_create
from messaging.services.conversations import conversations_close
from messaging.services.inbound import InboundItem, inbound_messages_receive
from organizations.services import api_key_create
from tests.factories import ConversationFactory, LineFactory

from .conftest import inbound, nice_line, queued

pytestmark = pytest.mark.django_db(transaction=True)


def _chat(org, fake_nice):
    line, conn = nice_line(org, fake_nice, flag=True)
    m = inbound(line, "Where is my order?")
    assert nice_messages_forward(message_ids=[m.pk]) == 1
    return m, NiceChat.objects.get(conversation=m.conversation)


def _deletes(fake_nice) -> list[str]:
    return [r["path"].rsplit("/", 1)[1] for r in fake_nice.calls("DELETE", "/contacts/chats/{chat}")]


def _run_end_tasks() -> int:
    return sum(nice_end(*args) for args in queued("integrations.nice_end"))


def test_closing_the_conversation_by_api_ends_the_chat_at_nice(org, fake_nice):
    m, chat = _chat(org, fake_nice)
    token = chat.poll_lease_token  # the poll chain's handover token
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(organization=org, name='k').raw_key}")
    # when the conversation is closed
    response = api.post(f"/api/v1/conversations/{m.conversation_id}/close")
    assert response.status_code == 200 and response.json()["status"] == ConversationStatus.CLOSED
    # then one end task is enqueued for its chat, and running it ends the chat at NICE and here
    assert queued("integrations.nice_end") == [[[chat.pk]]]
    assert _run_end_tasks() == 1
    assert _deletes(fake_nice) == [chat.chat_session_id]
    chat.refresh_from_db()
    assert chat.state == NiceChatState.ENDED and chat.ended_at is not None
    # and polling stops: the chain's next link gets no lease
    assert nice_chat_poll(chat_id=chat.pk, handover=token).polled is False
    # a second close changes nothing, enqueues nothing and calls nobody
    again = api.post(f"/api/v1/conversations/{m.conversation_id}/close")
    assert again.status_code == 200
    assert len(queued("integrations.nice_end")) == 1 and _deletes(fake_nice) == [chat.chat_session_id]


def test_another_tenants_conversation_cannot_be_closed(org, other_org, fake_nice):
    m, chat = _chat(other_org, fake_nice)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(organization=org, name='k').raw_key}")
    assert api.post(f"/api/v1/conversations/{m.conversation_id}/close").status_code == 404
    assert Conversation.objects.get(pk=m.conversation_id).status == ConversationStatus.OPEN
    assert conversations_close(conversation_ids=[m.conversation_id], organization_id=org.pk) == []
    assert queued("integrations.nice_end") == []


def test_a_stop_ends_the_chat_after_the_agent_sees_it(org, fake_nice):
    m, chat = _chat(org, fake_nice)
    line = m.line
    # when the contact texts STOP (the carrier webhook's apply step)
    inbound_messages_receive(
        items=[
            InboundItem(
                key=1,
                account_id=line.carrier_account_id,
                message=InboundMessage(
                    carrier_id="MO-9", from_number=m.contact.phone_number, to_number=line.phone_number, body="STOP"
                ),
            )
        ]
    )
    assert queued("integrations.nice_end") == [[[chat.pk]]]
    # and its forward runs first: the agent sees the STOP, then the chat ends
    stop = m.conversation.messages.get(body="STOP")
    assert nice_messages_forward(message_ids=[stop.pk]) == 1
    assert fake_nice.texts(chat.chat_session_id) == ["Where is my order?", "STOP"]
    assert _deletes(fake_nice) == [chat.chat_session_id]
    # the end task then has nothing left to do, and no new chat is started for the opted-out contact
    assert _run_end_tasks() == 0
    assert len(fake_nice.sessions()) == 1
    assert NiceChat.objects.get().state == NiceChatState.ENDED


def test_an_opt_out_by_api_ends_the_chat_and_no_new_one_starts(org, fake_nice):
    m, chat = _chat(org, fake_nice)
    opt_out_create(organization=org, phone_number=m.contact.phone_number)
    assert _run_end_tasks() == 1
    assert _deletes(fake_nice) == [chat.chat_session_id]
    # a text the opted-out contact sends later starts no chat
    later = inbound(m.line, "still there?", conversation=m.conversation)
    assert nice_messages_forward(message_ids=[later.pk]) == 0
    assert len(fake_nice.sessions()) == 1


def test_a_conversation_without_a_chat_enqueues_nothing(org, fake_nice):
    conv = ConversationFactory(organization=org, line=LineFactory(organization=org))
    assert conversations_close(conversation_ids=[conv.pk], organization_id=org.pk) == [conv.pk]
    opt_out_create(organization=org, phone_number=conv.contact.phone_number)
    assert queued("integrations.nice_end") == []


def test_a_failure_at_nice_leaves_the_chat_active_for_the_retry(org, fake_nice):
    m, chat = _chat(org, fake_nice)
    fake_nice.force(503)
    with pytest.raises(PartnerError):
        nice_chats_end(chat_ids=[chat.pk])
    assert NiceChat.objects.get(pk=chat.pk).state == NiceChatState.ACTIVE
    assert nice_chats_end(chat_ids=[chat.pk]) == 1  # NICE answers again: the retry ends it
    assert NiceChat.objects.get(pk=chat.pk).state == NiceChatState.ENDED


def test_the_beat_sweep_ends_chats_a_signal_never_told_us_about(org, fake_nice):
    # given two chats: one whose conversation was closed in the admin form, one whose contact opted out
    # through a path that sends no signal (a bulk import), and one that stays open
    closed, closed_chat = _chat(org, fake_nice)
    opted, opted_chat = _chat(org, fake_nice)
    kept, kept_chat = _chat(org, fake_nice)
    Conversation.objects.filter(pk=closed.conversation_id).update(status=ConversationStatus.CLOSED)
    OptOut.objects.bulk_create([OptOut(organization=org, phone_number=opted.contact.phone_number)])
    assert queued("integrations.nice_end") == []
    # when the beat's sweep runs
    assert nice_end_stale() == 2
    assert _run_end_tasks() == 2
    # then exactly those two chats ended at NICE and here
    assert sorted(_deletes(fake_nice)) == sorted([closed_chat.chat_session_id, opted_chat.chat_session_id])
    states = dict(NiceChat.objects.values_list("id", "state"))
    assert states == {closed_chat.pk: "ended", opted_chat.pk: "ended", kept_chat.pk: "active"}
    assert nice_end_stale() == 0
