from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from organizations.auth import ApiKeyRateThrottle, HasScope
from organizations.models import ApiKey, ApiKeyScope, Role
from organizations.services import api_key_create
from tests import factories
from tests.api.conftest import error_of


def _client(raw_key, scheme="Bearer"):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {raw_key}")
    return client


@pytest.mark.parametrize("scheme", ["Bearer", "Api-Key", "bearer"])
def test_key_in_either_scheme_authenticates(raw_key, scheme):
    assert _client(raw_key, scheme).get("/api/v1/contacts").status_code == 200


def test_no_credentials_is_401_in_the_error_shape(db):
    response = APIClient().get("/api/v1/contacts")
    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_wrong_key_is_401_and_the_key_is_not_echoed(db, raw_key):
    wrong = raw_key[:-4] + "abcd"
    response = _client(wrong).get("/api/v1/contacts")
    assert response.status_code == 401
    assert error_of(response)["code"] == "authentication_failed"
    assert wrong not in response.content.decode()


def test_revoked_key_stops_working(api, org, raw_key):
    ApiKey.objects.filter(organization=org).update(revoked_at=timezone.now())
    assert api.get("/api/v1/contacts").status_code == 401


def test_key_of_inactive_organization_is_refused(api, org):
    org.is_active = False
    org.save()
    assert api.get("/api/v1/contacts").status_code == 401


def test_only_the_hash_is_stored(org):
    created = api_key_create(organization=org, name="x")
    row = ApiKey.objects.values().get(pk=created.api_key.pk)
    assert created.raw_key not in str(row)
    assert row["key_hash"] == ApiKey.hash(created.raw_key)
    assert row["prefix"] == created.raw_key[:8]
    assert created.raw_key not in repr(created.api_key) + str(created.api_key)


def test_last_used_is_written_at_most_once_a_minute(api, org, django_assert_num_queries):
    key = ApiKey.objects.get(organization=org)
    assert key.last_used_at is None
    # first use: lookup + the conditional UPDATE + the page
    with django_assert_num_queries(3):
        api.get("/api/v1/lines")
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    assert first is not None
    # within the minute: no write at all
    with django_assert_num_queries(2):
        api.get("/api/v1/lines")
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first
    # a minute later: written again
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=first - timedelta(seconds=61))
    api.get("/api/v1/lines")
    assert ApiKey.objects.get(pk=key.pk).last_used_at > first


def test_shortener_key_is_refused_outside_its_scope(db, shortener_key):
    response = _client(shortener_key).get("/api/v1/contacts")
    assert response.status_code == 403
    assert "scope" in error_of(response)["message"]


class _LinksLikeView(APIView):
    permission_classes = [HasScope.of(ApiKeyScope.SHORTENER)]

    def get(self, request):
        return Response({"organization": request.organization.pk})


@pytest.mark.parametrize("scope", [ApiKeyScope.SHORTENER, ApiKeyScope.ALL])
def test_has_scope_admits_the_scope_and_full_keys(org, scope):
    raw = api_key_create(organization=org, name="k", scope=scope).raw_key
    request = APIRequestFactory().get("/api/v1/links", HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = _LinksLikeView.as_view()(request)
    assert response.status_code == 200
    assert response.data == {"organization": org.pk}


def test_has_scope_still_requires_credentials(db):
    response = _LinksLikeView.as_view()(APIRequestFactory().get("/api/v1/links"))
    assert response.status_code == 401


def test_session_user_without_membership_is_403(db):
    client = APIClient()
    client.force_login(factories.UserFactory())
    response = client.get("/api/v1/contacts")
    assert response.status_code == 403
    assert error_of(response)["code"] == "permission_denied"


def test_session_user_cannot_pick_an_organization_they_are_not_in(session, other_org):
    response = session.get("/api/v1/contacts", HTTP_X_ORGANIZATION_ID=str(other_org.pk))
    assert response.status_code == 403
    assert "X-Organization-Id" in error_of(response)["message"]


def test_session_writes_need_csrf(member):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(member.user)
    response = client.post("/api/v1/contacts", {"phone_number": "+17372001234"}, format="json")
    assert response.status_code == 403


def test_throttle_is_per_key(org, raw_key, monkeypatch):
    # given: a tiny rate (the default is REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["api_key"])
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "2/min"})
    client = _client(raw_key)
    other_key = api_key_create(organization=org, name="other").raw_key
    # when
    statuses = [client.get("/api/v1/lines").status_code for _ in range(3)]
    # then: the third call of this key is refused, another key of the same org is not
    assert statuses == [200, 200, 429]
    response = client.get("/api/v1/lines")
    assert error_of(response)["code"] == "throttled"
    assert int(response["Retry-After"]) > 0
    assert _client(other_key).get("/api/v1/lines").status_code == 200


