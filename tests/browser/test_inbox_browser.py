"""The agent's day in a real browser (issue 16): sign in, inbox, thread, reply and see it with its status,
another organization's conversation refused, the inbox at phone width (375 px). (The README's screenshots of
these pages are taken by test_thread_browser.py, with a fuller organization.)"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.models import Direction, Message, MessageStatus
from tests import factories

from .conftest import sign_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _inbox(org):
    org.name = "Riverside Dental"
    org.save()
    now = timezone.now()
    line = factories.LineFactory(organization=org, name="Front desk", phone_number="+15127000100")
    people = [("Ada", "Lovelace", "Can I move my 3pm to 4pm?"), ("Grace", "Hopper", "Thanks, see you then!")]
    conversations = []
    for i, (first, last, text) in enumerate(people):
        contact = factories.ContactFactory(organization=org, first_name=first, last_name=last)
        conversation = factories.ConversationFactory(
            organization=org,
            line=line,
            contact=contact,
            last_message_at=now - timedelta(minutes=5 * i),
            last_message_preview=text,
        )
        factories.MessageFactory(
            conversation=conversation, direction=Direction.INBOUND, body=text, status=MessageStatus.RECEIVED
        )
        conversations.append(conversation)
    factories.MessageFactory(
        conversation=conversations[1],
        body="Your table for 4 is booked for 7pm.",
        status=MessageStatus.FAILED,
        error_code="EC_UNREACHABLE",
        error_reason="Handset unreachable",
    )
    return conversations


def test_sign_in_open_a_thread_reply_and_see_the_message_with_its_status(page, app_url, agent_user, org, tmp_path):
    ada, grace = _inbox(org)
    # when: signing in and opening the newest conversation from the inbox
    sign_in(page, app_url, agent_user)
    rows = page.locator("li.conversation")
    assert rows.count() == 2
    assert "Ada Lovelace" in rows.nth(0).inner_text() and "Can I move my 3pm" in rows.nth(0).inner_text()
    rows.nth(0).click()
    page.wait_for_url(f"{app_url}/inbox/{ada.pk}/")
    assert page.locator(".msg.in").count() == 1
    # and replying
    page.fill("textarea[name=body]", "Sure, 4pm works. See you then.")
    page.click("form.reply button[type=submit]")
    page.wait_for_url(f"{app_url}/inbox/{ada.pk}/")
    # then: the reply is in the thread, outbound, with its status, and in the database as the API writes it
    sent = page.locator(".msg.out").last
    assert "Sure, 4pm works." in sent.inner_text()
    message = Message.objects.get(conversation=ada, direction=Direction.OUTBOUND)
    assert sent.get_attribute("data-id") == str(message.pk)
    assert message.get_status_display() in sent.locator(".status-name").inner_text()
    # and a failed message shows the carrier's reason
    page.goto(f"{app_url}/inbox/{grace.pk}/")
    assert "Handset unreachable" in page.locator(".msg.out.failed").inner_text()


def test_another_organizations_conversation_is_refused(page, app_url, agent_user, other_org):
    theirs = factories.ConversationFactory(organization=other_org, last_message_preview="secret")
    sign_in(page, app_url, agent_user)
    response = page.goto(f"{app_url}/inbox/{theirs.pk}/")
    assert response is not None and response.status == 404
    assert "secret" not in page.content()


def test_the_inbox_and_thread_fit_a_phone_screen(page, app_url, agent_user, org, tmp_path):
    ada, _ = _inbox(org)
    page.set_viewport_size({"width": 375, "height": 812})
    sign_in(page, app_url, agent_user)
    # nothing runs off the screen sideways
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.locator("li.conversation").first.click()
    page.wait_for_url(f"{app_url}/inbox/{ada.pk}/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    box = page.locator("form.reply button[type=submit]").bounding_box()
    assert box is not None and box["x"] + box["width"] <= 375
