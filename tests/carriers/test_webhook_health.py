"""Webhook health per carrier account (issue 14.7): what was accepted, refused and unprocessable, in the
API (read-only, tenant scoped, no secrets) and the admin."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from carriers.models import WebhookEvent, WebhookState
from messaging.services.reports import webhook_process
from organizations.services import api_key_create
from tests import factories
from tests.carriers.test_webhooks import PER_RECIPIENT


@pytest.fixture
def api(org):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(organization=org, name='t').raw_key}")
    return client


def test_health_counts_accepted_refused_and_unprocessable(org, account, post_webhook, api):
    # given: two accepted reports (one matching no message, given up on), one refused body, and an
    # old accepted one outside the day
    assert post_webhook(account, "delivery", PER_RECIPIENT).status_code == 200
    assert post_webhook(account, "delivery", {**PER_RECIPIENT, "batch_id": "B2"}).status_code == 200
    assert post_webhook(account, "delivery", b"{broken").status_code == 400
    old = WebhookEvent.objects.create(
        account=account,
        kind="delivery",
        body=b"{}",
        state=WebhookState.PROCESSED,
        received_at=timezone.now() - timedelta(days=2),
    )
    WebhookEvent.objects.filter(state=WebhookState.PENDING).update(attempts=99)  # the next try gives up
    webhook_process(debounce=False)
    # when
    health = api.get(f"/api/v1/carrier-accounts/{account.pk}").json()["webhook_health"]
    # then
    assert (health["accepted_last_hour"], health["accepted_last_day"]) == (2, 2)
    assert health["last_accepted_at"] is not None and health["last_accepted_at"] > old.received_at.isoformat()
    assert (health["refused_last_hour"], health["refused_last_day"], health["last_refused_status"]) == (1, 1, 400)
    assert "not valid JSON" in health["last_refused_reason"]
    assert (health["unprocessable_last_hour"], health["unprocessable_last_day"]) == (2, 2)
    assert "gave up" in health["last_unprocessable_reason"]
    assert health["inactive_accepted_last_day"] == 0


def test_the_api_never_shows_a_secret_and_is_read_only(org, api):
    account = factories.CarrierAccountFactory(
        organization=org,
        config={"api_token": "tok-secret-1"},
        webhook_username="u",
        webhook_password="pw-secret-2",  # noqa: S106
    )
    response = api.get("/api/v1/carrier-accounts")
    assert response.status_code == 200
    text = json.dumps(response.json())
    for secret in (account.webhook_secret, "tok-secret-1", "pw-secret-2"):
        assert secret not in text
    assert set(response.json()["results"][0]) == {
        "id",
        "name",
        "provider",
        "is_active",
        "webhook_health",
        "created_at",
        "updated_at",
    }
    assert api.patch(f"/api/v1/carrier-accounts/{account.pk}", {"name": "x"}, format="json").status_code == 405
    assert api.delete(f"/api/v1/carrier-accounts/{account.pk}").status_code == 405


def test_the_list_reads_health_in_a_fixed_number_of_queries(org, api, django_assert_max_num_queries):
    for _ in range(5):
        factories.CarrierAccountFactory(organization=org)
    api.get("/api/v1/carrier-accounts")  # warm: API key lookup caches
    # auth + throttle + page + the four health queries, whatever the number of accounts
    with django_assert_max_num_queries(8):
        assert len(api.get("/api/v1/carrier-accounts").json()["results"]) == 5


def test_the_admin_shows_an_accounts_webhook_health(org, account, post_webhook, admin_client):
    assert post_webhook(account, "delivery", b"{broken").status_code == 400
    page = admin_client.get(f"/admin/carriers/carrieraccount/{account.pk}/change/")
    listing = admin_client.get("/admin/carriers/carrieraccount/")
    assert page.status_code == 200 and b"Webhook health" in page.content and b"invalid body" in page.content
    assert listing.status_code == 200 and b"1 / 1 (last: 400" in listing.content
    assert account.webhook_secret.encode() not in listing.content
