"""Live inbox and thread (issue 16): the poll answers 304 from one query while nothing changed, and the
new text, status, click or assignment as soon as it happens; an idle open tab's cost is measured and
pinned here (queries per minute at the poll interval)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging.models import Direction, Message, MessageStatus
from shortener.models import Link
from tests import factories
from webapp.live import POLL_SECONDS

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
# session, user, the fingerprint (which checks the membership too)
QUERIES_PER_IDLE_POLL = 3


@pytest.fixture
def agent(client, org):
    member = factories.MembershipFactory(organization=org)
    client.force_login(member.user)
    return client


@pytest.fixture
def conversation(org):
    conversation = factories.ConversationFactory(organization=org, last_message_at=timezone.now())
    factories.MessageFactory(
        conversation=conversation, direction=Direction.INBOUND, body="Hi", status=MessageStatus.RECEIVED
    )
    return conversation


def _poll(client, url: str, etag: str):
    return client.get(url, HTTP_IF_NONE_MATCH=etag, **HTMX)


def test_thread_poll_is_304_until_a_text_comes_in_or_a_status_moves(agent, conversation, django_assert_num_queries):
    url = f"/inbox/{conversation.pk}/live/"
    page = agent.get(f"/inbox/{conversation.pk}/").content.decode()
    first = agent.get(url, **HTMX)
    etag = first["ETag"]
    assert first.status_code == 200
    quoted = etag.replace('"', "&quot;")
    assert f'data-etag="{quoted}"' in page  # the page holds the same fingerprint
    # idle: 304, no rendering, three queries
    with django_assert_num_queries(QUERIES_PER_IDLE_POLL):
        assert _poll(agent, url, etag).status_code == 304
    # a new inbound text
    new = factories.MessageFactory(
        conversation=conversation, direction=Direction.INBOUND, body="Still open?", status=MessageStatus.RECEIVED
    )
    response = _poll(agent, url, etag)
    assert response.status_code == 200 and "Still open?" in response.content.decode()
    etag = response["ETag"]
    assert _poll(agent, url, etag).status_code == 304
    # a status change of an outbound message (as the carrier's report applies it)
    out = factories.MessageFactory(conversation=conversation, body="Yes", status=MessageStatus.SENT)
    etag = _poll(agent, url, etag)["ETag"]
    Message.objects.filter(pk=out.pk).update(status=MessageStatus.DELIVERED, status_updated_at=timezone.now())
    response = _poll(agent, url, etag)
    html = response.content.decode()
    assert response.status_code == 200 and f'class="msg out delivered" data-id="{out.pk}"' in html
    # the head and contact panel ride along out of band
    assert 'id="thread-head" hx-swap-oob="true"' in html and 'id="contact" hx-swap-oob="true"' in html
    assert new.pk


def test_thread_poll_sees_clicks_and_assignment(agent, org, conversation):
    url = f"/inbox/{conversation.pk}/live/"
    message = factories.MessageFactory(conversation=conversation, body="https://example.com", status="delivered")
    link = Link.objects.create(code="Zz12345", organization=org, target_url="https://example.com", message=message)
    etag = agent.get(url, **HTMX)["ETag"]
    Link.objects.filter(pk=link.pk).update(click_count=1, unique_click_count=1)
    response = _poll(agent, url, etag)
    assert response.status_code == 200 and '<strong class="clicks">1</strong> click' in response.content.decode()
    etag = response["ETag"]
    conversation.assignee = factories.UserFactory()
    conversation.save()
    assert _poll(agent, url, etag).status_code == 200


def test_inbox_poll_is_304_until_a_conversation_moves(agent, org, conversation, django_assert_num_queries):
    # the page's fingerprint (from its own rows) is the poll's (its own query), with undated rows, ties,
    # markers and more than a page
    now = timezone.now()
    for i in range(55):
        factories.ConversationFactory(organization=org, last_message_at=now - timedelta(seconds=i // 2))
    factories.ConversationFactory(organization=org)
    page = agent.get("/inbox/").content.decode()
    first = agent.get("/inbox/", {"live": "1"}, **HTMX)
    etag = first["ETag"]
    assert first.status_code == 200
    quoted = etag.replace('"', "&quot;")
    assert f'data-etag="{quoted}"' in page
    with django_assert_num_queries(QUERIES_PER_IDLE_POLL):
        assert agent.get("/inbox/", {"live": "1"}, HTTP_IF_NONE_MATCH=etag, **HTMX).status_code == 304
    newcomer = factories.ConversationFactory(
        organization=org, last_message_at=timezone.now(), last_message_preview="New here"
    )
    response = agent.get("/inbox/", {"live": "1"}, HTTP_IF_NONE_MATCH=etag, **HTMX)
    assert response.status_code == 200 and f'data-id="{newcomer.pk}"' in response.content.decode()
    # a filter has a fingerprint of its own
    closed = agent.get("/inbox/", {"live": "1", "filter": "closed"}, HTTP_IF_NONE_MATCH=etag, **HTMX)
    assert closed.status_code == 200


def test_an_idle_open_tab_costs_a_pinned_number_of_queries_a_minute(agent, conversation):
    # given: an open thread and an open inbox, as the browser polls them (every POLL_SECONDS each)
    agent.get("/inbox/")
    thread_url = f"/inbox/{conversation.pk}/live/"
    thread_tag = agent.get(thread_url, **HTMX)["ETag"]
    inbox_tag = agent.get("/inbox/", {"live": "1"}, **HTMX)["ETag"]
    polls = 60 // POLL_SECONDS
    # when: a minute of polls with nothing happening
    with CaptureQueriesContext(connection) as thread_minute:
        statuses = {_poll(agent, thread_url, thread_tag).status_code for _ in range(polls)}
    with CaptureQueriesContext(connection) as inbox_minute:
        statuses |= {
            agent.get("/inbox/", {"live": "1"}, HTTP_IF_NONE_MATCH=inbox_tag, **HTMX).status_code for _ in range(polls)
        }
    # then: every poll a 304, and the minute costs 30 polls x 3 queries = 90 queries per open tab
    assert statuses == {304}
    assert len(thread_minute.captured_queries) == polls * QUERIES_PER_IDLE_POLL == 90
    assert len(inbox_minute.captured_queries) == polls * QUERIES_PER_IDLE_POLL == 90
    # and no write: an idle tab never marks anything read nor saves its session
    writes = [q["sql"] for q in thread_minute.captured_queries + inbox_minute.captured_queries]
    assert not [sql for sql in writes if sql.lstrip("( ").upper().startswith(("INSERT", "UPDATE", "DELETE"))]


def test_a_member_who_left_gets_no_304_but_the_404(agent, org, conversation):
    url = f"/inbox/{conversation.pk}/live/"
    etag = agent.get(url, **HTMX)["ETag"]
    org.memberships.all().delete()
    assert _poll(agent, url, etag).status_code == 404


def test_a_short_inbox_with_undated_rows_has_the_same_fingerprint_on_the_page_and_the_poll(agent, org, conversation):
    factories.ConversationFactory(organization=org)  # no message yet: after the dated ones
    page = agent.get("/inbox/").content.decode()
    etag = agent.get("/inbox/", {"live": "1"}, **HTMX)["ETag"]
    assert 'data-etag="{}"'.format(etag.replace('"', "&quot;")) in page
