"""Inbound texts from senders that are not phone numbers (issue 12 item 10): short codes and
alphanumeric sender ids are stored and flagged, never turned into made-up E.164 numbers, and never texted."""

from __future__ import annotations

import pytest
from django.core.cache import cache as django_cache
from rest_framework.test import APIClient

from messaging.models import Contact, Message, OptOut, SenderKind
from messaging.phone import classify_sender
from messaging.services.blasts import Audience, audience_contacts
from messaging.services.reports import webhook_process
from organizations.services import api_key_create
from tests import factories
from tests.messaging.test_inbound import mo


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("15125550100", ("phone", "+15125550100")),
        ("+44 7911 123456", ("phone", "+447911123456")),
        ("72345", ("short_code", "72345")),
        ("+72345", ("short_code", "72345")),
        ("123", ("short_code", "123")),
        ("abc", ("alphanumeric", "abc")),
        ("MyShop Ltd", ("alphanumeric", "MyShop Ltd")),
        ("1" * 30, ("alphanumeric", "1" * 20)),
    ],
)
def test_senders_are_classified_without_inventing_numbers(raw, expected):
    assert classify_sender(raw) == expected


@pytest.mark.parametrize(("sender", "kind"), [("abc", SenderKind.ALPHANUMERIC), ("72345", SenderKind.SHORT_CODE)])
def test_a_text_from_a_non_phone_sender_is_stored_and_the_sender_flagged(
    org, account, line, post_webhook, sender, kind
):
    # when
    assert post_webhook(account, "inbound", mo(line, "Your code is 1234", from_=sender)).status_code == 200
    result = webhook_process(debounce=False)
    # then: the message is stored; its contact is the sender as given, flagged; no "+abc" / "+72345"
    assert result.inbound_stored == 1
    contact = Contact.objects.get(organization=org)
    assert (contact.phone_number, contact.sender_kind) == (sender, kind)
    message = Message.objects.get(direction="in")
    assert message.contact_id == contact.id and message.carrier_recipient == sender
    assert not Contact.objects.filter(phone_number__startswith="+").exists()


def test_stop_from_a_short_code_opts_nothing_out_and_sends_no_reply(org, account, line, post_webhook):
    org.opt_out_reply = "You are unsubscribed."
    org.save()
    post_webhook(account, "inbound", mo(line, "STOP", from_="72345"))
    webhook_process(debounce=False)
    assert not OptOut.objects.exists()
    assert not Message.objects.filter(direction="out").exists()


def test_a_non_phone_contact_is_never_texted(org, account, line, post_webhook):
    # given: a conversation with an alphanumeric sender, and a phone contact
    post_webhook(account, "inbound", mo(line, "hello", from_="abc"))
    webhook_process(debounce=False)
    sender = Contact.objects.get(phone_number="abc")
    phone = factories.ContactFactory(organization=org)
    django_cache.clear()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(organization=org, name='t').raw_key}")
    conversation = sender.conversations.get()
    # when / then: a reply is refused naming the field; a blast to everyone leaves the sender out
    response = api.post(f"/api/v1/conversations/{conversation.id}/messages", {"body": "hi"}, format="json")
    assert response.status_code == 400, response.content
    assert "cannot be texted" in response.json()["error"]["fields"]["conversation"][0]
    assert list(audience_contacts(organization=org, audience=Audience(all_contacts=True))) == [phone]
    assert api.get(f"/api/v1/contacts/{sender.id}").json()["sender_kind"] == "alphanumeric"
