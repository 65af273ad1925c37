"""The Numbers API lookup (Sinch's activeNumbers) of the adapter, against the sandbox carrier over HTTP."""

import base64

import pytest

from carriers.registry import adapter_for
from carriers.sinch import SinchAdapter
from tests.worker import start_sandbox, stop_process


def test_active_number_held_unknown_and_other_project(org, sandbox_carrier):
    account = sandbox_carrier.account(org)
    sandbox_carrier.hold_numbers("+15125550142")
    sandbox_carrier.hold_numbers("+15125550143", project="someone-else")
    adapter = adapter_for(account)
    held = adapter.active_number("+15125550142")
    assert held is not None and held.phone_number == "+15125550142"
    assert held.service_plan_id == sandbox_carrier.service_plan_id and "SMS" in held.capabilities
    assert adapter.active_number("+15125550199") is None  # not held at all
    assert adapter.active_number("+15125550143") is None  # held by another project


def test_access_key_is_sent_as_basic_auth(org, sandbox_carrier):
    account = sandbox_carrier.account(
        org, config={"project_id": "proj-7", "key_id": "key-id-1", "key_secret": "key-secret-1"}
    )
    sandbox_carrier.hold_numbers("+15125550144", project="proj-7")
    seen = []
    adapter = adapter_for(account)
    adapter.session.hooks["response"].append(lambda r, *a, **k: seen.append(r.request.headers["Authorization"]))
    assert adapter.active_number("+15125550144") is not None
    assert seen == ["Basic " + base64.b64encode(b"key-id-1:key-secret-1").decode()]
    assert "key-secret-1" not in repr(adapter) and "key-secret-1" not in repr(account)


@pytest.mark.parametrize("flag", [True, False])
def test_the_sandbox_process_can_hold_any_number(flag):
    sandbox = start_sandbox(*(["--hold-any-number"] if flag else []))
    try:
        adapter = SinchAdapter(
            service_plan_id="demo-plan",
            api_token="t",  # noqa: S106 - test value
            base_url=sandbox.url,
            project_id="demo-plan",
            numbers_base_url=sandbox.url,
        )
        held = adapter.active_number("+15125550145")
        assert (held is not None and held.service_plan_id == "demo-plan") if flag else held is None
    finally:
        stop_process(sandbox.proc)
