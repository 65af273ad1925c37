"""Paging back in a long thread (webapp/threads.py): the newest 100, "Older messages" by keyset on
(created_at, id) with a pinned query count, and the live poll keeping every message from the oldest one
the page opened with (nothing dropped or skipped while new texts arrive)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from messaging.models import Message
from organizations.models import Role
from tests import factories

pytestmark = pytest.mark.django_db


def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'class="msg [^"]*" data-id="(\d+)"', html)]


def _older(html: str) -> str | None:
    found = re.search(r'id="older" href="([^"]+)"', html)
    return found.group(1).replace("&amp;", "&") if found else None


@pytest.fixture
def long_thread(org):
    """250 messages, three to a second (ties on created_at), inserted in shuffled order so that id order is
    not time order (an imported history)."""
    conversation = factories.ConversationFactory(organization=org, last_message_at=timezone.now())
    base = timezone.now() - timedelta(hours=1)
    # i·97 mod 250 visits every slot once (97 is prime to 250): a fixed shuffle
    times = [base + timedelta(seconds=(i * 97 % 250) // 3) for i in range(250)]
    Message.objects.bulk_create(
        factories.MessageFactory.build(conversation=conversation, body=f"text {i}", created_at=at)
        for i, at in enumerate(times)
    )
    expected = [m.pk for m in Message.objects.filter(conversation=conversation).order_by("created_at", "id")]
    return conversation, expected


@pytest.fixture
def client(org) -> Client:
    client = Client()
    client.force_login(factories.MembershipFactory(organization=org, role=Role.AGENT).user)
    client.get("/inbox/")  # remembers the organization in the session
    return client


def test_older_messages_walk_the_whole_thread_once_in_order_at_a_fixed_query_count(
    client, long_thread, django_assert_num_queries
):
    conversation, expected = long_thread
    # when: the thread, then "Older messages" as htmx asks for it, until there is none
    html = client.get(f"/inbox/{conversation.pk}/").content.decode()
    pages = [_ids(html)]
    url = _older(html)
    while url:
        # session, user, membership, conversation, the page's messages, their links: a page deep in the
        # thread costs what the first older page does, and marks nothing read
        with django_assert_num_queries(6):
            html = client.get(url, HTTP_HX_REQUEST="true").content.decode()
        pages.insert(0, _ids(html))
        url = _older(html)
    # then: 100, 100, 50, each message once, oldest first
    assert [len(p) for p in pages] == [50, 100, 100]
    assert [pk for page in pages for pk in page] == expected


def test_without_javascript_older_messages_is_a_page_of_its_own(client, long_thread):
    conversation, expected = long_thread
    url = _older(client.get(f"/inbox/{conversation.pk}/").content.decode())
    html = client.get(url).content.decode()
    assert "<html" in html and "Newest messages" in html and _ids(html) == expected[50:150]


def test_the_live_poll_keeps_every_message_from_the_page_it_opened_with(client, long_thread, org):
    conversation, expected = long_thread
    html = client.get(f"/inbox/{conversation.pk}/").content.decode()
    live = re.search(r'id="live" hx-get="([^"]+)"', html).group(1)
    assert _ids(html) == expected[-100:]
    # when: 30 new texts arrive while the thread is open
    new = [factories.MessageFactory(conversation=conversation, body=f"new {i}").pk for i in range(30)]
    polled = client.get(live, HTTP_HX_REQUEST="true").content.decode()
    # then: the poll shows the 100 the page had and the 30 new ones (the oldest shown is not dropped, so
    # "Older messages" above them still joins without a gap)
    assert _ids(polled) == expected[-100:] + new


def test_another_conversations_message_is_no_anchor(client, long_thread, org, other_org):
    conversation, _ = long_thread
    elsewhere = factories.MessageFactory(conversation=factories.ConversationFactory(organization=org))
    foreign = factories.MessageFactory(conversation=factories.ConversationFactory(organization=other_org))
    for anchor in (elsewhere.pk, foreign.pk):
        html = client.get(f"/inbox/{conversation.pk}/older/?before={anchor}", HTTP_HX_REQUEST="true")
        assert _ids(html.content.decode()) == []
    assert client.get(f"/inbox/{conversation.pk}/older/?before=x").status_code == 400
    # and another organization's conversation is 404, whatever the anchor
    theirs = factories.ConversationFactory(organization=other_org)
    assert client.get(f"/inbox/{theirs.pk}/older/?before={foreign.pk}").status_code == 404