def test_api_key_management_needs_an_admin(org):
    agent = factories.MembershipFactory(organization=org, role=Role.AGENT)
    client = APIClient()
    client.force_login(agent.user)
    assert client.get("/api/v1/contacts").status_code == 200
    assert client.get("/api/v1/api-keys").status_code == 403


@pytest.mark.parametrize("role", [Role.AGENT, Role.SUPPORT])
def test_lines_and_organization_settings_are_read_by_members_and_changed_by_admins(org, role):
    # the API agrees with the web app's settings pages: agents and support read, only admins change
    line = factories.LineFactory(organization=org, name="Main")
    client = APIClient()
    client.force_login(factories.MembershipFactory(organization=org, role=role).user)
    assert client.get("/api/v1/lines").status_code == 200
    assert client.get("/api/v1/organization").status_code == 200
    # when
    changed_line = client.patch(f"/api/v1/lines/{line.pk}", {"name": "Renamed"}, format="json")
    changed_settings = client.patch("/api/v1/organization", {"quiet_hours_enabled": False}, format="json")
    created = client.post("/api/v1/lines", {"phone_number": "+15122009999", "name": "New"}, format="json")
    # then: refused with the API's error shape, and nothing changed
    for response in (changed_line, changed_settings, created):
        assert response.status_code == 403
        assert error_of(response)["message"] == "Only organization admins may do this."
    line.refresh_from_db()
    assert line.name == "Main"
    assert org.lines.count() == 1


def test_an_admin_changes_a_line_through_the_session_api(org):
    line = factories.LineFactory(organization=org, name="Main")
    client = APIClient()
    client.force_login(factories.MembershipFactory(organization=org, role=Role.ADMIN).user)
    response = client.patch(f"/api/v1/lines/{line.pk}", {"name": "Renamed"}, format="json")
    assert response.status_code == 200, response.content
    line.refresh_from_db()
    assert line.name == "Renamed"


def test_failed_api_key_attempts_are_limited_per_client_ip(db, raw_key, settings):
    # issue 12 item 12: guessing keys is paced per address, in Redis, with the API's error shape
    settings.API_KEY_FAILURE_LIMIT = 3
    guesser = APIClient(REMOTE_ADDR="203.0.113.50")
    guesser.credentials(HTTP_AUTHORIZATION="Bearer not-a-key")
    for _ in range(3):
        assert guesser.get("/api/v1/contacts").status_code == 401
    # when: the next attempt, even with a right key, from the same address
    blocked = guesser.get("/api/v1/contacts")
    right_from_there = APIClient(REMOTE_ADDR="203.0.113.50")
    right_from_there.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    also_blocked = right_from_there.get("/api/v1/contacts")
    # then: 429 with Retry-After (within the window) and the JSON error shape
    for response in (blocked, also_blocked):
        assert response.status_code == 429
        assert 1 <= int(response["Retry-After"]) <= settings.API_KEY_FAILURE_WINDOW_SECONDS
        assert error_of(response)["code"] == "throttled" and error_of(response)["fields"] == {}
    # another address is not affected
    other = APIClient(REMOTE_ADDR="198.51.100.20")
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert other.get("/api/v1/contacts").status_code == 200


def test_successful_api_key_calls_do_not_count_as_failures(db, raw_key, settings):
    settings.API_KEY_FAILURE_LIMIT = 2
    client = APIClient(REMOTE_ADDR="203.0.113.51")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert all(client.get("/api/v1/contacts").status_code == 200 for _ in range(5))
