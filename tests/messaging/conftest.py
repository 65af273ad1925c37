"""Fixtures shared by the messaging tests."""

import pytest

from tests.messages import blast_with_messages  # noqa: F401  (fixture: the processors' tests)
from tests.webhooks import account, fresh_webhook_caches, line, post_webhook  # noqa: F401  (fixtures: report apply, inbound)


@pytest.fixture
def api(org):
    """An API client of `org`, authenticated by a fresh API key (cache cleared: no key lookups carried over)."""
    from django.core.cache import cache
    from rest_framework.test import APIClient

    from organizations.services import api_key_create

    cache.clear()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(organization=org, name='t').raw_key}")
    client.default_format = "json"
    return client
