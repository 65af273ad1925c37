# ruff: noqa: S105, S106  (made-up secrets the test looks for in the logs)
"""Issue 12 item 13: no secret in any log line.

A representative slice of traffic — every partner's webhooks with good and bad secrets, through the WSGI
lanes and through Django's views; 404s; wrong credentials; the forgot-password flow and its reset link —
runs with every log record captured, as the configured handlers write them (their streams swapped for a
buffer) and as any later handler sees them (pytest's capture, at DEBUG). Every line is then searched for
every secret the test created or sent: 0 hits.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re

import pytest
from django.core import mail
from django.test import Client

from config.redaction import REDACTED, RedactSecretsFilter, redact
from integrations.models import NiceConnection, RingCentralConnection
from organizations.services import api_key_create
from tests import factories
from tests.worker import purge_queues
from tests.wsgi import WsgiClient


@pytest.fixture
def captured_logs():
    """The configured handlers' output: each root handler writes to one buffer while the test runs."""
    import config.wsgi  # noqa: F401  (its django.setup() configures logging anew: before the swap)

    buffer = io.StringIO()
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    configured = [h for h in handlers if any(isinstance(f, RedactSecretsFilter) for f in h.filters)]
    assert configured, "no configured log handler carries the redaction filter"
    previous = [h.setStream(buffer) for h in configured]
    yield buffer
    for handler, stream in zip(configured, previous, strict=True):
        handler.setStream(stream)


def test_every_configured_handler_redacts():
    from django.conf import settings

    for name, handler in settings.LOGGING["handlers"].items():
        assert "redact_secrets" in handler.get("filters", []), f"log handler {name!r} has no redaction filter"
    for handler in logging.getLogger().handlers:
        if not type(handler).__module__.startswith("_pytest"):
            assert any(isinstance(f, RedactSecretsFilter) for f in handler.filters), handler


