"""The Sinch adapter against the sandbox carrier over real HTTP: success and every error class."""

from __future__ import annotations

import socket

import pytest
from django.test import override_settings

from carriers.base import OutboundBatch, PermanentCarrierError, TransientCarrierError
from carriers.registry import adapter_for
from carriers.sinch import SinchAdapter, default_base_url, map_status, parse_delivery_payload
from tests import factories


def _batch(**kw) -> OutboundBatch:
    fields = {
        "from_number": "+15125550199",
        "recipients": ["+15125550100", "+15125550101"],
        "body": "Hi ${name}",
        "parameters": {"name": {"+15125550100": "Ann", "default": "there"}},
        "client_reference": "b:ref1",
        "delivery_report": "none",
    }
    fields.update(kw)
    return OutboundBatch(**fields)


def test_send_batch_posts_sinch_batch_and_returns_id(org, sandbox_carrier):
    adapter = adapter_for(sandbox_carrier.account(org))
    # when
    result = adapter.send_batch(_batch(callback_url="http://127.0.0.1:9/cb", delivery_report="per_recipient"))
    # then
    assert len(result.batch_id) == 26 and result.accepted_at is not None
    [sent] = sandbox_carrier.batches()
    assert sent["id"] == result.batch_id
    assert sent["to"] == ["+15125550100", "+15125550101"] and sent["from"] == "+15125550199"
    assert sent["client_reference"] == "b:ref1" and sent["delivery_report"] == "per_recipient"
    assert [m["body"] for m in sent["messages"]] == ["Hi Ann", "Hi there"]


def test_5xx_is_transient(org, sandbox_carrier):
    sandbox_carrier.force({"status": 503, "code": "internal_error", "text": "try later"})
    with pytest.raises(TransientCarrierError) as info:
        adapter_for(sandbox_carrier.account(org)).send_batch(_batch())
    assert info.value.http_status == 503 and info.value.code == "internal_error" and info.value.transient


def test_429_is_transient_with_retry_after(org, sandbox_carrier):
    sandbox_carrier.force({"status": 429, "retry_after": 7, "code": "too_many_requests", "text": "slow down"})
    with pytest.raises(TransientCarrierError) as info:
        adapter_for(sandbox_carrier.account(org)).send_batch(_batch())
    assert info.value.http_status == 429 and info.value.retry_after == 7.0


def test_rate_limit_answers_429(org, sandbox_carrier):
    sandbox_carrier.rate_limit(1)
    adapter = adapter_for(sandbox_carrier.account(org))
    adapter.send_batch(_batch())
    with pytest.raises(TransientCarrierError) as info:
        adapter.send_batch(_batch())
    assert info.value.http_status == 429 and info.value.retry_after == 1.0


def test_400_is_permanent_with_sinch_code_and_text(org, sandbox_carrier):
    adapter = adapter_for(sandbox_carrier.account(org))
    with pytest.raises(PermanentCarrierError) as info:
        adapter.send_batch(_batch(recipients=[]))
    assert info.value.http_status == 400 and not info.value.transient
    assert info.value.code == "syntax_constraint_violation" and "between 1 and 1000" in info.value.text


def test_403_is_permanent(org, sandbox_carrier):
    # Sinch answers 403 missing_callback_url when a report is asked for without any callback URL.
    with pytest.raises(PermanentCarrierError) as info:
        adapter_for(sandbox_carrier.account(org)).send_batch(_batch(delivery_report="per_recipient"))
    assert info.value.http_status == 403 and info.value.code == "missing_callback_url"


def test_wrong_token_is_permanent(org, sandbox_carrier):
    sandbox_carrier.config.token = "the-right-one"  # noqa: S105 - test value
    with pytest.raises(PermanentCarrierError) as info:
        adapter_for(sandbox_carrier.account(org)).send_batch(_batch())
    assert info.value.http_status == 401


def test_timeout_is_transient(org, sandbox_carrier):
    sandbox_carrier.force({"sleep": 1.0})
    account = sandbox_carrier.account(org, config={"read_timeout": 0.2})
    with pytest.raises(TransientCarrierError) as info:
        adapter_for(account).send_batch(_batch())
    assert info.value.code == "timeout"


def test_connection_refused_is_transient(org):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    account = factories.CarrierAccountFactory(
        organization=org,
        provider="sinch",
        config={"service_plan_id": "p", "api_token": "t", "base_url": f"http://127.0.0.1:{port}"},
    )
    with pytest.raises(TransientCarrierError) as info:
        adapter_for(account).send_batch(_batch())
    assert info.value.code == "connection"


