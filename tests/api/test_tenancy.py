"""Tenant isolation for EVERY endpoint of the API: another organization's object answers 404, a foreign
id in a payload or filter answers 400 naming the field, lists never show another tenant's rows.

test_every_route_is_in_the_matrix fails when a route is added without a line here."""

from dataclasses import dataclass

import pytest
from django.utils import timezone

from backfill.models import BackfillRun
from messaging.models import Blast, Contact, Line, Message, OptOut
from organizations.models import ApiKey
from organizations.services import api_key_create
from shortener.models import Link
from shortener.services import link_create
from tests import factories
from tests.api.conftest import error_of
from tests.api.routes import api_routes


@dataclass
class Tenant:
    org: object
    account: object
    line: object
    contact: object
    conversation: object
    message: object
    opt_out: object
    blast: object
    api_key: object
    user: object
    link: object
    backfill_run: object


def _tenant(org) -> Tenant:
    account = factories.CarrierAccountFactory(organization=org)
    line = factories.LineFactory(organization=org, carrier_account=account)
    contact = factories.ContactFactory(organization=org)
    conversation = factories.ConversationFactory(
        organization=org, line=line, contact=contact, last_message_at=timezone.now()
    )
    message = factories.MessageFactory(conversation=conversation)
    opt_out = OptOut.objects.create(organization=org, phone_number=factories.next_number("737"))
    blast = factories.BlastFactory(organization=org, line=line)
    api_key = api_key_create(organization=org, name="k").api_key
    user = factories.MembershipFactory(organization=org).user
    link = link_create(
        organization_id=org.pk, target_url="https://example.com/offer", blast_id=blast.pk, contact_id=contact.pk
    )
    backfill_run = BackfillRun.objects.create(organization=org, line=line)
    return Tenant(org, account, line, contact, conversation, message, opt_out, blast, api_key, user, link, backfill_run)


@pytest.fixture
def mine(org):
    return _tenant(org)


@pytest.fixture
def theirs(other_org):
    return _tenant(other_org)


# (method, path template with {x} filled from the OTHER tenant, payload). Each must answer 404.
FOREIGN_OBJECT = [
    ("get", "/api/v1/lines/{line}", None),
    ("patch", "/api/v1/lines/{line}", {"name": "hijacked"}),
    ("put", "/api/v1/lines/{line}", {"phone_number": "+15122009999", "name": "hijacked"}),
    ("get", "/api/v1/contacts/{contact}", None),
    ("patch", "/api/v1/contacts/{contact}", {"first_name": "hijacked"}),
    ("put", "/api/v1/contacts/{contact}", {"phone_number": "+17372009999", "first_name": "hijacked"}),
    ("delete", "/api/v1/contacts/{contact}", None),
    ("post", "/api/v1/contacts/{contact}/erase", None),
    ("get", "/api/v1/conversations/{conversation}", None),
    ("get", "/api/v1/conversations/{conversation}/messages", None),
    ("post", "/api/v1/conversations/{conversation}/close", None),
    ("post", "/api/v1/conversations/{conversation}/reopen", None),
    ("post", "/api/v1/conversations/{conversation}/assign", {"assignee": None}),
    ("patch", "/api/v1/blasts/{blast}", {"body": "hijacked"}),
    ("delete", "/api/v1/blasts/{blast}", None),
    ("get", "/api/v1/opt-outs/{opt_out}", None),
    ("delete", "/api/v1/opt-outs/{opt_out}", None),
    ("get", "/api/v1/blasts/{blast}", None),
    ("get", "/api/v1/api-keys/{api_key}", None),
    ("delete", "/api/v1/api-keys/{api_key}", None),
    # The send pipeline's routes (messaging/api/sending.py).
    ("post", "/api/v1/conversations/{conversation}/messages", {"body": "hijacked"}),
    ("post", "/api/v1/blasts/{blast}/launch", None),
    ("get", "/api/v1/blasts/{blast}/preview", None),
    ("post", "/api/v1/blasts/{blast}/preview", None),
    ("post", "/api/v1/blasts/{blast}/cancel", None),
    # Shortener.
    ("get", "/api/v1/links/{link}", None),
    ("patch", "/api/v1/links/{link}", {"expires_at": None, "fallback_url": "https://example.com/hijacked"}),
    ("get", "/api/v1/links/{link}/clicks", None),
    ("get", "/api/v1/blasts/{blast}/clicks", None),
    # Backfill.
    ("post", "/api/v1/lines/{line}/backfill-statuses", {}),
    ("get", "/api/v1/backfill-runs/{backfill_run}", None),
    ("get", "/api/v1/carrier-accounts/{account}", None),
]

