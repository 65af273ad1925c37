"""The web app's inbox and thread (issue 16): rows, order, filters, search, keyset paging with a pinned
query count, the thread's messages and statuses, replies through the API's send service, opt-out refusal,
the organization wall and CSRF."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from messaging.models import ConversationStatus, Direction, Message, MessageStatus, OptOut
from tests import factories

pytestmark = pytest.mark.django_db


def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'class="conversation" data-id="(\d+)"', html)]


def test_rows_link_to_their_thread_newest_first_with_times_in_the_organizations_zone(agent, org):
    # given: an organization in Tokyo (UTC+9), two conversations
    org.time_zone = "Asia/Tokyo"
    org.save()
    at = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)  # 08:30 on March 2 in Tokyo
    old = factories.ConversationFactory(
        organization=org, last_message_at=at - timedelta(days=1), last_message_preview="older text"
    )
    new = factories.ConversationFactory(organization=org, last_message_at=at, last_message_preview="See you at 9")
    # when
    html = agent.get("/inbox/").content.decode()
    # then
    assert _ids(html) == [new.pk, old.pk]
    assert f'href="/inbox/{new.pk}/"' in html
    assert "Mar 2, 08:30" in html and "See you at 9" in html
    assert new.contact.phone_number in html and new.contact.first_name in html and new.line.phone_number in html


def test_filters_open_closed_mine_unassigned(agent, org, member):
    now = timezone.now()
    mine = factories.ConversationFactory(organization=org, last_message_at=now, assignee=member.user)
    closed = factories.ConversationFactory(
        organization=org, last_message_at=now - timedelta(minutes=1), status=ConversationStatus.CLOSED
    )
    other_agent = factories.UserFactory()
    theirs = factories.ConversationFactory(
        organization=org, last_message_at=now - timedelta(minutes=2), assignee=other_agent
    )

    def shown(f: str) -> list[int]:
        return _ids(agent.get("/inbox/", {"filter": f}).content.decode())

    assert shown("all") == [mine.pk, closed.pk, theirs.pk]
    assert shown("open") == [mine.pk, theirs.pk]
    assert shown("closed") == [closed.pk]
    assert shown("mine") == [mine.pk]
    assert shown("unassigned") == [closed.pk]


def test_search_by_name_or_number(agent, org):
    now = timezone.now()
    ada = factories.ConversationFactory(
        organization=org,
        last_message_at=now,
        contact=factories.ContactFactory(organization=org, first_name="Ada", last_name="Lovelace"),
    )
    bob = factories.ConversationFactory(
        organization=org,
        last_message_at=now,
        contact=factories.ContactFactory(organization=org, first_name="Bob", phone_number="+15125550199"),
    )
    assert _ids(agent.get("/inbox/", {"q": "lovel"}).content.decode()) == [ada.pk]
    assert _ids(agent.get("/inbox/", {"q": "(512) 555-0199"}).content.decode()) == [bob.pk]
    assert _ids(agent.get("/inbox/", {"q": "nobody"}).content.decode()) == []


def test_keyset_paging_walks_every_conversation_once_at_a_fixed_query_count(
    agent, org, other_org, django_assert_num_queries
):
    # given: 120 dated conversations (some sharing a time) and 7 without a message, plus another tenant's
    from webapp import inbox

    base = timezone.now()
    line = factories.LineFactory(organization=org)
    dated = [
        factories.ConversationFactory(organization=org, line=line, last_message_at=base - timedelta(seconds=i // 3))
        for i in range(120)
    ]
    undated = [factories.ConversationFactory(organization=org, line=line) for _ in range(7)]
    factories.ConversationFactory(organization=other_org)
    expected = [c.pk for c in sorted(dated, key=lambda c: (c.last_message_at, c.pk), reverse=True)]
    expected += sorted((c.pk for c in undated), reverse=True)
    # when: walking the pages by their "Older conversations" link
    seen: list[int] = []
    cursor = ""
    pages = 0
    while True:
        html = agent.get("/inbox/", {"cursor": cursor} if cursor else {}).content.decode()
        seen += _ids(html)
        pages += 1
        found = re.search(r"cursor=([A-Za-z0-9_-]+)", html)
        if not found:
            break
        cursor = found.group(1)
    # then: each exactly once, in order, 50 a page
    assert seen == expected and pages == 3
    # and a page deep inside costs one query for its rows, like the first (no OFFSET, no N+1)
    middle = inbox.encode_cursor(dated[60])
    someone = factories.MembershipFactory(organization=org)
    with django_assert_num_queries(1):
        page = inbox.inbox_page(membership=someone, cursor=middle)
    assert len(page.conversations) == 50 and page.next_cursor


def test_inbox_page_query_count_is_pinned(agent, org, django_assert_num_queries):
    now = timezone.now()
    for i in range(60):
        factories.ConversationFactory(organization=org, last_message_at=now - timedelta(seconds=i))
    # session, user, membership (+ its organization), the rows with line, contact, assignee and markers
    # (which also give the live fingerprint, webapp/live.py), the lines for the line filter, the user's
    # memberships for the switcher: the same for 60 conversations as for 1 (no N+1). The first page of a
    # session remembers the organization (a session write); the count is of the pages after it.
    agent.get("/inbox/")
    with django_assert_num_queries(6):
        response = agent.get("/inbox/")
    assert len(_ids(response.content.decode())) == 50


def _thread(org):
    conversation = factories.ConversationFactory(organization=org, last_message_at=timezone.now())
    inbound = factories.MessageFactory(
        conversation=conversation, direction=Direction.INBOUND, body="Are you open?", status=MessageStatus.RECEIVED
    )
    delivered = factories.MessageFactory(conversation=conversation, body="Yes, till 6", status=MessageStatus.DELIVERED)
    failed = factories.MessageFactory(
        conversation=conversation,
        body="Bye",
        status=MessageStatus.FAILED,
        error_code="EC_UNREACHABLE",
        error_reason="Handset unreachable",
    )
    return conversation, inbound, delivered, failed


def test_thread_shows_messages_styled_by_direction_with_status_and_failure_reason(
    agent, org, django_assert_num_queries
):
    conversation, inbound, delivered, failed = _thread(org)
    # session, user, membership, the conversation, its messages, their short links, the opt-out, the
    # members an admin may assign to, the live fingerprint, the read marker's upsert (after a first page)
    agent.get("/inbox/")
    with django_assert_num_queries(10):
        response = agent.get(f"/inbox/{conversation.pk}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert f'class="msg in received" data-id="{inbound.pk}"' in html
    assert f'class="msg out delivered" data-id="{delivered.pk}"' in html
    assert f'class="msg out failed" data-id="{failed.pk}"' in html
    assert "Delivered" in html and "Handset unreachable" in html
    assert html.index("Are you open?") < html.index("Yes, till 6") < html.index("Bye")  # oldest first
    assert 'name="csrfmiddlewaretoken"' in html


def test_reply_sends_through_the_send_service_and_shows_the_message(agent, org, member):
    conversation, *_ = _thread(org)
    # when
    response = agent.post(f"/inbox/{conversation.pk}/reply/", {"body": "On my way"})
    # then: a queued outbound message, as the API's POST would write, and the thread shows it
    assert response.status_code == 302 and response["Location"] == f"/inbox/{conversation.pk}/"
    message = Message.objects.get(conversation=conversation, body="On my way")
    assert message.direction == Direction.OUTBOUND and message.status == MessageStatus.QUEUED
    assert message.sent_by == member.user
    html = agent.get(response["Location"]).content.decode()
    assert f'data-id="{message.pk}"' in html and "On my way" in html and "Queued" in html


def test_reply_to_an_opted_out_contact_is_refused_with_the_reason(agent, org):
    conversation, *_ = _thread(org)
    OptOut.objects.create(organization=org, phone_number=conversation.contact.phone_number, source="keyword")
    before = Message.objects.count()
    # when
    response = agent.post(f"/inbox/{conversation.pk}/reply/", {"body": "Still there?"})
    # then
    html = response.content.decode()
    assert response.status_code == 409
    assert "has opted out of texts from this organization" in html and 'id="send-error"' in html
    assert 'required aria-invalid="true" aria-describedby="send-error"' in html  # the reply box names its error
    assert "Still there?" in html  # the typed text is kept
    assert Message.objects.count() == before


def test_blank_reply_is_refused_naming_the_reason(agent, org):
    conversation, *_ = _thread(org)
    before = Message.objects.count()
    response = agent.post(f"/inbox/{conversation.pk}/reply/", {"body": "  "})
    assert response.status_code == 400 and "may not be blank" in response.content.decode()
    assert Message.objects.count() == before


def test_another_organizations_conversation_is_404_to_read_and_to_reply(agent, other_org):
    theirs, *_ = _thread(other_org)
    before = Message.objects.count()
    assert agent.get(f"/inbox/{theirs.pk}/").status_code == 404
    assert agent.post(f"/inbox/{theirs.pk}/reply/", {"body": "hi"}).status_code == 404
    assert agent.get(f"/inbox/{theirs.pk}/", {"org": other_org.pk}).status_code == 404
    assert Message.objects.count() == before


def test_reply_without_a_csrf_token_is_refused(member, org):
    conversation, *_ = _thread(org)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member.user)
    before = Message.objects.count()
    assert strict.post(f"/inbox/{conversation.pk}/reply/", {"body": "forged"}).status_code == 403
    assert Message.objects.count() == before


def test_inbox_and_thread_need_a_login(client, org):
    conversation, *_ = _thread(org)
    assert client.get("/inbox/").status_code == 302
    assert client.get(f"/inbox/{conversation.pk}/")["Location"].startswith("/login/")


def _row(html: str, conversation_id: int) -> str:
    start = html.index(f'data-id="{conversation_id}"')
    return html[html.rindex("<li", 0, start) : html.index("</li>", start)]


def test_unread_is_per_person_and_needs_reply_is_shared(org, member):
    # given: two agents of the organization, a conversation whose contact texted last
    me, colleague = Client(), Client()
    me.force_login(member.user)
    other = factories.MembershipFactory(organization=org)
    colleague.force_login(other.user)
    conversation = factories.ConversationFactory(organization=org, last_message_at=timezone.now())
    factories.MessageFactory(
        conversation=conversation, direction=Direction.INBOUND, body="Open today?", status=MessageStatus.RECEIVED
    )
    row = _row(me.get("/inbox/").content.decode(), conversation.pk)
    assert 'class="conversation unread"' in row and "Needs reply" in row
    # when: I open the thread
    me.get(f"/inbox/{conversation.pk}/")
    # then: read for me, still unread for my colleague; it still needs a reply for both
    mine, theirs = (_row(c.get("/inbox/").content.decode(), conversation.pk) for c in (me, colleague))
    assert 'class="conversation"' in mine and "Needs reply" in mine
    assert 'class="conversation unread"' in theirs and "Needs reply" in theirs
    # when: my colleague replies (queued is an answer), the needs-reply marker goes for everyone
    colleague.post(f"/inbox/{conversation.pk}/reply/", {"body": "Till 6"})
    assert "Needs reply" not in _row(me.get("/inbox/").content.decode(), conversation.pk)
    # and a new text from the contact makes it unread for me again
    factories.MessageFactory(
        conversation=conversation, direction=Direction.INBOUND, body="Thanks", status=MessageStatus.RECEIVED
    )
    row = _row(me.get("/inbox/").content.decode(), conversation.pk)
    assert 'class="conversation unread"' in row and "Needs reply" in row


def test_a_failed_reply_does_not_answer_and_a_new_member_does_not_inherit_old_unread(org):
    conversation = factories.ConversationFactory(organization=org, last_message_at=timezone.now())
    factories.MessageFactory(
        conversation=conversation, direction=Direction.INBOUND, body="Hello?", status=MessageStatus.RECEIVED
    )
    factories.MessageFactory(conversation=conversation, body="Hi", status=MessageStatus.FAILED)
    newcomer = factories.MembershipFactory(organization=org)  # joined after the text came in
    client = Client()
    client.force_login(newcomer.user)
    row = _row(client.get("/inbox/").content.decode(), conversation.pk)
    assert "Needs reply" in row and 'class="conversation"' in row


def test_line_filter_keeps_the_other_filters(agent, org, member):
    now = timezone.now()
    front, back = factories.LineFactory(organization=org), factories.LineFactory(organization=org)
    a = factories.ConversationFactory(organization=org, line=front, last_message_at=now, assignee=member.user)
    b = factories.ConversationFactory(organization=org, line=front, last_message_at=now - timedelta(seconds=1))
    c = factories.ConversationFactory(organization=org, line=back, last_message_at=now - timedelta(seconds=2))
    assert _ids(agent.get("/inbox/", {"line": front.pk}).content.decode()) == [a.pk, b.pk]
    assert _ids(agent.get("/inbox/", {"line": back.pk}).content.decode()) == [c.pk]
    html = agent.get("/inbox/", {"line": front.pk, "filter": "unassigned"}).content.decode()
    assert _ids(html) == [b.pk]
    assert f'href="?filter=mine&amp;line={front.pk}"' in html  # the filter links keep the line
    theirs = factories.LineFactory(organization=factories.OrganizationFactory())
    assert _ids(agent.get("/inbox/", {"line": theirs.pk}).content.decode()) == []
