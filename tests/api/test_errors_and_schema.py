import pytest

from tests.api.conftest import error_of

MY_PATHS = [
    "/api/v1/lines",
    "/api/v1/lines/{id}",
    "/api/v1/contacts",
    "/api/v1/contacts/{id}",
    "/api/v1/contacts/import",
    "/api/v1/conversations",
    "/api/v1/conversations/{id}",
    "/api/v1/conversations/{id}/messages",
    "/api/v1/opt-outs",
    "/api/v1/opt-outs/{id}",
    "/api/v1/blasts",
    "/api/v1/blasts/{id}",
    "/api/v1/api-keys",
    "/api/v1/api-keys/{id}",
]


def test_schema_serves_and_lists_my_paths(db, client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert set(MY_PATHS) <= set(schema["paths"])
    assert "apiKey" in schema["components"]["securitySchemes"]


def test_schema_generates_without_warnings(db):
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    SchemaGenerator().get_schema(request=None, public=True)
    # Only the views of this area (other areas' views answer for themselves).
    mine = ("messaging/api/views.py", "messaging/api/conversations.py", "organizations/")
    problems = [m for m in [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache] if any(p in m for p in mine)]
    assert problems == []


def test_docs_page(db, client):
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("get", "/api/v1/contacts/999999", None, 404, "not_found"),
        ("delete", "/api/v1/conversations/1", None, 405, "method_not_allowed"),
        ("post", "/api/v1/contacts", {"phone_number": "x"}, 400, "invalid"),
        ("post", "/api/v1/contacts", "{not json", 400, "parse_error"),
    ],
)
def test_error_shape(api, method, path, body, status, code):
    if isinstance(body, str):
        response = api.generic(method.upper(), path, body, content_type="application/json")
    else:
        response = getattr(api, method)(path, body, format="json")
    assert response.status_code == status
    error = error_of(response)
    assert error["code"] == code and error["message"]
    if status != 400 or code == "parse_error":
        assert error["fields"] == {}


def test_nested_errors_are_dotted_paths(api):
    from organizations.api.errors import flatten_fields

    assert flatten_fields(
        {"audience": {"contact_ids": ["bad"], "non_field_errors": ["x"]}, "rows": [{}, {"a": ["y"]}]}
    ) == {
        "audience.contact_ids": ["bad"],
        "audience": ["x"],
        "rows.1.a": ["y"],
    }
    assert flatten_fields(["plain"]) == {"non_field_errors": ["plain"]}
