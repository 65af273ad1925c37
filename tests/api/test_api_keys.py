from rest_framework.test import APIClient

from organizations.models import ApiKey


def test_create_shows_the_key_once_and_it_works(session, org):
    # when
    response = session.post("/api/v1/api-keys", {"name": "CRM sync"}, format="json")
    # then
    assert response.status_code == 201
    body = response.json()
    key = body["key"]
    assert key.startswith(body["prefix"]) and body["scope"] == "all"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/api/v1/contacts").status_code == 200
    # and it is never shown again
    listed = session.get("/api/v1/api-keys").content.decode()
    detail = session.get(f"/api/v1/api-keys/{body['id']}").content.decode()
    assert key not in listed and key not in detail
    assert ApiKey.objects.get(pk=body["id"]).key_hash not in listed
    assert '"key"' not in listed


def test_list_shows_prefix_only(session, org, raw_key):
    rows = session.get("/api/v1/api-keys").json()["results"]
    assert [set(r) for r in rows] == [
        {"id", "name", "prefix", "scope", "created_at", "last_used_at", "revoked_at", "is_active"}
    ]
    assert rows[0]["prefix"] == raw_key[:8]


def test_revoke(session, api, org):
    key = ApiKey.objects.get(organization=org)
    response = session.delete(f"/api/v1/api-keys/{key.pk}")
    assert response.status_code == 204
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert api.get("/api/v1/contacts").status_code == 401
    # revoking twice keeps the first time
    first = key.revoked_at
    session.delete(f"/api/v1/api-keys/{key.pk}")
    key.refresh_from_db()
    assert key.revoked_at == first


def test_invalid_scope_is_400_naming_the_field(session):
    response = session.post("/api/v1/api-keys", {"name": "x", "scope": "root"}, format="json")
    assert response.status_code == 400
    assert "scope" in response.json()["error"]["fields"]


def test_shortener_scope_key_can_be_created(api):
    response = api.post("/api/v1/api-keys", {"name": "links", "scope": "shortener"}, format="json")
    assert response.status_code == 201
    assert response.json()["scope"] == "shortener"
