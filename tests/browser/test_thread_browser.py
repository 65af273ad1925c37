"""The thread's actions and the live inbox in a real browser (issue 16): assign to me, close, reopen; the
contact panel; a new conversation by number with a refused number first; the reply counter as one types;
a text arriving in an open inbox and thread without a reload; all of it at phone width."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.models import Conversation, Direction, Message, MessageStatus, OptOut
from organizations.models import Role
from tests import factories

from .conftest import screenshot, sign_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# The poll runs every 2 s (webapp/live.py); the wait allows for a loaded 2-core machine.
LIVE_WAIT_MS = 10_000


@pytest.fixture
def admin_user(org):
    return factories.MembershipFactory(organization=org, role=Role.ADMIN).user


def _seed(org):
    org.name = "Riverside Dental"
    org.save()
    now = timezone.now()
    line = factories.LineFactory(organization=org, name="Front desk", phone_number="+15127000100")
    ada = factories.ContactFactory(
        organization=org,
        first_name="Ada",
        last_name="Lovelace",
        email="ada@example.com",
        custom_fields={"patient_id": "RD-1043", "dentist": "Dr. Okafor", "next_visit": "2026-12-14 16:00"},
    )
    conversation = factories.ConversationFactory(
        organization=org, line=line, contact=ada, last_message_at=now, last_message_preview="Can I move my 3pm?"
    )
    factories.MessageFactory(
        conversation=conversation, direction=Direction.INBOUND, body="Can I move my 3pm to 4pm?", status="received"
    )
    reply = factories.MessageFactory(
        conversation=conversation,
        body="Done! Confirm here: https://prly.localhost:8000/Ab3dE6g",
        status=MessageStatus.DELIVERED,
    )
    from shortener.models import Link

    Link.objects.create(
        code="Ab3dE6g",
        organization=org,
        target_url="https://riverside.example/appointments/1043",
        message=reply,
        click_count=2,
        unique_click_count=1,
    )
    factories.MessageFactory(
        conversation=conversation,
        body="Reminder: bring your insurance card.",
        status=MessageStatus.UNDELIVERED,
        error_code="EC_ABSENT_SUBSCRIBER",
        error_reason="Absent subscriber: the handset is off or out of coverage",
    )
    factories.MessageFactory(
        conversation=conversation,
        direction=Direction.INBOUND,
        body="Great. Do I need to bring anything?",
        status=MessageStatus.RECEIVED,
    )
    grace = factories.ContactFactory(organization=org, first_name="Grace", last_name="Hopper")
    other = factories.ConversationFactory(
        organization=org,
        line=line,
        contact=grace,
        last_message_at=now - timedelta(minutes=30),
        last_message_preview="Thanks, see you then!",
    )
    factories.MessageFactory(
        conversation=other, direction=Direction.INBOUND, body="Thanks, see you then!", status=MessageStatus.RECEIVED
    )
    factories.MessageFactory(conversation=other, body="You're welcome!", status=MessageStatus.DELIVERED)
    OptOut.objects.create(organization=org, phone_number=grace.phone_number, source="keyword", reason="STOP")
    return line, conversation, other


def test_assign_to_me_close_and_reopen_with_the_contact_panel(page, app_url, admin_user, org, tmp_path):
    _, conversation, _ = _seed(org)
    page.set_viewport_size({"width": 1200, "height": 900})
    sign_in(page, app_url, admin_user)
    # idle polls answered 304 leave the page as it is (two polls and more)
    with page.expect_response(lambda r: "live=1" in r.url and r.status == 304):
        pass
    page.wait_for_timeout(2_500)
    assert page.locator("li.conversation").count() == 2
    row = page.locator(f'li.conversation[data-id="{conversation.pk}"]')
    assert "unread" in (row.get_attribute("class") or "") and "Needs reply" in row.inner_text()
    screenshot(page, "inbox", tmp_path)
    row.click()
    page.wait_for_url(f"{app_url}/inbox/{conversation.pk}/")
    # the contact panel and the thread's extras
    panel = page.locator("#contact")
    assert "RD-1043" in panel.inner_text() and "Subscribed" in panel.inner_text()
    assert "2 clicks (1 unique)" in page.locator(".link-clicks").inner_text()
    assert "Absent subscriber" in page.locator(".msg.undelivered .reason").inner_text()
    # when: assign to me
    page.click("#assign-me")
    page.locator("#assignee", has_text="Assigned to you").wait_for()
    # the reply counter as one types (served by messaging.segments), and the link notice
    page.fill("#reply-body", "See you at 4pm — details: https://riverside.example/appointments/1043")
    page.locator("#links-hint").wait_for()
    assert "UCS-2" in page.locator("#count").inner_text()
    with page.expect_response(lambda r: "/live/" in r.url and r.status == 304):
        pass
    page.wait_for_timeout(2_500)
    assert page.locator(".msg").count() == 4 and "Assigned to you" in page.locator("#assignee").inner_text()
    screenshot(page, "thread", tmp_path)
    # when: close, then reopen
    page.click("#close")
    page.locator("#conversation-status", has_text="Closed").wait_for()
    conversation.refresh_from_db()
    assert conversation.status == "closed" and conversation.assignee_id == admin_user.pk
    page.click("#reopen")
    page.locator("#conversation-status", has_text="Open").wait_for()
    conversation.refresh_from_db()
    assert conversation.status == "open"


def test_opted_out_contact_shows_the_reason_and_the_send_is_refused(page, app_url, admin_user, org, tmp_path):
    _, _, grace = _seed(org)
    sign_in(page, app_url, admin_user)
    page.goto(f"{app_url}/inbox/{grace.pk}/")
    assert "has opted out" in page.locator("#opted-out").inner_text()
    assert "Opted out" in page.locator("#opt-out-state").inner_text()
    page.fill("#reply-body", "Are you still there?")
    page.click("form.reply button[type=submit]")
    assert "has opted out of texts from this organization" in page.locator("#send-error").inner_text()
    assert not Message.objects.filter(conversation=grace, body="Are you still there?").exists()


def test_new_conversation_by_number_refuses_a_bad_number_then_starts_the_thread(
    page, app_url, admin_user, org, tmp_path
):
    line, _, _ = _seed(org)
    sign_in(page, app_url, admin_user)
    page.click("#new-conversation")
    page.wait_for_url(f"{app_url}/inbox/new/")
    page.fill("#new-to", "555-12")
    page.fill("#reply-body", "Hi! Your new patient forms are ready.")
    page.locator("#count", has_text="segment").wait_for()
    page.click("form.reply button[type=submit]")
    assert "is not a valid phone number" in page.locator("#error-to").inner_text()
    assert page.input_value("#reply-body") == "Hi! Your new patient forms are ready."  # kept
    screenshot(page, "new-conversation", tmp_path)
    page.fill("#new-to", "(512) 555-0177")
    page.click("form.reply button[type=submit]")
    page.wait_for_url(f"{app_url}/inbox/*/")
    conversation = Conversation.objects.get(organization=org, contact__phone_number="+15125550177")
    assert page.url == f"{app_url}/inbox/{conversation.pk}/" and conversation.line_id == line.pk
    assert "Hi! Your new patient forms are ready." in page.locator(".msg.out").last.inner_text()


def test_a_new_text_appears_in_the_open_inbox_and_thread_without_a_reload(page, app_url, admin_user, org):
    _, conversation, _ = _seed(org)
    sign_in(page, app_url, admin_user)
    newcomer = factories.ContactFactory(organization=org, first_name="Alan", last_name="Turing")
    # when: a text from a new contact arrives while the inbox is open (as the inbound path and
    # post-processing leave it: the message, the conversation moved to the top)
    fresh = factories.ConversationFactory(organization=org, line=conversation.line, contact=newcomer)
    factories.MessageFactory(
        conversation=fresh, direction=Direction.INBOUND, body="Is parking free?", status=MessageStatus.RECEIVED
    )
    Conversation.objects.filter(pk=fresh.pk).update(
        last_message_at=timezone.now(), last_message_preview="Is parking free?"
    )
    # then
    first = page.locator("li.conversation").first
    first.filter(has_text="Alan Turing").wait_for(timeout=LIVE_WAIT_MS)
    assert "Is parking free?" in first.inner_text() and "unread" in (first.get_attribute("class") or "")
    # and in an open thread
    page.goto(f"{app_url}/inbox/{conversation.pk}/")
    page.fill("#reply-body", "typing, not lost by the refresh")
    factories.MessageFactory(
        conversation=conversation, direction=Direction.INBOUND, body="Also, is 4:30 ok?", status=MessageStatus.RECEIVED
    )
    page.locator(".msg.in", has_text="Also, is 4:30 ok?").wait_for(timeout=LIVE_WAIT_MS)
    assert page.input_value("#reply-body") == "typing, not lost by the refresh"


def test_thread_and_new_conversation_fit_a_phone_screen(page, app_url, agent_user, org, tmp_path):
    _, conversation, _ = _seed(org)
    page.set_viewport_size({"width": 375, "height": 812})
    sign_in(page, app_url, agent_user)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "inbox-phone", tmp_path)
    page.goto(f"{app_url}/inbox/{conversation.pk}/")
    page.locator("#counter #count").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    for selector in ("#contact", "form.reply button[type=submit]", "#close"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] + box["width"] <= 375, selector
    screenshot(page, "thread-phone", tmp_path)
    page.goto(f"{app_url}/inbox/new/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_older_messages_page_back_and_stay_while_a_new_text_arrives(page, app_url, agent_user, org):
    # given: a thread of 130 texts, a minute apart
    conversation = factories.ConversationFactory(organization=org, last_message_at=timezone.now())
    start = timezone.now() - timedelta(hours=3)
    Message.objects.bulk_create(
        factories.MessageFactory.build(
            conversation=conversation, body=f"Text {i}", created_at=start + timedelta(minutes=i)
        )
        for i in range(130)
    )
    sign_in(page, app_url, agent_user)
    page.goto(f"{app_url}/inbox/{conversation.pk}/")
    # the newest 100
    assert page.locator(".msg").count() == 100 and "Text 30" in page.locator(".msg").first.inner_text()
    # when: "Older messages" (htmx, in place)
    page.click("#older")
    page.locator(".msg", has_text="Text 0").first.wait_for()
    # then: all 130 in order, no link left, the page not reloaded
    bodies = page.locator(".msg .body").all_inner_texts()
    assert bodies == [f"Text {i}" for i in range(130)] and page.locator("#older").count() == 0
    # and a text arriving keeps them all: the live poll re-renders from the page's first message on
    factories.MessageFactory(
        conversation=conversation, direction=Direction.INBOUND, body="Still there?", status=MessageStatus.RECEIVED
    )
    page.locator(".msg", has_text="Still there?").wait_for(timeout=LIVE_WAIT_MS)
    assert page.locator(".msg").count() == 131
