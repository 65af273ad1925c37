"""Issue 12 item 14: /api/docs/ and /api/schema/ can be made to require a signed-in user or an API key."""

import pytest
from rest_framework.test import APIClient

from organizations.services import api_key_create
from tests import factories


@pytest.mark.django_db
def test_docs_and_schema_are_open_by_default(client):
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_docs_and_schema_can_require_login(client, org, settings):
    settings.API_DOCS_REQUIRE_LOGIN = True
    # anonymous: the schema is refused, the page sends the browser to the login page
    assert client.get("/api/schema/").status_code == 401
    page = client.get("/api/docs/")
    assert page.status_code == 302 and page["Location"].startswith("/login/?next=/api/docs/")
    # an API key reads the schema; a signed-in user reads both
    keyed = APIClient()
    keyed.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(organization=org, name='docs').raw_key}")
    assert keyed.get("/api/schema/").status_code == 200
    client.force_login(factories.MembershipFactory(organization=org).user)
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200
