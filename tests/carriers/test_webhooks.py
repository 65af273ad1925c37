"""Webhook endpoints: authenticate by secret (and basic auth), store the raw body, answer. Query counts pinned."""

from __future__ import annotations

import base64
import json

import pytest

from carriers.models import WebhookEvent, WebhookState
from tests import factories
from tests.carriers.conftest import recipient_report

PER_RECIPIENT = {
    "type": "recipient_delivery_report_sms",
    "batch_id": "01FC66621XXXXX119Z8PMV1QPQ",
    "recipient": "15125550100",
    "code": 0,
    "status": "Delivered",
    "at": "2026-10-02T09:34:18.542Z",
    "operator_status_at": "2026-10-02T09:34:18.000Z",
    "client_reference": "b:abc",
}
SUMMARY = {
    "type": "delivery_report_sms",
    "batch_id": "01FC66621XXXXX119Z8PMV1QPQ",
    "total_message_count": 2,
    "statuses": [{"code": 0, "status": "Delivered", "count": 2}],
    "client_reference": "b:abc",
}
FULL = {
    "type": "delivery_report_sms",
    "batch_id": "01FC66621XXXXX119Z8PMV1QPQ",
    "total_message_count": 2,
    "statuses": [
        {"code": 0, "status": "Delivered", "count": 1, "recipients": ["15125550100"]},
        {"code": 402, "status": "Aborted", "count": 1, "recipients": ["15125550101"]},
    ],
}
MO_TEXT = {
    "type": "mo_text",
    "id": "01FC66621XXXXX119Z8PMV1QPR",
    "from": "15125550100",
    "to": "15125550199",
    "body": "Hello",
    "received_at": "2026-10-02T09:34:18.542Z",
    "operator_id": "310260",
}
MO_BINARY = {
    "type": "mo_binary",
    "id": "01FC66621XXXXX119Z8PMV1QPS",
    "from": "15125550100",
    "to": "15125550199",
    "body": "SGVsbG8=",
    "udh": "050003CC0201",
    "received_at": "2026-10-02T09:34:18.542Z",
}


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("delivery", PER_RECIPIENT),
        ("delivery", SUMMARY),
        ("delivery", FULL),
        ("inbound", MO_TEXT),
        ("inbound", MO_BINARY),
    ],
)
def test_every_sinch_shape_is_stored_raw_and_answered_200(account, post_webhook, kind, payload):
    raw = json.dumps(payload, indent=1).encode()
    # when
    response = post_webhook(account, kind, raw)
    # then
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.account_id, event.kind, event.state, event.attempts) == (account.id, kind, WebhookState.PENDING, 0)
    assert bytes(event.body) == raw


