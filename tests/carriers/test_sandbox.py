"""The sandbox carrier itself: Sinch's validation and error shapes, report posting, retries, inbound."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import requests

from carriers.sandbox.state import SandboxConfig, SandboxState, batch_created_at, new_batch_id, parse_mix
from tests.worker import free_port

AUTH = {"Authorization": "Bearer t"}


def _post(sandbox, payload, headers=AUTH):
    return requests.post(f"{sandbox.api}/batches", json=payload, headers=headers, timeout=5)


def _batch(**kw):
    return {"to": ["15125550100", "15125550101"], "from": "15125550199", "body": "Hi", **kw}


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"from": "1", "body": "x", "to": []}, 400, "syntax_constraint_violation"),
        (
            {"from": "1", "body": "x", "to": [f"1512555{i:04d}" for i in range(1001)]},
            400,
            "syntax_constraint_violation",
        ),
        ({"from": "1", "body": "x", "to": ["not-a-number"]}, 400, "syntax_invalid_parameter_format"),
        ({"from": "1", "to": ["15125550100"]}, 400, "syntax_constraint_violation"),
        (
            {"from": "1", "body": "x", "to": ["15125550100"], "delivery_report": "sometimes"},
            400,
            "syntax_invalid_parameter_format",
        ),
        (
            {"from": "1", "body": "x", "to": ["15125550100"], "parameters": {"name": {"a": 1}}},
            400,
            "syntax_invalid_parameter_format",
        ),
        ({"from": "1", "body": "x", "to": ["15125550100"], "delivery_report": "full"}, 403, "missing_callback_url"),
    ],
)
def test_validation_like_sinch(sandbox_carrier, payload, status, code):
    response = _post(sandbox_carrier, payload)
    assert response.status_code == status
    assert response.json()["code"] == code and response.json()["text"]


def test_invalid_json_and_missing_token(sandbox_carrier):
    response = requests.post(f"{sandbox_carrier.api}/batches", data=b"{nope", headers=AUTH, timeout=5)
    assert (response.status_code, response.json()["code"]) == (400, "syntax_invalid_json")
    assert _post(sandbox_carrier, _batch(), headers={}).status_code == 401
    assert _post(sandbox_carrier, _batch(), headers={"Authorization": "Bearer "}).status_code == 401


def test_thousand_recipients_with_parameters(sandbox_carrier):
    to = [f"1512555{i:04d}" for i in range(1000)]
    response = _post(
        sandbox_carrier,
        {"to": to, "from": "15125550199", "body": "Code ${code}", "parameters": {"code": {n: n[-4:] for n in to}}},
    )
    assert response.status_code == 201
    [sent] = sandbox_carrier.batches()
    assert len(sent["messages"]) == 1000 and sent["messages"][7]["body"] == "Code 0007"


def test_per_recipient_reports_are_posted_with_dispatched_first(sandbox_carrier, callback_recorder):
    sandbox_carrier.outcomes({"15125550101": "Failed"})
    batch = _post(
        sandbox_carrier,
        _batch(delivery_report="per_recipient", callback_url=callback_recorder.url + "/cb", client_reference="ref-9"),
    ).json()
    posts = callback_recorder.wait_for(4)
    reports = [json.loads(body) for _, body in posts]
    assert len(reports) == 4 and {p for p, _ in posts} == {"/cb"}
    by_recipient = {}
    for r in reports:
        assert r["type"] == "recipient_delivery_report_sms" and r["batch_id"] == batch["id"]
        assert r["client_reference"] == "ref-9" and r["at"].endswith("Z")
        by_recipient.setdefault(r["recipient"], []).append((r["status"], r["code"]))
    assert by_recipient == {
        "15125550100": [("Dispatched", 401), ("Delivered", 0)],
        "15125550101": [("Dispatched", 401), ("Failed", 60)],
    }


def test_per_recipient_final_summary_and_full(sandbox_carrier, callback_recorder):
    url = callback_recorder.url
    _post(sandbox_carrier, _batch(delivery_report="per_recipient_final", callback_url=url + "/final"))
    _post(sandbox_carrier, _batch(delivery_report="summary", callback_url=url + "/summary"))
    _post(sandbox_carrier, _batch(delivery_report="full", callback_url=url + "/full"))
    posts = callback_recorder.wait_for(4)
    by_path = {}
    for path, body in posts:
        by_path.setdefault(path, []).append(json.loads(body))
    assert [r["status"] for r in by_path["/final"]] == ["Delivered", "Delivered"]
    [summary] = by_path["/summary"]
    assert summary["type"] == "delivery_report_sms" and summary["total_message_count"] == 2
    assert summary["statuses"] == [{"code": 0, "status": "Delivered", "count": 2}]
    [full] = by_path["/full"]
    assert full["statuses"][0]["recipients"] == ["15125550100", "15125550101"]


def test_reports_are_retried_on_5xx_and_429_but_not_on_400(sandbox_carrier, callback_recorder):
    callback_recorder.answers = [503, 429]
    _post(
        sandbox_carrier,
        _batch(to=["15125550100"], delivery_report="per_recipient_final", callback_url=callback_recorder.url),
    )
    assert len(callback_recorder.wait_for(1)) == 1  # delivered on the third try
    assert sandbox_carrier.wait_reports()
    assert sandbox_carrier.state.sender.stats["retried"] == 2
    callback_recorder.answers = [400]
    _post(
        sandbox_carrier,
        _batch(to=["15125550100"], delivery_report="per_recipient_final", callback_url=callback_recorder.url),
    )
    assert sandbox_carrier.wait_reports()
    assert sandbox_carrier.state.sender.stats["dropped_4xx"] == 1
    assert len(callback_recorder.posts) == 1


def test_duplicates_and_out_of_order(sandbox_carrier, callback_recorder):
    sandbox_carrier.config.duplicate_rate = 1.0
    sandbox_carrier.config.out_of_order_rate = 1.0
    _post(
        sandbox_carrier, _batch(to=["15125550100"], delivery_report="per_recipient", callback_url=callback_recorder.url)
    )
    posts = callback_recorder.wait_for(3)
    assert sandbox_carrier.wait_reports()
    statuses = [json.loads(b)["status"] for _, b in posts]
    assert statuses[0] == "Delivered"  # the final report overtook the intermediate one
    assert sorted(statuses) == ["Delivered", "Delivered", "Dispatched"]  # and was posted twice


def test_inbound_injection_posts_mo_text(sandbox_carrier, callback_recorder):
    mo = sandbox_carrier.inbound(from_="+15125550100", to="+15125550199", body="STOP", url=callback_recorder.url)
    [(_, body)] = callback_recorder.wait_for(1)
    posted = json.loads(body)
    assert posted == mo
    assert (posted["type"], posted["from"], posted["to"], posted["body"]) == (
        "mo_text",
        "15125550100",
        "15125550199",
        "STOP",
    )


def test_delivery_reports_list_filters(sandbox_carrier):
    sandbox_carrier.outcomes({"15125550101": "Expired"})
    sandbox_carrier.config.delay_min = sandbox_carrier.config.delay_max = 0
    _post(sandbox_carrier, _batch(client_reference="r1"))
    _post(sandbox_carrier, _batch(client_reference="r2"))
    listing = requests.get(
        f"{sandbox_carrier.api}/delivery_reports",
        headers=AUTH,
        timeout=5,
        params={"client_reference": "r1", "status": "Expired"},
    ).json()
    assert listing["count"] == 1 and listing["delivery_reports"][0]["recipient"] == "15125550101"
    page = requests.get(
        f"{sandbox_carrier.api}/delivery_reports", headers=AUTH, timeout=5, params={"page": 1, "page_size": 3}
    ).json()
    assert (page["count"], page["page"], page["page_size"]) == (4, 1, 1)


def test_outcomes_are_shared_across_workers():
    # Two processes with the same seed agree on a batch neither holds: the id carries its creation time.
    batch_id = new_batch_id(time.time() - 5)
    assert abs(batch_created_at(batch_id) - (time.time() - 5)) < 0.01
    mix = parse_mix("delivered=0.5,failed=0.5")
    a = SandboxState(SandboxConfig(mix=mix), sender=object())
    b = SandboxState(SandboxConfig(mix=mix), sender=object())
    outcomes = {a.outcome(batch_id, f"1512555{i:04d}")[0] for i in range(50)}
    assert outcomes == {"Delivered", "Failed"}
    assert all(a.outcome(batch_id, f"1512555{i:04d}") == b.outcome(batch_id, f"1512555{i:04d}") for i in range(50))


def test_cli_with_workers_serves_and_answers_for_each_other():
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "carriers.sandbox",
            "--port",
            str(port),
            "--workers",
            "2",
            "--delay-max",
            "0",
            "--delay-min",
            "0",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}/xms/v1/plan"
        for _ in range(100):
            try:
                batch = requests.post(f"{base}/batches", json=_batch(), headers=AUTH, timeout=2).json()
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        # fresh connections land on either worker; every answer agrees
        answers = {
            requests.get(f"{base}/batches/{batch['id']}/delivery_report/15125550100", headers=AUTH, timeout=2).json()[
                "status"
            ]
            for _ in range(10)
        }
        assert answers == {"Delivered"}
    finally:
        proc.terminate()
        proc.wait(10)


# -- outage knobs: a journal kept across restarts, an outage window, a lost answer ------------------------


def _adapter(thread):
    from carriers.sinch import SinchAdapter

    return SinchAdapter(service_plan_id="plan", api_token="t", base_url=thread.url, read_timeout=5)  # noqa: S106


def _outbound(ref: str, report: str = "none"):
    from carriers.base import OutboundBatch

    return OutboundBatch(
        from_number="+15125550199",
        recipients=["+15125550100"],
        body="Hi",
        client_reference=ref,
        delivery_report=report,
    )


def test_a_restarted_sandbox_still_knows_what_it_accepted_from_its_journal(tmp_path):
    from carriers.sandbox import SandboxThread

    journal = str(tmp_path / "journal.jsonl")
    config = dict(port=0, delay_min=0.0, delay_max=0.0, journal=journal, default_callback_url="http://127.0.0.1:9/x")
    with SandboxThread(SandboxConfig(**config)) as first:
        batch_id = _adapter(first).send_batch(_outbound("b:kept", "per_recipient_final")).batch_id
        assert first.state.counters["reports_scheduled"] == 1
    # when: a new process (here: a new server) starts on the same journal
    with SandboxThread(SandboxConfig(**config)) as second:
        adapter = _adapter(second)
        # then: it finds the batch by our reference and reports on it, as the carrier's database would
        assert adapter.find_batch_by_client_reference("b:kept") == batch_id
        assert adapter.fetch_recipient_status(batch_id=batch_id, recipient="+15125550100").status == "delivered"
        assert second.state.counters["reports_scheduled"] == 0  # the old process's reports died with it


def test_an_outage_window_answers_every_request_503_until_it_ends(sandbox_carrier):
    from carriers.base import TransientCarrierError

    requests.post(f"{sandbox_carrier.url}/_sandbox/outage", json={"seconds": 0.5}, timeout=5)
    adapter = _adapter(sandbox_carrier)
    with pytest.raises(TransientCarrierError) as raised:
        adapter.send_batch(_outbound("b:during"))
    assert raised.value.http_status == 503
    time.sleep(0.6)
    assert adapter.send_batch(_outbound("b:after")).batch_id


def test_a_lost_answer_means_accepted_without_a_reply(sandbox_carrier):
    from carriers.base import TransientCarrierError

    sandbox_carrier.force({"lose_answer": True})
    adapter = _adapter(sandbox_carrier)
    with pytest.raises(TransientCarrierError) as raised:
        adapter.send_batch(_outbound("b:lost"))
    assert raised.value.code == "connection"
    (batch,) = sandbox_carrier.batches()
    assert adapter.find_batch_by_client_reference("b:lost") == batch["id"]