# (method, path template with {x} from the OTHER tenant, payload template, field named in the 400).
FOREIGN_ID_IN_INPUT = [
    ("post", "/api/v1/lines", {"phone_number": "+15122008888", "carrier_account": "{account}"}, "carrier_account"),
    ("patch", "/api/v1/lines/{my_line}", {"carrier_account": "{account}"}, "carrier_account"),
    ("post", "/api/v1/blasts", {"line": "{line}", "body": "Hi", "audience": {"all": True}}, "line"),
    (
        "post",
        "/api/v1/blasts",
        {"line": "{my_line}", "body": "Hi", "audience": {"contact_ids": ["{contact}"]}},
        "audience.contact_ids",
    ),
    ("get", "/api/v1/conversations?line={line}", None, "line"),
    ("get", "/api/v1/conversations?assignee={user}", None, "assignee"),
    ("post", "/api/v1/conversations/{my_conversation}/assign", {"assignee": "{user}"}, "assignee"),
    ("patch", "/api/v1/blasts/{my_blast}", {"line": "{line}"}, "line"),
    ("patch", "/api/v1/blasts/{my_blast}", {"audience": {"contact_ids": ["{contact}"]}}, "audience.contact_ids"),
    ("post", "/api/v1/messages", {"line": "{line}", "to": "+17372001111", "body": "Hi"}, "line"),
    ("post", "/api/v1/links", {"target_url": "https://example.com/", "blast_id": "{blast}"}, "blast_id"),
    ("post", "/api/v1/links", {"target_url": "https://example.com/", "contact_id": "{contact}"}, "contact_id"),
    ("post", "/api/v1/links", {"target_url": "https://example.com/", "message_id": "{message}"}, "message_id"),
]

LISTS = [
    ("/api/v1/lines", "line"),
    ("/api/v1/contacts", "contact"),
    ("/api/v1/conversations", "conversation"),
    ("/api/v1/opt-outs", "opt_out"),
    ("/api/v1/blasts", "blast"),
    ("/api/v1/api-keys", "api_key"),
    ("/api/v1/links", "link"),
    ("/api/v1/carrier-accounts", "account"),
]

# Lists filtered by another tenant's id: empty, never their rows (the filter does not widen the wall).
FILTERED_BY_FOREIGN_ID = [
    "/api/v1/links?blast_id={blast}",
    "/api/v1/links?contact_id={contact}",
    "/api/v1/links?message_id={message}",
]

# Collection writes: what they create belongs to the caller (checked in test_creates_land_in_my_org).
CREATES = [
    ("/api/v1/lines", {"phone_number": "(512) 200-7777", "name": "new"}, Line),
    ("/api/v1/contacts", {"phone_number": "737 200 7777"}, Contact),
    ("/api/v1/contacts/import", {"contacts": [{"phone_number": "{their_contact_phone}"}]}, Contact),
    ("/api/v1/opt-outs", {"phone_number": "{their_opt_out_phone}"}, OptOut),
    ("/api/v1/blasts", {"line": "{my_line}", "body": "Hi", "audience": {"all": True}}, Blast),
    ("/api/v1/api-keys", {"name": "new"}, ApiKey),
    ("/api/v1/messages", {"line": "{my_line}", "to": "{their_contact_phone}", "body": "Hi"}, Message),
    ("/api/v1/links", {"target_url": "https://example.com/new"}, Link),
    ("/api/v1/links/bulk", {"links": [{"target_url": "https://example.com/new"}]}, Link),
    ("/api/v1/lines/{my_line}/backfill-statuses", {"dry_run": True}, BackfillRun),
]


# The caller's own organization, no id in the path: GET shows mine, PATCH changes mine only.
OWN_ORGANIZATION = [("/api/v1/organization", {"quiet_hours_enabled": False})]


def _ids(mine: Tenant, theirs: Tenant) -> dict:
    ids = {name: getattr(value, "pk", None) for name, value in vars(theirs).items()}
    ids["my_line"] = mine.line.pk
    ids["my_conversation"] = mine.conversation.pk
    ids["my_blast"] = mine.blast.pk
    ids["their_contact_phone"] = theirs.contact.phone_number
    ids["their_opt_out_phone"] = theirs.opt_out.phone_number
    return ids


def _fill(value, ids):
    if isinstance(value, str):
        if value.startswith("{") and value.endswith("}") and value[1:-1] in ids and "phone" not in value:
            return ids[value[1:-1]]
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


@pytest.mark.parametrize(("method", "path", "payload"), FOREIGN_OBJECT, ids=lambda v: str(v))
def test_another_tenants_object_is_404(api, mine, theirs, method, path, payload):
    # given: an object of the other organization
    url = path.format(**_ids(mine, theirs))
    before = _snapshot(theirs)
    # when
    response = getattr(api, method)(url, payload, format="json")
    # then
    assert response.status_code == 404, response.content
    assert error_of(response)["code"] == "not_found"
    assert _snapshot(theirs) == before  # and nothing of theirs changed


@pytest.mark.parametrize(("method", "path", "payload", "field"), FOREIGN_ID_IN_INPUT, ids=lambda v: str(v))
def test_foreign_id_in_input_is_400_naming_the_field(api, mine, theirs, method, path, payload, field):
    ids = _ids(mine, theirs)
    response = getattr(api, method)(path.format(**ids), _fill(payload, ids), format="json")
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] == "invalid"
    assert field in error["fields"], error


