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


def test_focus_stays_on_the_conversation_across_a_live_refresh(page, app_url, agent_user, org):
    """A keyboard user on a row keeps their place when a new text re-renders the inbox (the swap replaced the
    row they were on and left focus on <body>, back at the top of the page)."""
    ada, grace = _inbox(org)
    sign_in(page, app_url, agent_user)
    page.focus(f"li.conversation[data-id='{grace.pk}'] a.row")
    # when: Grace's conversation gets a newer text, which moves it to the top of the live inbox
    type(grace).objects.filter(pk=grace.pk).update(last_message_at=timezone.now(), last_message_preview="One more")
    page.wait_for_function(f"document.querySelector('li.conversation').dataset.id === '{grace.pk}'", timeout=10_000)
    # then: focus is still on Grace's row
    page.wait_for_timeout(100)  # the refocus runs once htmx has settled the swap
    assert page.evaluate("document.activeElement.closest('li.conversation')?.dataset.id") == str(grace.pk)


def test_older_conversations_moves_focus_to_the_first_row_it_brought(page, app_url, agent_user, org):
    line = factories.LineFactory(organization=org)
    now = timezone.now()
    for i in range(52):
        factories.ConversationFactory(
            organization=org, line=line, last_message_at=now - timedelta(minutes=i), last_message_preview=f"text {i}"
        )
    sign_in(page, app_url, agent_user)
    assert page.locator("li.conversation").count() == 50
    # when: the keyboard user follows "Older conversations"
    page.focus("#more a.more")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('li.conversation').length === 52")
    page.wait_for_timeout(100)
    # then: focus is on the 51st row, where reading continues
    assert page.evaluate("document.activeElement.closest('li.conversation')?.innerText").count("text 50") == 1
