"""The app as the web server serves it (config/webserver.py: Granian, config.wsgi.application with its
lanes) against the test database: a carrier callback, a short-link redirect and a Django page, over
real HTTP. The lanes' own cases run in-process in tests/carriers and tests/shortener."""

from __future__ import annotations

import json

import pytest
import requests

from carriers.models import WebhookEvent, WebhookState
from shortener.models import Link
from tests import factories
from tests.worker import purge_queues, served_web

SHORT_HOST = "prly.served.test"


@pytest.fixture
def served_app(settings):
    with served_web(SHORT_LINK_DOMAIN=SHORT_HOST, REDIS_KEY_PREFIX=f"{settings.REDIS_KEY_PREFIX}-served") as url:
        yield url
    purge_queues()  # the apply task the stored callback enqueued: no worker of this test takes it


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_served_app_answers_callbacks_redirects_and_pages(served_app):
    # given: a carrier account and a short link, committed (the server is another process)
    org = factories.OrganizationFactory()
    account = factories.CarrierAccountFactory(organization=org, provider="sandbox")
    link = Link.objects.create(organization=org, code="Served1x", target_url="https://example.com/served")
    idn = Link.objects.create(organization=org, code="Served2x", target_url="https://bücher.example/\u202eü")
    report = {
        "type": "recipient_delivery_report_sms",
        "batch_id": "BATCH-SERVED",
        "recipient": "15125550100",
        "code": 0,
        "status": "Delivered",
        "at": "2026-10-02T09:34:18.542Z",
    }
    # when
    stored = requests.post(
        f"{served_app}/webhooks/sinch/{account.webhook_secret}/delivery", data=json.dumps(report), timeout=10
    )
    unknown = requests.post(f"{served_app}/webhooks/sinch/not-a-secret/delivery", data="{}", timeout=10)
    redirect = requests.get(
        f"{served_app}/{link.code}", headers={"Host": SHORT_HOST}, allow_redirects=False, timeout=10
    )
    page = requests.get(f"{served_app}/admin/login/", timeout=10)
    idn_redirect = requests.get(
        f"{served_app}/{idn.code}", headers={"Host": SHORT_HOST}, allow_redirects=False, timeout=10
    )
    # then
    assert stored.status_code == 200 and unknown.status_code == 404
    event = WebhookEvent.objects.get(account=account)
    assert event.state == WebhookState.PENDING and json.loads(bytes(event.body)) == report
    assert redirect.status_code == 302 and redirect.headers["Location"] == "https://example.com/served"
    assert page.status_code == 200 and b"<form" in page.content
    # the header as it went over the wire: ASCII, IDNA host, percent-encoded path (issue 12.10)
    assert idn_redirect.raw.headers["Location"] == "https://xn--bcher-kva.example/%E2%80%AE%C3%BC"
