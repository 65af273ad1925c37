"""Carrier webhook fixtures, for the intake's tests (tests/carriers) and the apply's (tests/messaging):
an account and line on the sandbox provider, webhook posts through Django and the fast lane, reports."""

from __future__ import annotations

import json

import pytest
import redis
from django.conf import settings as django_settings
from django.core.cache import cache

from carriers import services
from carriers.selectors import account_cache_clear
from carriers.services import APPLY_DEBOUNCE_KEY
from tests import factories
from tests.wsgi import wsgi_request


@pytest.fixture
def fresh_webhook_caches(settings):
    """No account cache, apply debounce or enqueue memo carried over from an earlier test."""
    account_cache_clear()
    cache.delete(APPLY_DEBOUNCE_KEY)
    services._enqueue_memo["at"] = -1.0
    # No refusal counters (carriers/health.py) left by an earlier test or run (account ids repeat across
    # runs). The prefix stays as it is: processes a test starts (workers, the breaker's child) share it.
    _drop_refusal_counters(settings.REDIS_KEY_PREFIX)
    yield
    account_cache_clear()
    _drop_refusal_counters(settings.REDIS_KEY_PREFIX)


def _drop_refusal_counters(prefix: str) -> None:
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}:webhook-refused:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def account(org):
    return factories.CarrierAccountFactory(
        organization=org, provider="sandbox", config={"service_plan_id": "plan1", "api_token": "tok"}
    )


@pytest.fixture
def line(org, account):
    return factories.LineFactory(organization=org, carrier_account=account)


def wsgi_post(path: str, body: bytes, **meta):
    return wsgi_request(meta.pop("REQUEST_METHOD", "POST"), path, body, **meta)


@pytest.fixture(params=["django", "fast_lane"])
def post_webhook(request, client):
    """post_webhook(account, "delivery", payload_or_bytes, **headers) → response, through Django's test
    client and through the WSGI application with its carrier fast lane (carriers/wsgi.py)."""

    def post(account, kind: str, payload, **headers):
        body = payload if isinstance(payload, bytes | str) else json.dumps(payload)
        path = f"/webhooks/sinch/{account.webhook_secret}/{kind}"
        if request.param == "fast_lane":
            return wsgi_post(path, body.encode() if isinstance(body, str) else body, **headers)
        return client.post(path, data=body, content_type="application/json", **headers)

    return post


def recipient_report(message, status="Delivered", code=0, batch_id=None, client_reference="", recipient=None):
    """A Sinch per-recipient delivery report (callback body) for one of our messages."""
    report = {
        "type": "recipient_delivery_report_sms",
        "batch_id": batch_id if batch_id is not None else message.carrier_batch_id,
        "recipient": (recipient or message.carrier_recipient or message.contact.phone_number).lstrip("+"),
        "code": code,
        "status": status,
        "at": "2026-10-02T09:34:18.542Z",
        "operator_status_at": "2026-10-02T09:34:18.000Z",
    }
    if client_reference:
        report["client_reference"] = client_reference
    return report
