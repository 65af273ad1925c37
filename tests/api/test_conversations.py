from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.models import ConversationStatus
from tests import factories
from tests.api.conftest import error_of


def _walk(api, url, params=None, limit=3):
    """Every id of every page, following `next` cursors."""
    ids, pages = [], 0
    # A `next` link carries its own query string (the client would drop it if given params too).
    response = api.get(url) if "?" in url else api.get(url, {**(params or {}), "limit": limit})
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        ids += [row["id"] for row in body["results"]]
        pages += 1
        if not body["next"]:
            return ids, pages
        response = api.get(body["next"])


@pytest.fixture
def inbox(org):
    """11 conversations: 3 without messages (NULL last_message_at), ties on last_message_at, two lines."""
    now = timezone.now().replace(microsecond=0)
    line_a = factories.LineFactory(organization=org)
    line_b = factories.LineFactory(organization=org)
    times = [
        None,
        None,
        None,
        now,
        now,
        now,
        now - timedelta(hours=1),
        now - timedelta(hours=2),
        now - timedelta(days=1),
        now - timedelta(days=2),
        now - timedelta(days=3),
    ]
    conversations = []
    for i, at in enumerate(times):
        conversations.append(
            factories.ConversationFactory(
                organization=org,
                line=line_a if i % 2 else line_b,
                last_message_at=at,
                status=ConversationStatus.CLOSED if i % 3 == 0 else ConversationStatus.OPEN,
            )
        )
    return conversations


def _expected_order(conversations):
    # NULLs first (newest-activity-first with PostgreSQL's NULL-as-largest), then time desc, then id desc.
    far = timezone.now() + timedelta(days=3650)
    return [c.pk for c in sorted(conversations, key=lambda c: (c.last_message_at or far, c.pk), reverse=True)]


def test_cursor_pages_cover_everything_once_in_order(api, inbox):
    ids, pages = _walk(api, "/api/v1/conversations", limit=3)
    assert ids == _expected_order(inbox)
    assert pages == 4


def test_new_rows_do_not_shift_later_pages(api, org, inbox):
    first = api.get("/api/v1/conversations", {"limit": 5}).json()
    # a conversation becoming the newest between two page fetches
    factories.ConversationFactory(organization=org, last_message_at=timezone.now() + timedelta(minutes=5))
    rest, _ = _walk(api, first["next"])
    assert [row["id"] for row in first["results"]] + rest == _expected_order(inbox)


SINCE = timedelta(hours=1, minutes=30)


@pytest.mark.parametrize(
    ("params", "predicate"),
    [
        ({"status": "closed"}, lambda c, since: c.status == "closed"),
        ({"status": "open"}, lambda c, since: c.status == "open"),
        ({"updated_since": SINCE}, lambda c, since: c.last_message_at is not None and c.last_message_at >= since),
    ],
    ids=["closed", "open", "updated_since"],
)
def test_filters(api, inbox, params, predicate):
    since = timezone.now() - SINCE
    params = {k: (since.isoformat() if v is SINCE else v) for k, v in params.items()}
    by_pk = {c.pk: c for c in inbox}
    ids, _ = _walk(api, "/api/v1/conversations", params, limit=50)
    assert ids == [pk for pk in _expected_order(inbox) if predicate(by_pk[pk], since)]
    assert ids  # the filter must select something for the test to mean anything


def test_filter_by_line_assignee_and_contact_phone(api, org, inbox):
    user = factories.MembershipFactory(organization=org).user
    target = inbox[4]
    target.assignee = user
    target.save()
    line_ids, _ = _walk(api, "/api/v1/conversations", {"line": target.line_id}, limit=50)
    assert line_ids == [
        pk for pk in _expected_order(inbox) if any(c.pk == pk and c.line_id == target.line_id for c in inbox)
    ]
    assert api.get("/api/v1/conversations", {"assignee": user.pk}).json()["results"][0]["id"] == target.pk
    unassigned, _ = _walk(api, "/api/v1/conversations", {"assignee": "none"}, limit=50)
    assert target.pk not in unassigned and len(unassigned) == len(inbox) - 1
    phone = target.contact.phone_number  # written in another format
    national = f"({phone[2:5]}) {phone[5:8]}-{phone[8:]}"
    assert [r["id"] for r in api.get("/api/v1/conversations", {"contact_phone": national}).json()["results"]] == [
        target.pk
    ]


def test_assignee_me_for_session_user(session, member, org):
    mine = factories.ConversationFactory(organization=org, assignee=member.user)
    factories.ConversationFactory(organization=org)
    assert [r["id"] for r in session.get("/api/v1/conversations", {"assignee": "me"}).json()["results"]] == [mine.pk]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "archived"}, "status"),
        ({"line": "abc"}, "line"),
        ({"line": 999999}, "line"),
        ({"assignee": "someone"}, "assignee"),
        ({"assignee": "me"}, "assignee"),  # an API key is not a user
        ({"contact_phone": "12"}, "contact_phone"),
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"limit": 0}, "limit"),
        ({"limit": 1000}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
    ],
)
def test_bad_filters_are_400_naming_the_parameter(api, params, field):
    response = api.get("/api/v1/conversations", params)
    assert response.status_code == 400
    assert field in error_of(response)["fields"]


def test_list_is_one_query_whatever_the_page_size(api, org, inbox, django_assert_num_queries):
    api.get("/api/v1/lines")  # first use of the key writes last_used_at; not what this test counts
    # key lookup + the page (with line and contact joined)
    with django_assert_num_queries(2):
        response = api.get("/api/v1/conversations", {"limit": 50})
    assert len(response.json()["results"]) == len(inbox)
    assert response.json()["results"][0]["contact"]["phone_number"]


def test_detail_and_messages_paginated_newest_first(api, org, django_assert_num_queries):
    conversation = factories.ConversationFactory(organization=org)
    messages = [factories.MessageFactory(conversation=conversation, body=f"m{i}") for i in range(7)]
    assert api.get(f"/api/v1/conversations/{conversation.pk}").json()["contact"]["id"] == conversation.contact_id
    ids, pages = _walk(api, f"/api/v1/conversations/{conversation.pk}/messages", limit=3)
    assert ids == [m.pk for m in reversed(messages)]
    assert pages == 3
    # key lookup + conversation + page
    with django_assert_num_queries(3):
        api.get(f"/api/v1/conversations/{conversation.pk}/messages", {"limit": 50})
