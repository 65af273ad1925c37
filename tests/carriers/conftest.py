"""Carriers test fixtures: the sandbox carrier (real HTTP), an account and line on it, webhook helpers."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import pytest
from django.core.cache import cache

from carriers import services
from carriers.selectors import account_cache_clear
from carriers.services import APPLY_DEBOUNCE_KEY
from tests import factories
from tests.sandbox import callback_recorder, sandbox_carrier  # noqa: F401  (fixtures)


@pytest.fixture(autouse=True)
def _fresh_caches():
    account_cache_clear()
    cache.delete(APPLY_DEBOUNCE_KEY)
    services._enqueue_memo["at"] = -1.0
    yield
    account_cache_clear()


@pytest.fixture
def account(org):
    return factories.CarrierAccountFactory(
        organization=org, provider="sandbox", config={"service_plan_id": "plan1", "api_token": "tok"}
    )


@pytest.fixture
def line(org, account):
    return factories.LineFactory(organization=org, carrier_account=account)


@dataclass
class WsgiResponse:
    status_code: int
    content: bytes
    headers: dict[str, str]

    def json(self):
        return json.loads(self.content)

    def __getitem__(self, name: str) -> str:
        return self.headers[name]


def wsgi_post(path: str, body: bytes, **headers) -> WsgiResponse:
    """POST through config.wsgi.application, the app gunicorn serves (the carrier webhook fast lane in
    front of Django). As Django's test client does, the connection-closing signal receivers are
    disconnected for the call: the test's transaction must survive the "request"."""
    from django.core import signals
    from django.db import close_old_connections

    from config.wsgi import application

    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.url_scheme": "http",
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        **headers,
    }
    started: list = []
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        chunks = application(environ, lambda status, hdrs, exc_info=None: started.extend((status, hdrs)))
        content = b"".join(chunks)
        getattr(chunks, "close", lambda: None)()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    status, hdrs = started
    return WsgiResponse(int(status.split()[0]), content, dict(hdrs))


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
