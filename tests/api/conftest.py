import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from organizations.models import ApiKeyScope, Role
from organizations.services import api_key_create
from tests import factories
from tests.sandbox import sandbox_carrier  # noqa: F401  (fixture: the line-number checks ask it)


@pytest.fixture(autouse=True)
def _fresh_throttle_buckets(db):
    # Throttle counters live in Redis and key ids repeat across test databases: start each test clean.
    cache.clear()
    yield


@pytest.fixture
def raw_key(org):
    return api_key_create(organization=org, name="tests").raw_key


@pytest.fixture
def api(raw_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


@pytest.fixture
def shortener_key(org):
    return api_key_create(organization=org, name="shortener", scope=ApiKeyScope.SHORTENER).raw_key


@pytest.fixture
def member(org):
    return factories.MembershipFactory(organization=org, role=Role.ADMIN)


@pytest.fixture
def session(member):
    client = APIClient()
    client.force_login(member.user)
    return client


def error_of(response):
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    return body["error"]
