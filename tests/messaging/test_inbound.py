"""Inbound (MO) messages through the webhook store + batch apply: contacts, conversations, keywords."""

from __future__ import annotations

import pytest

from carriers.models import WebhookEvent, WebhookState
from messaging.models import Contact, Conversation, Message, OptOut
from messaging.services.inbound import keyword_of
from messaging.services.reports import webhook_process
from postprocessing.models import Event
from tests import factories

FROM = "+15125550100"

# The intake's caches (account, apply debounce, enqueue memo) fresh, as in tests/carriers.
pytestmark = pytest.mark.usefixtures("fresh_webhook_caches")


def mo(line, body="Hello", from_=FROM, carrier_id="01FC66621XXXXX119Z8PMV1QPR", kind="mo_text", **extra):
    payload = {
        "type": kind,
        "id": carrier_id,
        "from": from_.lstrip("+"),
        "to": line.phone_number.lstrip("+"),
        "body": body,
        "received_at": "2026-10-02T09:34:18.542Z",
        "operator_id": "310260",
        **extra,
    }
    return payload


def test_mo_text_creates_contact_conversation_and_received_message(org, account, line, post_webhook):
    # when
    assert post_webhook(account, "inbound", mo(line, "Hi there")).status_code == 200
    result = webhook_process(debounce=False)
    # then
    assert result.inbound_stored == 1
    contact = Contact.objects.get(organization=org, phone_number=FROM)
    conversation = Conversation.objects.get(line=line, contact=contact)
    message = Message.objects.get(direction="in")
    assert (message.conversation_id, message.body, message.status) == (conversation.id, "Hi there", "received")
    assert message.received_at.isoformat().startswith("2026-10-02T09:34:18")
    assert list(Event.objects.values_list("type", "message_id")) == [("message.received", message.id)]
    assert WebhookEvent.objects.get().state == WebhookState.PROCESSED


def test_mo_binary_is_kept(account, line, post_webhook):
    post_webhook(account, "inbound", mo(line, "SGVsbG8=", kind="mo_binary", udh="050003CC0201"))
    webhook_process(debounce=False)
    message = Message.objects.get(direction="in")
    assert message.body == "" and message.media[0]["base64"] == "SGVsbG8=" and message.media[0]["udh"] == "050003CC0201"


def test_existing_contact_and_closed_conversation_are_reused_and_reopened(org, account, line, post_webhook):
    contact = factories.ContactFactory(organization=org, phone_number=FROM)
    conversation = factories.ConversationFactory(organization=org, line=line, contact=contact, status="closed")
    post_webhook(account, "inbound", mo(line))
    webhook_process(debounce=False)
    conversation.refresh_from_db()
    assert Contact.objects.count() == 1 and Conversation.objects.count() == 1
    assert conversation.status == "open" and Message.objects.get().conversation_id == conversation.id


def test_a_burst_is_set_based(account, line, post_webhook, django_assert_max_num_queries):
    for i in range(40):
        post_webhook(account, "inbound", mo(line, f"msg {i}", from_=f"+1512555{1000 + i}", carrier_id=f"MO{i}"))
    with django_assert_max_num_queries(20):  # independent of the burst size
        webhook_process(debounce=False)
    assert Message.objects.filter(direction="in").count() == 40
    assert Conversation.objects.count() == 40


def test_duplicate_mo_is_stored_once(account, line, post_webhook):
    post_webhook(account, "inbound", mo(line))
    post_webhook(account, "inbound", mo(line))
    webhook_process(debounce=False)
    post_webhook(account, "inbound", mo(line))
    webhook_process(debounce=False)
    assert Message.objects.filter(direction="in").count() == 1
    assert set(WebhookEvent.objects.values_list("state", flat=True)) == {WebhookState.PROCESSED}


def test_mo_to_a_number_that_is_not_our_line_is_stored_and_failed(account, line, post_webhook):
    payload = mo(line)
    payload["to"] = "15125559999"
    assert post_webhook(account, "inbound", payload).status_code == 200
    webhook_process(debounce=False)
    event = WebhookEvent.objects.get()
    assert event.state == WebhookState.FAILED and "+15125559999 is not an active line" in event.error
    assert not Message.objects.exists()


def test_mo_to_another_accounts_line_is_refused(org, account, post_webhook):
    other_line = factories.LineFactory(organization=org)  # its own carrier account
    post_webhook(account, "inbound", mo(other_line))
    webhook_process(debounce=False)
    assert WebhookEvent.objects.get().state == WebhookState.FAILED
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    "word", ["STOP", " stop ", "Unsubscribe", "STOPALL", "cancel", "END", "quit", "REVOKE", "optout"]
)
def test_stop_words_opt_out_and_confirm(org, account, line, post_webhook, word):
    post_webhook(account, "inbound", mo(line, word))
    webhook_process(debounce=False)
    opt_out = OptOut.objects.get(organization=org, phone_number=FROM)
    assert opt_out.source == "keyword"
    reply = Message.objects.get(direction="out")
    assert (reply.body, reply.status, reply.line_id) == (org.opt_out_reply, "queued", line.id)
    assert reply.conversation_id == Message.objects.get(direction="in").conversation_id
    assert Event.objects.filter(type="message.queued", message_id=reply.id).exists()


def test_stop_inside_a_sentence_is_just_a_message(org, account, line, post_webhook):
    post_webhook(account, "inbound", mo(line, "please stop texting me"))
    webhook_process(debounce=False)
    assert not OptOut.objects.exists() and not Message.objects.filter(direction="out").exists()


@pytest.mark.parametrize("word", ["START", "unstop", "Yes"])
def test_start_words_opt_back_in(org, account, line, post_webhook, word):
    OptOut.objects.create(organization=org, phone_number=FROM, source="keyword")
    post_webhook(account, "inbound", mo(line, word))
    webhook_process(debounce=False)
    assert not OptOut.objects.exists()
    assert Message.objects.get(direction="out").body == org.opt_in_reply


def test_stop_then_start_in_one_burst_ends_opted_in(org, account, line, post_webhook):
    post_webhook(account, "inbound", mo(line, "STOP", carrier_id="A1"))
    post_webhook(account, "inbound", mo(line, "START", carrier_id="A2"))
    webhook_process(debounce=False)
    assert not OptOut.objects.exists()
    assert list(Message.objects.filter(direction="out").order_by("id").values_list("body", flat=True)) == [
        org.opt_out_reply,
        org.opt_in_reply,
    ]


def test_help_replies_with_help_text(org, account, line, post_webhook):
    post_webhook(account, "inbound", mo(line, "help"))
    webhook_process(debounce=False)
    assert Message.objects.get(direction="out").body == org.help_text
    assert not OptOut.objects.exists()


def test_opt_out_is_per_organization(org, account, line, post_webhook):
    other = factories.OrganizationFactory()
    post_webhook(account, "inbound", mo(line, "STOP"))
    webhook_process(debounce=False)
    assert not OptOut.objects.filter(organization=other).exists()


def test_keyword_of():
    assert keyword_of("  Stop\n") == "STOP" and keyword_of("stop now") == "" and keyword_of("") == ""
