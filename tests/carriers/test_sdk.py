"""The sandbox's wire format, checked with Sinch's official Python SDK (`sinch`) as the client."""

from __future__ import annotations

import time

from sinch import SinchClient


def _client(sandbox) -> SinchClient:
    client = SinchClient(service_plan_id=sandbox.service_plan_id, sms_api_token=sandbox.token, sms_region="us")
    # The SDK's own override of the SMS origin ("https://{region}.sms.api.sinch.com"), pointed at the sandbox.
    client.configuration.sms_domain_with_service_plan_id = sandbox.url
    return client


def test_sdk_sends_a_batch_and_reads_its_delivery_reports(sandbox_carrier):
    sms = _client(sandbox_carrier).sms
    sandbox_carrier.outcomes({"+15125550101": "Failed"})
    # when
    batch = sms.batches.send_sms(
        to=["+15125550100", "+15125550101"],
        from_="+15125550199",
        body="Hi ${name}",
        parameters={"name": {"+15125550100": "Ann", "default": "you"}},
        client_reference="sdk-ref-1",
    )
    time.sleep(0.08)  # every outcome final (sandbox fixture: 10-50 ms)
    # then
    assert batch.id and batch.type == "mt_text" and batch.to == ["+15125550100", "+15125550101"]
    assert sms.batches.get(batch_id=batch.id).client_reference == "sdk-ref-1"
    summary = sms.delivery_reports.get(batch_id=batch.id, report_type="summary")
    assert summary.batch_id == batch.id and summary.total_message_count == 2
    assert sorted((s.status, s.count) for s in summary.statuses) == [("Delivered", 1), ("Failed", 1)]
    full = sms.delivery_reports.get(batch_id=batch.id, report_type="full")
    assert sorted(r for s in full.statuses for r in s.recipients) == ["15125550100", "15125550101"]
    one = sms.delivery_reports.get_for_number(batch_id=batch.id, recipient="15125550101")
    assert (one.status, one.code, one.recipient) == ("Failed", 60, "15125550101")
    listed = sms.delivery_reports.list(client_reference="sdk-ref-1")
    assert sorted(r.status for r in listed.content()) == ["Delivered", "Failed"]
    assert [b.id for b in sms.batches.list(client_reference="sdk-ref-1").content()] == [batch.id]


def test_sdk_reads_inbounds(sandbox_carrier):
    sandbox_carrier.inbound(from_="+15125550100", to="+15125550199", body="STOP")
    page = _client(sandbox_carrier).sms.inbounds.list()
    [inbound] = page.content()
    assert (inbound.type, inbound.from_, inbound.to, inbound.body) == ("mo_text", "15125550100", "15125550199", "STOP")