@pytest.mark.django_db
def test_representative_traffic_logs_no_secret(org, captured_logs, caplog, settings):
    caplog.set_level(logging.DEBUG)
    settings.PUBLIC_BASE_URL = "http://testserver"
    # given: one account or connection per partner, each with its secrets
    account = factories.CarrierAccountFactory(
        organization=org, webhook_username="sinch", webhook_password="pw-S3cr3t-9"
    )
    line = factories.LineFactory(organization=org, carrier_account=account)
    nice = NiceConnection.objects.create(
        organization=org,
        line=line,
        base_url="http://127.0.0.1:9",
        access_token="nice-access-token-7f2c91",
        point_of_contact="poc",
    )
    rc = RingCentralConnection.objects.create(
        organization=org, base_url="http://127.0.0.1:9", bot_token="rc-bot-token-a8d3e0", bot_creator_id="bot"
    )
    member = factories.MembershipFactory(organization=org)
    raw_key = api_key_create(organization=org, name="logs").raw_key
    guessed = ["guessed-secret-0a1b2c3d4e", "guessed-secret-5f6a7b8c9d", "pk_guessedGuessedGuessedGuessed12345"]
    secrets = [
        account.webhook_secret,
        account.webhook_password,
        nice.webhook_secret,
        nice.access_token,
        rc.webhook_secret,
        rc.bot_token,
        raw_key,
        *guessed,
    ]
    auth = "Basic " + base64.b64encode(f"sinch:{account.webhook_password}".encode()).decode()
    bad_auth = "Basic " + base64.b64encode(b"sinch:wrong-password-4c4c").decode()
    secrets.append("wrong-password-4c4c")
    report = json.dumps(
        {
            "type": "recipient_delivery_report_sms",
            "batch_id": "B1",
            "recipient": "15125550100",
            "code": 0,
            "status": "Delivered",
            "at": "2026-10-02T09:34:18.542Z",
        }
    ).encode()
    django_client = Client(raise_request_exception=False)
    lanes = WsgiClient()

    # when: Sinch, through the lane and through Django's view; good, bad and unknown secrets
    for kind in ("delivery", "inbound"):
        for secret in (account.webhook_secret, guessed[0]):
            for authorization in (auth, bad_auth):
                path = f"/webhooks/sinch/{secret}/{kind}"
                lanes.post(path, report, HTTP_AUTHORIZATION=authorization)
                lanes.post(path, b"{not json", HTTP_AUTHORIZATION=authorization)
                django_client.post(path, report, content_type="application/json", HTTP_AUTHORIZATION=authorization)
                django_client.post(path, b"[]", content_type="application/json", HTTP_AUTHORIZATION=authorization)
                django_client.get(path, HTTP_AUTHORIZATION=authorization)  # 405: logged by django.request
    # NICE and RingCentral: good secrets with bad bodies and unknown chats, unknown secrets, wrong methods
    for secret in (nice.webhook_secret, guessed[1]):
        path = f"/integrations/nice/{secret}/events"
        django_client.post(path, {"chatId": "no-such-chat", "type": "ChatEnded"}, content_type="application/json")
        django_client.post(path, b"nope", content_type="application/json")
        django_client.get(path)
    for secret in (rc.webhook_secret, guessed[1]):
        path = f"/integrations/ringcentral/{secret}/webhook"
        django_client.post(path, {}, content_type="application/json", HTTP_VALIDATION_TOKEN="vt")
        django_client.post(path, b"nope", content_type="application/json")
        django_client.get(path)
    # 404s with secrets in the path and the query; the API with right and wrong keys
    django_client.get(f"/webhooks/sinch/{account.webhook_secret}/nothing-here")
    django_client.get(f"/no-such-page/?token={account.webhook_secret}&key={raw_key}")
    django_client.get("/api/v1/contacts", HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    django_client.get("/api/v1/contacts", HTTP_AUTHORIZATION=f"Bearer {guessed[2]}")
    django_client.get(f"/api/v1/no-such-endpoint/{raw_key}", HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    # forgot password: the mail, its link visited, the link with something appended (404), a bad token
    django_client.post("/forgot-password/", {"email": member.user.email})
    reset_path = re.search(r"http://testserver(/reset/\S+/)", mail.outbox[0].body).group(1)
    token = reset_path.rstrip("/").rsplit("/", 1)[1]
    secrets.append(token)
    django_client.get(reset_path + "extra/")
    django_client.get(reset_path)
    django_client.post(reset_path.replace(token, "set-password"), {"new_password1": "x", "new_password2": "y"})
    logging.getLogger("parley.test").warning("visited %s with %s", reset_path, {"Authorization": f"Bearer {raw_key}"})
    purge_queues()  # the apply tasks the stored callbacks enqueued: no worker of this test takes them

    # then: traffic was logged (the test would pass vacuously otherwise), and no line holds a secret
    written = captured_logs.getvalue().splitlines()
    seen = [r.getMessage() for r in caplog.records] + caplog.text.splitlines()
    assert any("Not Found: /webhooks/sinch/" in line for line in written)
    assert any("/integrations/nice/" in line for line in written)
    leaks = [(secret, line) for line in written + seen for secret in secrets if secret in line]
    assert leaks == []
    assert any(REDACTED in line for line in written)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Not Found: /webhooks/sinch/AbC-123_x/delivery", f"Not Found: /webhooks/sinch/{REDACTED}/delivery"),
        ("Bad Request: /integrations/nice/s3cr3t/events", f"Bad Request: /integrations/nice/{REDACTED}/events"),
        ("/integrations/ringcentral/s3cr3t/webhook?x=1", f"/integrations/ringcentral/{REDACTED}/webhook?x=1"),
        ("GET /reset/MQ/cv1abc-0123456789abcdef/", f"GET /reset/MQ/{REDACTED}/"),
        ("GET /reset/MQ/set-password/", "GET /reset/MQ/set-password/"),
        ("Authorization: Bearer pk_abc.def", f"Authorization: Bearer {REDACTED}"),
        ("/x?token=abc&page=2", f"/x?token={REDACTED}&page=2"),
        ("Not Found: /api/v1/contacts", "Not Found: /api/v1/contacts"),
    ],
)
def test_redact(text, expected):
    assert redact(text) == expected


def test_a_celery_workers_own_log_handlers_redact_too():
    # A worker replaces the root logger's handlers with Celery's (worker_hijack_root_logger): set its
    # logging up as `celery worker` does, in a process of its own, and log a path with a secret.
    import os
    import subprocess
    import sys

    from tests.worker import ROOT

    code = (
        "import django; django.setup()\n"
        "import logging\n"
        "from config.celery import app\n"
        "app.log.setup(loglevel='INFO', redirect_stdouts=False)\n"
        "logging.getLogger('django.request').warning('Not Found: %s', '/webhooks/sinch/wkr-S3cret-77/delivery')\n"
        "logging.getLogger('carriers.tasks').info('reset at /reset/MQ/tok-S3cret-88/')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert f"/webhooks/sinch/{REDACTED}/delivery" in output and f"/reset/MQ/{REDACTED}/" in output
    assert "wkr-S3cret-77" not in output and "tok-S3cret-88" not in output
