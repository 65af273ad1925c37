"""NICE CXone: chat creation, the "start polling on chat creation" flag, polling, the lease, agent replies."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.models import ForwardedMessage, NiceChat, NiceChatState, PartnerReply, ReplyState
from integrations.services import (
    nice_chat_poll,
    nice_event_receive,
    nice_messages_forward,
    nice_polls_rekick,
)
from messaging.models import Direction, Message, OptOut
from messaging.status import MessageStatus as S
from tests.factories import OrganizationFactory

from .conftest import inbound, nice_line, queued

pytestmark = pytest.mark.django_db(transaction=True)


def _events_url(conn) -> str:
    return f"/integrations/nice/{conn.webhook_secret}/events"


def test_flag_on_polling_starts_at_chat_creation(org, fake_nice):
    # given a line with the flag set
    line, conn = nice_line(org, fake_nice, flag=True)
    m = inbound(line, "Hi, my order is late")
    # when the inbound message is forwarded
    assert nice_messages_forward(message_ids=[m.pk]) == 1
    # then a chat was started with the contact's number and the text sent into it
    [session] = fake_nice.sessions()
    start = fake_nice.chats[session]["start"]
    assert start == {
        "pointOfContact": "poc-42",
        "mediaType": 3,
        "fromAddress": m.contact.phone_number,
        "parameters": [f"parley_conversation={m.conversation_id}"],
    }
    assert fake_nice.texts(session) == ["Hi, my order is late"]
    # and polling started with it: the first poll task holds the lease token
    chat = NiceChat.objects.get()
    assert chat.chat_session_id == session and chat.state == NiceChatState.ACTIVE
    assert chat.polling_started_at is not None and chat.poll_lease_token
    assert queued("integrations.nice_poll") == [[chat.pk, chat.poll_lease_token]]


def test_flag_off_polling_starts_only_after_first_agent_event(org, fake_nice, client):
    line, conn = nice_line(org, fake_nice, flag=False)
    m = inbound(line)
    nice_messages_forward(message_ids=[m.pk])
    chat = NiceChat.objects.get()
    # no polling yet: no task, and a stray poll task gets no lease
    assert chat.polling_started_at is None
    assert queued("integrations.nice_poll") == []
    assert nice_chat_poll(chat_id=chat.pk).polled is False
    assert fake_nice.calls("GET", "/contacts/chats/{chat}") == []
    # when the agent's first event arrives by webhook
    response = client.post(
        _events_url(conn), {"chatSessionId": chat.chat_session_id, "event": "AgentJoined"}, "application/json"
    )
    assert response.status_code == 200 and response.json() == {"result": "started"}
    chat.refresh_from_db()
    assert chat.polling_started_at is not None
    assert queued("integrations.nice_poll") == [[chat.pk, chat.poll_lease_token]]
    # a second event does not start a second chain
    again = client.post(_events_url(conn), {"chatSessionId": chat.chat_session_id}, "application/json")
    assert again.json() == {"result": "polling"}
    assert len(queued("integrations.nice_poll")) == 1


def test_second_inbound_message_reuses_the_active_chat(org, fake_nice):
    line, _ = nice_line(org, fake_nice, flag=True)
    first = inbound(line, "one")
    second = inbound(line, "two", conversation=first.conversation)
    nice_messages_forward(message_ids=[first.pk])
    nice_messages_forward(message_ids=[first.pk, second.pk])  # first again: already forwarded
    [session] = fake_nice.sessions()
    assert fake_nice.texts(session) == ["one", "two"]
    assert ForwardedMessage.objects.filter(partner="nice").count() == 2


def test_chat_ended_on_nice_side_starts_a_new_chat_for_the_next_message(org, fake_nice):
    line, _ = nice_line(org, fake_nice, flag=False)
    first = inbound(line, "one")
    nice_messages_forward(message_ids=[first.pk])
    [old] = fake_nice.sessions()
    fake_nice.forget_chat(old)  # send-text now answers 404
    second = inbound(line, "two", conversation=first.conversation)
    nice_messages_forward(message_ids=[second.pk])
    [new] = fake_nice.sessions()
    assert new != old and fake_nice.texts(new) == ["two"]
    assert NiceChat.objects.get(chat_session_id=old).state == NiceChatState.ENDED
    assert NiceChat.objects.get(chat_session_id=new).state == NiceChatState.ACTIVE


def _started_chat(org, fake_nice, **kw):
    line, conn = nice_line(org, fake_nice, flag=True, **kw)
    m = inbound(line)
    nice_messages_forward(message_ids=[m.pk])
    chat = NiceChat.objects.get(conversation=m.conversation)
    return chat, m


def test_agent_reply_becomes_one_outbound_sms(org, fake_nice):
    chat, m = _started_chat(org, fake_nice)
    item = fake_nice.agent_says(chat.chat_session_id, "Your order ships today.")
    # when the poll task runs with the token handed to it
    outcome = nice_chat_poll(chat_id=chat.pk, handover=chat.poll_lease_token)
    # then the agent's text is an outbound SMS of the conversation, queued through the send pipeline
    assert outcome.polled and outcome.replies == 1 and outcome.next_token
    [sms] = Message.objects.filter(direction=Direction.OUTBOUND)
    assert (sms.conversation_id, sms.body, sms.status) == (m.conversation_id, "Your order ships today.", S.QUEUED)
    assert queued("messaging.prepare_messages")[-1][0] == [sms.pk]
    # the same agent message handed over again (a replayed poll answer) sends nothing more
    fake_nice.chats[chat.chat_session_id]["pending"].append(item)
    again = nice_chat_poll(chat_id=chat.pk, handover=outcome.next_token)
    assert again.polled and again.replies == 0
    assert Message.objects.filter(direction=Direction.OUTBOUND).count() == 1
    reply = PartnerReply.objects.get()
    assert (reply.state, reply.message_id) == (ReplyState.SENT, sms.pk)
    chat.refresh_from_db()
    assert chat.last_agent_timestamp == item["Timestamp"] and chat.last_agent_message_at is not None


def test_agent_reply_to_an_opted_out_contact_is_recorded_not_sent(org, fake_nice):
    chat, m = _started_chat(org, fake_nice)
    OptOut.objects.create(organization=org, phone_number=m.contact.phone_number)
    fake_nice.agent_says(chat.chat_session_id, "Hello?")
    nice_chat_poll(chat_id=chat.pk, handover=chat.poll_lease_token)
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()
    assert PartnerReply.objects.get().state == ReplyState.SKIPPED


def test_empty_poll_continues_the_chain(org, fake_nice):
    chat, _ = _started_chat(org, fake_nice)
    outcome = nice_chat_poll(chat_id=chat.pk, handover=chat.poll_lease_token)
    assert outcome.polled and outcome.next_token and outcome.replies == 0
    assert fake_nice.calls("GET", "/contacts/chats/{chat}")[0]["query"] == "timeout=1"


def test_polling_stops_on_chat_ended(org, fake_nice):
    chat, _ = _started_chat(org, fake_nice)
    fake_nice.agent_says(chat.chat_session_id, "Anything else?")
    fake_nice.end_chat(chat.chat_session_id)
    outcome = nice_chat_poll(chat_id=chat.pk, handover=chat.poll_lease_token)
    # the reply before the end is still sent; the chain stops
    assert outcome.ended and outcome.next_token == "" and outcome.replies == 1
    chat.refresh_from_db()
    assert chat.state == NiceChatState.ENDED and chat.ended_at is not None and chat.poll_lease_until is None
    # nothing polls it any more: not a task, not the beat
    assert nice_chat_poll(chat_id=chat.pk).polled is False
    NiceChat.objects.filter(pk=chat.pk).update(poll_lease_until=timezone.now() - timedelta(minutes=5))
    assert nice_polls_rekick() == 0


def test_polling_stops_on_404(org, fake_nice):
    chat, _ = _started_chat(org, fake_nice)
    fake_nice.forget_chat(chat.chat_session_id)
    outcome = nice_chat_poll(chat_id=chat.pk, handover=chat.poll_lease_token)
    assert outcome.ended and outcome.next_token == ""
    assert NiceChat.objects.get(pk=chat.pk).state == NiceChatState.ENDED


def test_failed_poll_keeps_the_chain_with_a_delay(org, fake_nice):
    chat, _ = _started_chat(org, fake_nice)
    fake_nice.force(503, retry_after=7)
    outcome = nice_chat_poll(chat_id=chat.pk, handover=chat.poll_lease_token)
    assert outcome.polled and outcome.next_token and outcome.delay == 7
    assert NiceChat.objects.get(pk=chat.pk).state == NiceChatState.ACTIVE


def test_chat_ended_event_stops_polling(org, fake_nice, client):
    chat, _ = _started_chat(org, fake_nice)
    conn = chat.connection
    response = client.post(
        _events_url(conn), {"chatSessionId": chat.chat_session_id, "event": "ChatEnded"}, "application/json"
    )
    assert response.json() == {"result": "ended"}
    assert nice_chat_poll(chat_id=chat.pk, handover=chat.poll_lease_token).polled is False


def test_two_poll_tasks_for_one_chat_only_one_polls(org, fake_nice):
    # given a chat whose lease is free (expired), and two poll tasks racing for it
    chat, _ = _started_chat(org, fake_nice, poll_timeout=1)
    NiceChat.objects.filter(pk=chat.pk).update(poll_lease_until=timezone.now() - timedelta(seconds=1))
    barrier = threading.Barrier(2)
    outcomes = []

    def run():
        from django.db import connection

        try:
            barrier.wait()
            outcomes.append(nice_chat_poll(chat_id=chat.pk, handover=""))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # then exactly one polled; NICE saw one long poll at a time, once
    assert sorted(o.polled for o in outcomes) == [False, True]
    assert len(fake_nice.calls("GET", "/contacts/chats/{chat}")) == 1
    assert fake_nice.max_concurrent_polls[chat.chat_session_id] == 1


def test_successor_token_is_single_use(org, fake_nice):
    chat, _ = _started_chat(org, fake_nice)
    token = chat.poll_lease_token
    assert nice_chat_poll(chat_id=chat.pk, handover=token).polled is True
    # the same task delivered twice (a redelivery) finds its token already rotated
    assert nice_chat_poll(chat_id=chat.pk, handover=token).polled is False


def test_dead_worker_lease_expires_and_beat_rekicks(org, fake_nice):
    chat, _ = _started_chat(org, fake_nice)
    other, _ = _started_chat(org, fake_nice)
    # given one chat's poller died mid-poll (its lease ran out), the other's is live
    NiceChat.objects.filter(pk=chat.pk).update(
        poll_lease_token="dead-worker",  # noqa: S106
        poll_lease_until=timezone.now() - timedelta(seconds=1),
    )
    before = queued("integrations.nice_poll")
    # when the beat job runs
    assert nice_polls_rekick() == 1
    # then a new chain starts for that chat only, and it gets the lease
    assert queued("integrations.nice_poll") == [*before, [chat.pk, ""]]
    fake_nice.agent_says(chat.chat_session_id, "Still there?")
    outcome = nice_chat_poll(chat_id=chat.pk, handover="")
    assert outcome.polled and outcome.replies == 1
    assert nice_polls_rekick() == 0
    assert other.pk != chat.pk


def test_events_webhook_tenant_isolation(org, fake_nice, client):
    chat, _ = _started_chat(org, fake_nice)
    other_org = OrganizationFactory()
    other_line, other_conn = nice_line(other_org, fake_nice, flag=False)
    # wrong secret
    assert client.post("/integrations/nice/nope/events", {"chatSessionId": "x"}, "application/json").status_code == 404
    # another tenant's secret cannot touch this chat
    response = client.post(_events_url(other_conn), {"chatSessionId": chat.chat_session_id}, "application/json")
    assert response.status_code == 404
    with pytest.raises(Exception, match=chat.chat_session_id):
        nice_event_receive(connection_id=other_conn.pk, payload={"chatSessionId": chat.chat_session_id})
    # bad input names the field
    bad = client.post(_events_url(chat.connection), {"event": "AgentJoined"}, "application/json")
    assert bad.status_code == 400 and bad.json()["field"] == "chatSessionId"


def test_poll_task_hands_the_lease_to_its_successor_and_stops_at_the_end(org, fake_nice):
    from integrations.tasks import nice_poll

    chat, _ = _started_chat(org, fake_nice)
    first = chat.poll_lease_token
    # the task body, run in this process: one poll, then its successor is enqueued with the lease token
    assert nice_poll.run(chat.pk, first) is True
    chat.refresh_from_db()
    assert chat.poll_lease_token != first
    assert queued("integrations.nice_poll")[-1] == [chat.pk, chat.poll_lease_token]
    # the chat ends: the task enqueues nothing more
    fake_nice.end_chat(chat.chat_session_id)
    before = len(queued("integrations.nice_poll"))
    assert nice_poll.run(chat.pk, chat.poll_lease_token) is True
    assert len(queued("integrations.nice_poll")) == before
