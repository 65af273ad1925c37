"""The thread's actions (issue 16): assign / close / reopen through the API's services and by role, the
contact panel, short-link clicks, new conversation by number, the reply counter against messaging.segments,
and the organization wall and CSRF on each new form."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.utils import timezone

from messaging import segments
from messaging.models import Contact, Conversation, ConversationStatus, Direction, Message, MessageStatus, OptOut
from organizations.models import Role
from shortener.models import Link
from tests import factories

from .conftest import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent_member(org):
    return factories.MembershipFactory(organization=org, role=Role.AGENT)


@pytest.fixture
def conversation(org):
    conversation = factories.ConversationFactory(organization=org, last_message_at=timezone.now())
    factories.MessageFactory(
        conversation=conversation, direction=Direction.INBOUND, body="Hi?", status=MessageStatus.RECEIVED
    )
    return conversation


def test_agent_takes_an_unassigned_conversation_lets_go_of_it_and_may_not_hand_it_to_others(
    agent_member, admin, conversation
):
    client = signed_in(agent_member)
    # when: assign to me
    response = client.post(f"/inbox/{conversation.pk}/assign/", {"assignee": "me"})
    # then
    assert response.status_code == 302 and response["Location"] == f"/inbox/{conversation.pk}/"
    conversation.refresh_from_db()
    assert conversation.assignee_id == agent_member.user_id
    assert "Assigned to you" in client.get(f"/inbox/{conversation.pk}/").content.decode()
    # an agent may not give it to someone else (a supervisor's call): 403, nothing changes
    assert client.post(f"/inbox/{conversation.pk}/assign/", {"assignee": admin.user_id}).status_code == 403
    conversation.refresh_from_db()
    assert conversation.assignee_id == agent_member.user_id
    # and lets go of their own
    assert client.post(f"/inbox/{conversation.pk}/assign/", {"assignee": ""}).status_code == 302
    conversation.refresh_from_db()
    assert conversation.assignee_id is None


def test_agent_cannot_take_a_conversation_assigned_to_someone_else(agent_member, admin, conversation):
    conversation.assignee = admin.user
    conversation.save()
    client = signed_in(agent_member)
    html = client.get(f"/inbox/{conversation.pk}/").content.decode()
    assert 'id="assign-me"' not in html and 'id="unassign"' not in html
    assert client.post(f"/inbox/{conversation.pk}/assign/", {"assignee": "me"}).status_code == 403
    conversation.refresh_from_db()
    assert conversation.assignee_id == admin.user_id


def test_admin_assigns_to_a_member_and_a_non_member_is_refused_naming_the_field(
    admin, agent_member, conversation, other_org
):
    client = signed_in(admin)
    html = client.get(f"/inbox/{conversation.pk}/").content.decode()
    assert f'<option value="{agent_member.user_id}"' in html  # the member list
    assert client.post(f"/inbox/{conversation.pk}/assign/", {"assignee": agent_member.user_id}).status_code == 302
    conversation.refresh_from_db()
    assert conversation.assignee_id == agent_member.user_id
    # another organization's user: 400 with the field and reason, nothing changes
    outsider = factories.MembershipFactory(organization=other_org)
    response = client.post(f"/inbox/{conversation.pk}/assign/", {"assignee": outsider.user_id})
    assert response.status_code == 400
    assert "assignee: Not a member of this organization." in response.content.decode()
    conversation.refresh_from_db()
    assert conversation.assignee_id == agent_member.user_id


def test_close_and_reopen_through_the_conversation_services(agent_member, conversation):
    client = signed_in(agent_member)
    assert client.post(f"/inbox/{conversation.pk}/close/").status_code == 302
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.CLOSED
    html = client.get(f"/inbox/{conversation.pk}/").content.decode()
    assert 'id="reopen"' in html and 'id="close"' not in html
    assert client.post(f"/inbox/{conversation.pk}/reopen/").status_code == 302
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.OPEN
    assert client.get(f"/inbox/{conversation.pk}/close/").status_code == 405  # a GET changes nothing


def test_support_staff_read_but_do_not_reply_assign_or_close(org, conversation):
    support = factories.MembershipFactory(organization=org, role=Role.SUPPORT)
    client = signed_in(support)
    before = Message.objects.count()
    html = client.get(f"/inbox/{conversation.pk}/").content.decode()
    assert 'id="read-only"' in html and 'id="reply-body"' not in html and 'id="close"' not in html
    assert client.post(f"/inbox/{conversation.pk}/reply/", {"body": "hello"}).status_code == 403
    assert client.post(f"/inbox/{conversation.pk}/assign/", {"assignee": "me"}).status_code == 403
    assert client.post(f"/inbox/{conversation.pk}/close/").status_code == 403
    assert (
        client.post("/inbox/new/", {"line": conversation.line_id, "to": "+15125550100", "body": "x"}).status_code == 403
    )
    conversation.refresh_from_db()
    assert Message.objects.count() == before and conversation.status == "open" and conversation.assignee_id is None


def test_another_organizations_conversation_is_404_for_every_action(agent_member, other_org):
    theirs = factories.ConversationFactory(organization=other_org)
    client = signed_in(agent_member)
    for action in ("assign", "close", "reopen"):
        assert client.post(f"/inbox/{theirs.pk}/{action}/", {"assignee": "me"}).status_code == 404
    assert client.get(f"/inbox/{theirs.pk}/live/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "open" and theirs.assignee_id is None


def test_every_new_form_needs_its_csrf_token(agent_member, conversation):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(agent_member.user)
    for path, data in (
        (f"/inbox/{conversation.pk}/assign/", {"assignee": "me"}),
        (f"/inbox/{conversation.pk}/close/", {}),
        (f"/inbox/{conversation.pk}/reopen/", {}),
        ("/inbox/new/", {"line": conversation.line_id, "to": "+15125550100", "body": "x"}),
        ("/inbox/counter/", {"body": "x"}),
    ):
        assert strict.post(path, data).status_code == 403, path
    conversation.refresh_from_db()
    assert conversation.status == "open" and conversation.assignee_id is None
    # and the pages carry it in every form
    html = strict.get(f"/inbox/{conversation.pk}/").content.decode()
    assert html.count("<form") == html.count('name="csrfmiddlewaretoken"')


def test_contact_panel_shows_custom_fields_and_the_opt_out(agent_member, org, conversation):
    contact = conversation.contact
    contact.custom_fields = {"plan": "Gold", "city": "Austin"}
    contact.email = "ada@example.com"
    contact.save()
    client = signed_in(agent_member)
    html = client.get(f"/inbox/{conversation.pk}/").content.decode()
    assert "<dt>city</dt><dd>Austin</dd>" in html and "<dt>plan</dt><dd>Gold</dd>" in html
    assert "ada@example.com" in html and "Subscribed" in html
    OptOut.objects.create(organization=org, phone_number=contact.phone_number, source="keyword", reason="STOP")
    html = client.get(f"/inbox/{conversation.pk}/").content.decode()
    panel = html[html.index('id="contact"') :]
    assert "Opted out" in panel and "Keyword (STOP)" in panel
    assert 'id="opted-out"' in html  # the reason above the reply box


def test_short_links_show_their_clicks_and_failures_their_carrier_reason(agent_member, org, conversation):
    message = factories.MessageFactory(
        conversation=conversation, body="See https://example.com/menu", status=MessageStatus.DELIVERED
    )
    Link.objects.create(
        code="Ab3dE6g",
        organization=org,
        target_url="https://example.com/menu",
        message=message,
        click_count=3,
        unique_click_count=2,
    )
    factories.MessageFactory(
        conversation=conversation,
        body="Bye",
        status=MessageStatus.UNDELIVERED,
        error_code="EC_ABSENT_SUBSCRIBER",
        error_reason="Absent subscriber",
    )
    html = signed_in(agent_member).get(f"/inbox/{conversation.pk}/").content.decode()
    assert re.search(
        r'data-code="Ab3dE6g">.*https://example.com/menu.*<strong class="clicks">3</strong> clicks \(2 unique\)', html
    )
    assert "Absent subscriber (EC_ABSENT_SUBSCRIBER)" in html


def test_thread_query_count_does_not_grow_with_messages_and_links(
    agent_member, org, conversation, django_assert_num_queries
):
    for i in range(30):
        m = factories.MessageFactory(conversation=conversation, body=f"link https://example.com/{i}")
        Link.objects.create(code=f"c{i:06d}", organization=org, target_url=f"https://example.com/{i}", message=m)
    client = signed_in(agent_member)
    client.get("/inbox/")
    # an agent: no member list (only admins assign to others): one query fewer than test_inbox's admin
    with django_assert_num_queries(9):
        html = client.get(f"/inbox/{conversation.pk}/").content.decode()
    assert html.count('class="link-clicks"') == 30


# ------------------------------------------------------------------------------------- new conversation
def test_new_conversation_by_number_sends_through_the_api_service(agent_member, org):
    line = factories.LineFactory(organization=org)
    client = signed_in(agent_member)
    assert 'name="to"' in client.get("/inbox/new/").content.decode()
    # when: a national format number
    response = client.post("/inbox/new/", {"line": line.pk, "to": "(512) 555-0142", "body": "Your table is ready"})
    # then: E.164 contact, conversation, a queued message, and the thread
    message = Message.objects.get(body="Your table is ready")
    assert message.contact.phone_number == "+15125550142" and message.status == MessageStatus.QUEUED
    assert message.sent_by_id == agent_member.user_id and message.line_id == line.pk
    assert response.status_code == 302 and response["Location"] == f"/inbox/{message.conversation_id}/"


def test_new_conversation_refuses_a_bad_number_an_opted_out_one_and_another_orgs_line(agent_member, org, other_org):
    line = factories.LineFactory(organization=org)
    theirs = factories.LineFactory(organization=other_org)
    OptOut.objects.create(organization=org, phone_number="+15125550143", source="keyword")
    client = signed_in(agent_member)
    before = (Message.objects.count(), Contact.objects.count(), Conversation.objects.count())
    response = client.post("/inbox/new/", {"line": line.pk, "to": "555-01", "body": "hi"})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="error-to"' in html and "is not a valid phone number" in html and 'value="555-01"' in html
    # the refused field says so to assistive technology, names its error and takes the focus
    assert 'required aria-invalid="true" aria-describedby="error-to" autofocus>' in html
    response = client.post("/inbox/new/", {"line": line.pk, "to": "+1 512 555 0143", "body": "hi"})
    assert response.status_code == 409 and "has opted out of texts from this organization" in response.content.decode()
    response = client.post("/inbox/new/", {"line": theirs.pk, "to": "+15125550144", "body": "hi"})
    assert response.status_code == 400 and 'id="error-line"' in response.content.decode()
    response = client.post("/inbox/new/", {"line": line.pk, "to": "+15125550144", "body": " "})
    assert response.status_code == 400 and 'id="error-body"' in response.content.decode()
    assert (Message.objects.count(), Contact.objects.count(), Conversation.objects.count()) == before


# ------------------------------------------------------------------------------------------------ counter
TEXTS = [
    "",
    "Hello",
    "x" * 160,
    "x" * 161,
    "€" * 80,  # extension characters: two septets each
    "€" * 81,
    "Café à 9h",  # é and à are GSM-7
    "Olá, tudo bem? ç",  # ç (lower case) is not: UCS-2
    "Hi 👋",
    "👋" * 35,
    "👋" * 36,
    "a" * 152 + "€" + "a" * 10,  # the escape is not split across parts
    "Line one\nline two [ok] {yes} ~ | ^ \\",
]


@pytest.mark.parametrize("text", TEXTS)
def test_counter_agrees_with_the_send_pipelines_segment_code(agent_member, text):
    expected = segments.count(text)
    response = signed_in(agent_member).post("/inbox/counter/", {"body": text})
    html = response.content.decode()
    assert response.status_code == 200
    shown = re.search(r"(\d+) characters? · (\d+) segments? \(([A-Z0-9-]+)\)", html)
    assert shown is not None, html
    assert (int(shown.group(1)), int(shown.group(2)), shown.group(3)) == (
        len(text),
        expected.segments,
        expected.encoding,
    )


def test_counter_says_when_links_will_be_shortened_and_when_a_text_is_too_long(agent_member):
    client = signed_in(agent_member)
    long_url = "https://example.com/" + "a" * 150
    html = client.post("/inbox/counter/", {"body": f"Menu: {long_url}"}).content.decode()
    assert "1 link will be shortened when sent: 1 segment after shortening" in html
    assert "2 segments (GSM-7)" in html  # before shortening
    html = client.post("/inbox/counter/", {"body": "x" * 1601}).content.decode()
    assert 'id="too-long"' in html