@pytest.mark.parametrize(
    ("kind", "body", "reason"),
    [
        ("delivery", b"not json{", "not valid JSON"),
        ("delivery", b"[1, 2]", "not a JSON object"),
        ("delivery", json.dumps({"type": "mystery"}).encode(), "unknown delivery report type"),
        ("delivery", json.dumps({**PER_RECIPIENT, "batch_id": None}).encode(), "'batch_id'"),
        ("delivery", json.dumps({**PER_RECIPIENT, "status": "Teleported"}).encode(), "unknown Sinch delivery status"),
        ("inbound", json.dumps({**MO_TEXT, "from": ""}).encode(), "'from'"),
        ("inbound", json.dumps({"type": "mo_text"}).encode(), "'id'"),
    ],
)
def test_malformed_body_is_400_with_reason_and_still_stored_invalid(account, post_webhook, kind, body, reason):
    response = post_webhook(account, kind, body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_body" and reason in response.json()["reason"]
    event = WebhookEvent.objects.get()
    assert event.state == WebhookState.INVALID and reason in event.error and bytes(event.body) == body


def test_wrong_secret_is_404_and_stores_nothing(account, client):
    response = client.post(
        "/webhooks/sinch/not-a-secret/delivery", data=json.dumps(PER_RECIPIENT), content_type="application/json"
    )
    assert response.status_code == 404
    assert not WebhookEvent.objects.exists()


def test_get_is_not_allowed(account, client):
    assert client.get(f"/webhooks/sinch/{account.webhook_secret}/delivery").status_code == 405


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_auth_when_configured(org, post_webhook):
    account = factories.CarrierAccountFactory(organization=org, webhook_username="sinch", webhook_password="pw-123456")  # noqa: S106
    assert post_webhook(account, "delivery", PER_RECIPIENT).status_code == 401
    assert (
        post_webhook(account, "delivery", PER_RECIPIENT, HTTP_AUTHORIZATION=_basic("sinch", "wrong")).status_code == 401
    )
    assert (
        post_webhook(account, "delivery", PER_RECIPIENT, HTTP_AUTHORIZATION=_basic("sinch", "pw-123456")).status_code
        == 200
    )
    assert WebhookEvent.objects.count() == 1


def test_view_hot_path_is_one_insert_when_account_cached(account, post_webhook, django_assert_num_queries):
    post_webhook(account, "delivery", PER_RECIPIENT)  # warms the per-process account cache
    with django_assert_num_queries(1):
        assert post_webhook(account, "delivery", PER_RECIPIENT).status_code == 200


def test_view_cold_cache_costs_one_lookup_more(account, post_webhook, django_assert_num_queries):
    with django_assert_num_queries(2):
        assert post_webhook(account, "delivery", PER_RECIPIENT).status_code == 200


def test_enqueue_is_debounced(account, post_webhook, django_capture_on_commit_callbacks, settings):
    import redis

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("webhooks")  # the Celery queue of "carriers.*" tasks (config/queues.py)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(5):
            post_webhook(account, "delivery", PER_RECIPIENT)
    assert broker.llen("webhooks") == 1  # five stored, one apply task published
    assert WebhookEvent.objects.count() == 5
    broker.delete("webhooks")


def test_report_for_another_accounts_message_changes_nothing(org, account, line, post_webhook):
    from messaging.services.reports import webhook_process

    # given: a sent message on account A's line, and account B in another organization
    conversation = factories.ConversationFactory(organization=org, line=line)
    message = factories.MessageFactory(
        conversation=conversation,
        status="sent",
        carrier_batch_id="BATCH-A",
        carrier_recipient=conversation.contact.phone_number,
    )
    other = factories.CarrierAccountFactory(organization=factories.OrganizationFactory())
    # when: the report is posted to B's URL
    assert post_webhook(other, "delivery", recipient_report(message)).status_code == 200
    webhook_process(debounce=False)
    # then
    message.refresh_from_db()
    assert message.status == "sent"
    event = WebhookEvent.objects.get()
    assert event.account_id == other.id and event.state == WebhookState.PENDING and "no message" in event.error


def test_answers_503_when_the_report_cannot_be_stored(account, post_webhook):
    from django.db import connection

    post_webhook(account, "delivery", PER_RECIPIENT)  # account lookup cached
    with connection.cursor() as cursor:  # the table is gone for this (rolled back) test transaction
        cursor.execute("ALTER TABLE carriers_webhookevent RENAME TO carriers_webhookevent_away")
    # then: 5xx, so that Sinch retries the report later (a 4xx would drop it for good)
    assert post_webhook(account, "delivery", PER_RECIPIENT).status_code == 503


def test_fast_lane_path_is_the_urlconfs(account):
    from django.urls import resolve, reverse

    from carriers.wsgi import KINDS, ROUTES

    for name, kind in (("carriers:sinch-delivery", "delivery"), ("carriers:sinch-inbound", "inbound")):
        path = reverse(name, args=[account.webhook_secret])
        view, kwargs = ROUTES.match(path)
        assert view is resolve(path).func and kwargs == {"secret": account.webhook_secret} and KINDS[view] == kind


def test_fast_lane_leaves_other_requests_to_django(account):
    from tests.carriers.conftest import wsgi_post

    # given: a GET on the webhook path (the view only allows POST) and a POST elsewhere
    secret = account.webhook_secret
    # when / then: Django answers them (405 from require_POST; the URLconf's 404)
    assert wsgi_post(f"/webhooks/sinch/{secret}/delivery", b"", REQUEST_METHOD="GET").status_code == 405
    assert wsgi_post(f"/webhooks/sinch/{secret}/other", b"{}").status_code == 404
    assert WebhookEvent.objects.count() == 0


def test_fast_lane_refuses_an_oversized_body_without_storing(account, settings):
    from tests.carriers.conftest import wsgi_post

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = wsgi_post(f"/webhooks/sinch/{account.webhook_secret}/delivery", json.dumps(PER_RECIPIENT).encode())
    assert response.status_code == 413
    assert WebhookEvent.objects.count() == 0
