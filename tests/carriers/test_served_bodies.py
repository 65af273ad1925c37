"""Callback bodies without a Content-Length, over real HTTP against the served app (Granian): HTTP/1.1
`Transfer-Encoding: chunked` and an HTTP/2 stream (h2c, prior knowledge, through curl). Both routes:
the fast lane (config.wsgi:application) and Django's own path (config.wsgi:django_application)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import requests

from carriers.models import WebhookEvent, WebhookState
from tests import factories
from tests.carriers.test_webhooks import MO_TEXT, PER_RECIPIENT
from tests.worker import purge_queues, served_web
from tests.wsgi import wsgi_request

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROUTES = {"fast_lane": "config.wsgi:application", "django": "config.wsgi:django_application"}


@pytest.fixture(params=sorted(ROUTES))
def served(request, settings):
    with served_web(ROUTES[request.param], REDIS_KEY_PREFIX=f"{settings.REDIS_KEY_PREFIX}-served") as url:
        yield url
    purge_queues()  # the apply task the stored callbacks enqueued: no worker of this test takes it


@pytest.fixture
def sandbox_account():
    org = factories.OrganizationFactory()
    return factories.CarrierAccountFactory(organization=org, provider="sandbox")


def _chunks(data: bytes, size: int = 7):
    for i in range(0, len(data), size):
        yield data[i : i + size]


def test_a_chunked_report_is_stored_whole_and_answered_200(served, sandbox_account):
    raw = json.dumps(PER_RECIPIENT, indent=1).encode()
    url = f"{served}/webhooks/sinch/{sandbox_account.webhook_secret}/delivery"
    # when: requests sends a generator body as Transfer-Encoding: chunked, without Content-Length
    response = requests.post(url, data=_chunks(raw), headers={"Content-Type": "application/json"}, timeout=10)
    # then
    assert response.status_code == 200, response.content
    event = WebhookEvent.objects.get(account=sandbox_account)
    assert event.state == WebhookState.PENDING and bytes(event.body) == raw


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl (with HTTP/2) is not installed")
def test_an_http2_streamed_inbound_text_is_stored_whole_and_answered_200(served, sandbox_account):
    raw = json.dumps(MO_TEXT, indent=1).encode()
    url = f"{served}/webhooks/sinch/{sandbox_account.webhook_secret}/inbound"
    # when: curl uploads stdin over h2c: DATA frames and no content-length header
    done = subprocess.run(
        ["curl", "-sS", "--http2-prior-knowledge", "-X", "POST", "-T", "-", "-H", "Content-Type: application/json"]
        + ["-o", "/dev/null", "-w", "%{http_version} %{http_code}", url],
        input=raw,
        capture_output=True,
        timeout=30,
        check=True,
    )
    # then
    assert done.stdout.decode() == "2 200", done.stderr
    event = WebhookEvent.objects.get(account=sandbox_account)
    assert event.kind == "inbound" and bytes(event.body) == raw


@pytest.mark.django_db(transaction=False)
def test_an_unsized_body_past_the_limit_is_413_and_not_stored(settings):
    # given: the fast lane in-process, a body without Content-Length (as a chunked one arrives)
    org = factories.OrganizationFactory()
    account = factories.CarrierAccountFactory(organization=org, provider="sandbox")
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    path = f"/webhooks/sinch/{account.webhook_secret}/delivery"
    # when
    response = wsgi_request("POST", path, json.dumps(PER_RECIPIENT).encode(), CONTENT_LENGTH="")
    # then
    assert response.status_code == 413
    assert not WebhookEvent.objects.exists()


def test_unsized_bodies_in_front_of_django_are_capped():
    import io

    from config.lanes import UnsizedBodies

    seen = []

    def app(environ, start_response):
        seen.append((environ["CONTENT_LENGTH"], environ["wsgi.input"].read()))
        start_response("200 OK", [])
        return [b""]

    capped = UnsizedBodies(app, memory_size=4, max_size=10)
    statuses = []

    def call(body: bytes, method: str = "POST"):
        environ = {"REQUEST_METHOD": method, "wsgi.input": io.BytesIO(body)}
        capped(environ, lambda status, headers: statuses.append(status))

    call(b"0123456789")  # at the cap: read whole (spooled to disk past 4 bytes)
    call(b"0123456789x")  # past it
    assert seen == [("10", b"0123456789")]
    assert statuses == ["200 OK", "413 Content Too Large"]