def test_status_reads_for_backfill(org, sandbox_carrier):
    adapter = adapter_for(sandbox_carrier.account(org))
    sandbox_carrier.outcomes({"+15125550101": "Expired"})
    batch_id = adapter.send_batch(_batch()).batch_id
    sandbox_carrier.config.delay_max = 0  # already final (outcome timing is fixed per batch at creation)
    import time

    time.sleep(0.06)
    # one recipient
    report = adapter.fetch_recipient_status(batch_id=batch_id, recipient="+15125550101")
    assert (report.batch_id, report.recipient, report.status, report.carrier_status, report.code) == (
        batch_id,
        "+15125550101",
        "undelivered",
        "Expired",
        "406",
    )
    assert adapter.fetch_recipient_status(batch_id=batch_id, recipient="+15125550177") is None
    # by client reference
    reports = adapter.find_by_client_reference("b:ref1")
    assert sorted((r.recipient, r.status) for r in reports) == [
        ("+15125550100", "delivered"),
        ("+15125550101", "undelivered"),
    ]
    assert all(r.client_reference == "b:ref1" for r in reports)
    assert adapter.find_batch_by_client_reference("b:ref1") == batch_id
    assert adapter.find_batch_by_client_reference("b:nope") is None
    # whole batch
    full = adapter.fetch_batch_report(batch_id=batch_id)
    assert sorted(r.carrier_status for r in full) == ["Delivered", "Expired"]


def test_adapter_cached_per_account_until_updated(org, sandbox_carrier):
    account = sandbox_carrier.account(org)
    first = adapter_for(account)
    assert adapter_for(account) is first
    account.name = "renamed"
    account.save()
    assert adapter_for(account) is not first


def test_base_url_defaults_from_region_and_is_overridable(org):
    eu = factories.CarrierAccountFactory(
        organization=org, config={"service_plan_id": "p", "api_token": "t", "region": "eu"}
    )
    assert adapter_for(eu).root == "https://eu.sms.api.sinch.com/xms/v1/p"
    custom = factories.CarrierAccountFactory(
        organization=org,
        config={"service_plan_id": "p", "api_token": "t", "region": "eu", "base_url": "https://sms.example.test/"},
    )
    assert adapter_for(custom).root == "https://sms.example.test/xms/v1/p"
    with pytest.raises(ValueError, match="region"):
        default_base_url("mars")


@override_settings(SANDBOX_CARRIER_URL="http://127.0.0.1:18091")
def test_sandbox_provider_uses_settings_url(org):
    account = factories.CarrierAccountFactory(
        organization=org, provider="sandbox", config={"service_plan_id": "p", "api_token": "t"}
    )
    assert adapter_for(account).root == "http://127.0.0.1:18091/xms/v1/p"


def test_repr_never_shows_the_token():
    adapter = SinchAdapter(service_plan_id="p", api_token="s3cret-token", base_url="https://x.test")  # noqa: S106
    assert "s3cret" not in repr(adapter)


@pytest.mark.parametrize(
    ("word", "ours"),
    [
        ("Queued", "sent"),
        ("Dispatched", "sent"),
        ("Delivered", "delivered"),
        ("DELIVERED", "delivered"),
        ("Failed", "failed"),
        ("Rejected", "failed"),
        ("Aborted", "failed"),
        ("Cancelled", "failed"),
        ("Expired", "undelivered"),
        ("Deleted", "undelivered"),
        ("Unknown", "undelivered"),
    ],
)
def test_status_map(word, ours):
    assert map_status(word) == ours


def test_summary_with_mixed_statuses_names_nobody():
    payload = {
        "type": "delivery_report_sms",
        "batch_id": "B",
        "total_message_count": 3,
        "statuses": [{"code": 0, "status": "Delivered", "count": 2}, {"code": 402, "status": "Aborted", "count": 1}],
    }
    assert parse_delivery_payload(payload) == []


def test_account_webhook_urls(org, settings):
    settings.PUBLIC_BASE_URL = "https://parley.example/"
    account = factories.CarrierAccountFactory(organization=org)
    assert account.callback_url == f"https://parley.example/webhooks/sinch/{account.webhook_secret}/delivery"
    assert account.inbound_url == f"https://parley.example/webhooks/sinch/{account.webhook_secret}/inbound"
