"""Hostile and odd input to the API answers a 400 in the API's error shape, never a 500 (issue 12.9)."""

import pytest
from django.test import override_settings
from django.urls import reverse

from organizations.api.parsers import MAX_DEPTH
from shortener.services import link_create
from tests import factories
from tests.api.conftest import error_of
from tests.api.routes import api_routes


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("raw", ["%C2%B3", "%D9%A1", "1.0", "-1", "0", "99999999999999999999999", "%201"])
def test_links_filter_refuses_what_is_not_an_id(api, raw):
    # "³" passed str.isdigit and int("³") then raised: a 500; "١" is read by int() as 1.
    response = api.get(f"/api/v1/links?blast_id={raw}")
    assert response.status_code == 400, response.content
    assert "blast_id" in error_of(response)["fields"]


def test_links_filter_by_an_id_still_filters(api, org):
    blast = factories.BlastFactory(organization=org, line=factories.LineFactory(organization=org))
    mine = link_create(organization_id=org.pk, target_url="https://example.com/a", blast_id=blast.pk)
    link_create(organization_id=org.pk, target_url="https://example.com/b")
    response = api.get(f"/api/v1/links?blast_id={blast.pk}")
    assert [row["id"] for row in response.json()["results"]] == [mine.pk]


@pytest.fixture
def objects(org):
    """One object of each kind, so every write route reaches the point where it reads its body."""
    line = factories.LineFactory(organization=org, carrier_account=factories.CarrierAccountFactory(organization=org))
    contact = factories.ContactFactory(organization=org)
    conversation = factories.ConversationFactory(organization=org, line=line, contact=contact)
    blast = factories.BlastFactory(organization=org, line=line)
    link = link_create(organization_id=org.pk, target_url="https://example.com/x")
    return {"line": line, "contact": contact, "conversation": conversation, "blast": blast, "link": link}


# Actions that take no body (request=None in the schema) never read it: a nested one cannot hurt them.
BODYLESS = {
    "blast-launch",
    "blast-cancel",
    "blast-preview",
    "conversation-reopen",
    "conversation-close",
    "contact-erase",
}


def _write_routes():
    return sorted({(r.name, r.method) for r in api_routes() if r.method in ("post", "put", "patch")})


def _url(name: str, objects: dict) -> str:
    """The route's URL with a path parameter filled by the object its name is about (fails loudly for a
    route it cannot place: add it here)."""
    from django.urls import get_resolver

    params = get_resolver().reverse_dict.getlist(name)[0][0][0][1]
    if not params:
        return reverse(name)
    kind = next(k for k in ("backfill", "conversation", "contact", "blast", "line", "link") if name.startswith(k))
    kind = {"backfill": "line"}.get(kind, kind) if name.startswith("line-backfill") else kind
    return reverse(name, kwargs={params[0]: objects[kind].pk})


@pytest.mark.parametrize(("name", "method"), _write_routes())
@pytest.mark.parametrize("depth", [1500, MAX_DEPTH + 1])
def test_deeply_nested_json_is_a_400_on_every_write_route(api, objects, name, method, depth):
    # 1,500 levels made Python's decoder raise RecursionError; a few hundred parsed and broke what came next.
    url = _url(name, objects)
    response = api.generic(method.upper(), url, _nested(depth), content_type="application/json")
    if name in BODYLESS:
        assert response.status_code < 500, (url, response.content[:300])
        return
    assert response.status_code == 400, (url, response.content[:300])
    error = error_of(response)
    assert error["code"] == "parse_error"
    assert "nested" in error["message"]


def test_nesting_within_the_bound_is_accepted(api):
    fields = {"tree": {"a": {"b": {"c": [1, 2, {"d": "e"}]}}}}
    response = api.post("/api/v1/contacts", {"phone_number": "+15122003333", "custom_fields": fields}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["custom_fields"] == fields


@override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=50)
@pytest.mark.parametrize("where", ["form body", "query string"])
def test_too_many_form_fields_is_a_400_in_the_error_shape(api, where):
    fields = "&".join(f"f{i}=x" for i in range(60))
    if where == "form body":
        response = api.generic("POST", "/api/v1/contacts", fields, content_type="application/x-www-form-urlencoded")
    else:
        response = api.get(f"/api/v1/contacts?{fields}")
    assert response.status_code == 400, response.content[:300]
    assert error_of(response)["code"] == "too_many_fields"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=", "limit"),
        ("limit=5&limit=6", "limit"),
        ("limit=%D9%A3", "limit"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("cursor=", "cursor"),
        ("phone_number=", "phone_number"),
    ],
)
def test_bad_query_parameters_are_refused_naming_them(api, query, field):
    response = api.get(f"/api/v1/contacts?{query}")
    assert response.status_code == 400, response.content
    assert field in error_of(response)["fields"]


@pytest.mark.parametrize("path", ["/api/v1/links?blast_id=", "/api/v1/conversations?status=", "/api/v1/blasts?x="])
def test_empty_filters_are_refused(api, path):
    response = api.get(path)
    assert response.status_code == 400, response.content
    assert error_of(response)["fields"]


@pytest.mark.parametrize(("rate", "status"), [(1e300, 400), (1001, 400), (0, 400), (1000, 200), (0.5, 200)])
def test_rate_per_second_is_bounded(api, org, rate, status):
    line = factories.LineFactory(organization=org)
    response = api.patch(f"/api/v1/lines/{line.pk}", {"rate_per_second": rate}, format="json")
    assert response.status_code == status, response.content
    if status == 400:
        assert "rate_per_second" in error_of(response)["fields"]
