"""The sandbox carrier for tests: a real HTTP server (Sinch's XMS wire format) on a free loopback port.

    from tests.sandbox import sandbox_carrier  # noqa: F401  (fixture)

    def test_x(sandbox_carrier):
        account = sandbox_carrier.account(org)          # provider "sandbox", base_url → this server
        adapter_for(account).send_batch(...)
        sandbox_carrier.batches()                         # what was sent (GET /_sandbox/batches)

In-thread (not a subprocess) so a test can script it directly: outcomes per number, forced answers
(5xx, 429 + Retry-After, 400, a slow answer for timeouts), rate limit, inbound injection.
For a separate process use `python -m carriers.sandbox --port N` (tests/worker.py starts one).
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from carriers.registry import adapters_clear
from carriers.sandbox import SandboxConfig, SandboxThread


class SandboxCarrier:
    def __init__(self, thread: SandboxThread):
        self.thread = thread
        self.state = thread.state
        self.url = thread.url
        self.token = "sandbox-token"  # noqa: S105 - test value
        self.service_plan_id = thread.service_plan_id
        self.api = f"{self.url}/xms/v1/{self.service_plan_id}"

    @property
    def config(self) -> SandboxConfig:
        return self.state.config

    def account(self, organization, **fields):
        from tests import factories

        config = {"service_plan_id": self.service_plan_id, "api_token": self.token, "base_url": self.url}
        config.update(fields.pop("config", {}))
        return factories.CarrierAccountFactory(organization=organization, provider="sandbox", config=config, **fields)

    def outcomes(self, mapping: dict[str, str]) -> None:
        """Final status word per number, e.g. {"+15125550100": "Failed"}."""
        with self.state.lock:
            self.state.status_overrides.update({k.lstrip("+"): v for k, v in mapping.items()})

    def force(self, *specs: dict) -> None:
        """Next API answers: {"status": 503} / {"status": 429, "retry_after": 2} / {"sleep": 2} ..."""
        with self.state.lock:
            self.state.forced.extend(dict(s) for s in specs)

    def rate_limit(self, per_second: float) -> None:
        self.state.config.rate_limit = per_second
        self.state._bucket = (per_second, time.monotonic())

    def hold_numbers(self, *numbers: str, service_plan_id: str | None = None, project: str | None = None) -> None:
        """Numbers the sandbox's Numbers API says this account's project holds (POST /_sandbox/numbers)."""
        plan = service_plan_id or self.service_plan_id
        held = {n: {"service_plan_id": plan, "project": project or plan} for n in numbers}
        requests.post(f"{self.url}/_sandbox/numbers", json=held, timeout=5).raise_for_status()

    def batches(self, **query) -> list[dict]:
        return requests.get(f"{self.url}/_sandbox/batches", params=query, timeout=5).json()["batches"]

    def inbound(self, *, from_: str, to: str, body: str, url: str = "", **extra) -> dict:
        data = {"from": from_, "to": to, "body": body, **extra}
        if url:
            data["url"] = url
        return requests.post(f"{self.url}/_sandbox/inbound", json=data, timeout=5).json()

    def wait_reports(self, timeout: float = 10.0) -> bool:
        """Until every scheduled report was posted (including retries)."""
        return self.state.sender.wait_idle(timeout)


@pytest.fixture
def sandbox_carrier():
    """A fresh sandbox per test; reports final within 10-50 ms, all delivered unless told otherwise."""
    adapters_clear()
    thread = SandboxThread(SandboxConfig(port=0, delay_min=0.01, delay_max=0.05)).start()
    yield SandboxCarrier(thread)
    thread.stop()
    adapters_clear()


class CallbackRecorder:
    """A loopback HTTP server that records what is POSTed to it (stands in for our webhooks when the
    app is not under test), answering from `answers` (a list of statuses, consumed) then 200."""

    def __init__(self):
        self.posts: list[tuple[str, bytes]] = []
        self.answers: list[int] = []
        self.lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with recorder.lock:
                    status = recorder.answers.pop(0) if recorder.answers else 200
                    if status < 300:
                        recorder.posts.append((self.path, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.posts) >= count:
                    return list(self.posts)
            time.sleep(0.01)
        with self.lock:
            return list(self.posts)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def callback_recorder():
    recorder = CallbackRecorder()
    yield recorder
    recorder.stop()