@pytest.mark.parametrize(("path", "attr"), LISTS)
def test_lists_show_only_my_rows(api, mine, theirs, path, attr):
    response = api.get(path)
    assert response.status_code == 200
    listed = {row["id"] for row in response.json()["results"]}
    assert getattr(mine, attr).pk in listed
    assert getattr(theirs, attr).pk not in listed


@pytest.mark.parametrize("path", FILTERED_BY_FOREIGN_ID)
def test_filter_by_another_tenants_id_lists_nothing(api, mine, theirs, path):
    response = api.get(path.format(**_ids(mine, theirs)))
    assert response.status_code == 200, response.content
    assert response.json()["results"] == []


def test_bulk_links_refuse_another_tenants_ids_per_item(api, mine, theirs):
    # given: one good item and one naming the other tenant's blast
    items = [
        {"target_url": "https://example.com/a"},
        {"target_url": "https://example.com/b", "blast_id": theirs.blast.pk},
    ]
    # when
    response = api.post("/api/v1/links/bulk", {"links": items}, format="json")
    # then: the foreign one is refused at its index, naming the field; nothing of it was created
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["created"], body["failed"]) == (1, 1)
    assert "blast_id" in body["results"][1]["error"]["fields"]
    assert not Link.objects.filter(blast=theirs.blast, organization=mine.org).exists()


def test_conversation_messages_list_only_that_conversations_messages(api, mine, theirs):
    response = api.get(f"/api/v1/conversations/{mine.conversation.pk}/messages")
    assert [row["id"] for row in response.json()["results"]] == [mine.message.pk]


@pytest.mark.parametrize(("path", "payload", "model"), CREATES, ids=lambda v: str(v))
def test_creates_land_in_my_org(api, mine, theirs, path, payload, model):
    ids = _ids(mine, theirs)
    theirs_before = model.objects.filter(organization=theirs.org).count()
    response = api.post(path.format(**ids), _fill(payload, ids), format="json")
    assert response.status_code in (200, 201, 202), response.content
    assert model.objects.filter(organization=theirs.org).count() == theirs_before
    assert model.objects.filter(organization=mine.org).count() >= 2


@pytest.mark.parametrize(("path", "payload"), OWN_ORGANIZATION)
def test_own_organization_routes_act_on_mine_only(api, mine, theirs, path, payload):
    assert api.get(path).json()["id"] == mine.org.pk
    theirs_before = type(theirs.org).objects.filter(pk=theirs.org.pk).values().get()
    response = api.patch(path, payload, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["id"] == mine.org.pk
    assert type(theirs.org).objects.filter(pk=theirs.org.pk).values().get() == theirs_before


def test_session_user_sees_only_the_chosen_organization(mine, theirs):
    from rest_framework.test import APIClient

    # given: one user, member of both organizations
    factories.MembershipFactory(user=mine.user, organization=theirs.org)
    client = APIClient()
    client.force_login(mine.user)
    # then: the first membership by default, the other one through X-Organization-Id
    default = {r["id"] for r in client.get("/api/v1/contacts").json()["results"]}
    chosen = {
        r["id"] for r in client.get("/api/v1/contacts", HTTP_X_ORGANIZATION_ID=str(theirs.org.pk)).json()["results"]
    }
    assert default == {mine.contact.pk}
    assert chosen == {theirs.contact.pk}


def _snapshot(t: Tenant):
    return (
        list(Line.objects.filter(organization=t.org).values()),
        list(Contact.objects.filter(organization=t.org).values()),
        list(OptOut.objects.filter(organization=t.org).values()),
        list(ApiKey.objects.filter(organization=t.org).values()),
        list(Blast.objects.filter(organization=t.org).values()),
        list(Link.objects.filter(organization=t.org).values()),
        list(Message.objects.filter(organization=t.org).values()),
        list(BackfillRun.objects.filter(organization=t.org).values()),
    )


def _covered() -> set[tuple[str, str]]:
    """(route name, method) pairs exercised above."""
    from django.urls import resolve

    covered = set()
    samples = {name: 1 for name in Tenant.__dataclass_fields__}
    samples.update(my_line=1, my_conversation=1, my_blast=1, their_contact_phone="x", their_opt_out_phone="x")
    for method, path, *_ in FOREIGN_OBJECT + FOREIGN_ID_IN_INPUT:
        covered.add((resolve(path.format(**samples).split("?")[0]).url_name, method))
    for path, _ in LISTS:
        covered.add((resolve(path).url_name, "get"))
    for path, *_ in CREATES:
        covered.add((resolve(path.format(**samples)).url_name, "post"))
    for path, _ in OWN_ORGANIZATION:
        covered |= {(resolve(path).url_name, "get"), (resolve(path).url_name, "patch")}
    return covered


def test_every_route_is_in_the_matrix():
    # Every /api/v1/ route of the URLconf, whichever app or router adds it (tests/api/routes.py).
    routes = {(route.name, route.method) for route in api_routes()}
    assert len(routes) > 30  # the enumeration itself works
    assert routes - _covered() == set()
