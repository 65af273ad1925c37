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


def _generate_schema() -> tuple[dict, list[str]]:
    """The OpenAPI schema as /api/schema/ serves it, and every warning and error drf-spectacular raised."""
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return schema, [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_schema_generates_without_warnings(db):
    # Every view of every app ("unable to guess serializer" and the like are errors of ours).
    _schema, problems = _generate_schema()
    assert problems == []


def _mixin_docstrings() -> set[str]:
    """Docstrings of the classes API views inherit from (mixins, bases): text for developers."""
    from django.urls import resolve
    from drf_spectacular.plumbing import get_doc

    from tests.api.routes import api_routes

    docs = set()
    for route in api_routes():
        callback = resolve("/" + _sample_path(route.pattern)).func
        view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        for base in view_class.__mro__[1:]:
            doc = get_doc(base) if vars(base).get("__doc__") else ""
            if doc and not base.__module__.startswith(("rest_framework", "django")):
                docs.add(doc)
    return docs


def _sample_path(pattern: str) -> str:
    import re

    path = re.sub(r"\(\?P<\w+>[^)]*\)", "1", pattern)
    path = re.sub(r"<(?:\w+:)?\w+>", "1", path)
    return path.replace("^", "").replace("$", "")


def test_operation_descriptions_are_for_api_users(db):
    schema, _ = _generate_schema()
    internal = _mixin_docstrings()
    for path, method, operation in _operations(schema):
        description = operation.get("description", "")
        assert "Mix into every" not in description, (method, path)
        assert not any(doc in description for doc in internal), (method, path, description)


def test_every_response_is_documented(db):
    schema, _ = _generate_schema()
    for path, method, operation in _operations(schema):
        responses = operation["responses"]
        for code, response in responses.items():
            # drf-spectacular writes "No response body" where it found no serializer for an answer.
            assert response.get("description") != "No response body", (method, path, code)
            if code != "204":
                assert "content" in response, (method, path, code)
            else:
                assert response["description"], (method, path, code)
        # The errors any operation can answer, in the error shape.
        expected = {"400", "401", "403", "429"} | ({"404"} if "{" in path else set())
        assert expected <= set(responses), (method, path, sorted(responses))
        for code in expected:
            ref = responses[code]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/Error"), (method, path, code)
        assert any(code.startswith("2") for code in responses), (method, path)


def test_every_route_is_in_the_schema(db):
    import re

    from tests.api.routes import api_routes

    schema, _ = _generate_schema()
    documented = {(re.sub(r"\{\w+\}", "1", path), method) for path, method, _ in _operations(schema)}
    for route in api_routes():
        assert ("/" + _sample_path(route.pattern), route.method) in documented, route


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
