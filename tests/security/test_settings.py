"""Issue 12 items 11 and 14: hosts, the secret key and production settings, checked in fresh processes
(settings are read once, at start) with the environment a deployer sets."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from carriers.models import WebhookEvent
from tests import factories
from tests.worker import ROOT
from tests.wsgi import wsgi_request

PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "k" * 10 + "production-like-secret-for-the-deploy-check-8c1f0e2d7a",
    "DJANGO_ALLOWED_HOSTS": "app.parley.example",
    "PUBLIC_BASE_URL": "https://app.parley.example",
    "SHORT_LINK_DOMAIN": "go.parley.example",
    "SHORT_LINK_SCHEME": "https",
    "DJANGO_SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
}
# Variables of the developer's or CI's shell that would change what the settings derive.
_DERIVED = (
    "DJANGO_DEBUG",
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "PUBLIC_BASE_URL",
    "SHORT_LINK_DOMAIN",
    "SHORT_LINK_EXTRA_DOMAINS",
    "DJANGO_SECURE_SSL_REDIRECT",
    "DJANGO_HSTS_SECONDS",
    "DJANGO_SESSION_COOKIE_SECURE",
    "DJANGO_CSRF_COOKIE_SECURE",
    # Set for the whole session by the browser tests (Playwright's sync API runs an event loop in the
    # test thread); a deployment never sets it, and `check --deploy` rightly warns when it is set.
    "DJANGO_ALLOW_ASYNC_UNSAFE",
)


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in _DERIVED}
    # The embedded services file would fill DJANGO_SECRET_KEY in: point the settings at an empty folder.
    base["PARLEY_DATA_DIR"] = str(ROOT / ".data" / "settings-test-empty")
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _settings(**env: str) -> dict:
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; print(json.dumps({k: getattr(s, k)"
        " for k in ('DEBUG', 'ALLOWED_HOSTS', 'SECURE_HSTS_SECONDS', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE',"
        " 'SECURE_SSL_REDIRECT')}))"
    )
    done = _run("-c", code, **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_check_deploy_passes_under_production_settings():
    done = _run("manage.py", "check", "--deploy", **PRODUCTION)
    assert done.returncode == 0, done.stdout + done.stderr
    # Not one deployment (security.*) or other warning; drf-spectacular's warn about schema guesses of
    # single API views (the API schema's own work, not a deployment setting).
    ids = re.findall(r"\(([a-z_]+\.[A-Z]\d+)\)", done.stdout + done.stderr)
    assert [i for i in ids if not i.startswith("drf_spectacular.")] == []


def test_production_turns_on_hsts_secure_cookies_and_the_https_redirect():
    values = _settings(**PRODUCTION)
    assert values["DEBUG"] is False
    assert values["SECURE_HSTS_SECONDS"] >= 31536000 and values["SECURE_SSL_REDIRECT"] is True
    assert values["SESSION_COOKIE_SECURE"] is True and values["CSRF_COOKIE_SECURE"] is True
    assert values["ALLOWED_HOSTS"] == ["app.parley.example", "go.parley.example"]


@pytest.mark.parametrize("command", [["manage.py", "check"], ["-c", "import config.wsgi"]])
def test_refuses_to_start_with_debug_off_and_the_default_secret_key(command):
    done = _run(*command, DJANGO_DEBUG="0")
    assert done.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY is not set and DEBUG is off" in done.stderr


def test_refuses_a_wildcard_host_with_debug_off():
    done = _run("manage.py", "check", **{**PRODUCTION, "DJANGO_ALLOWED_HOSTS": "app.parley.example,*"})
    assert done.returncode != 0 and "DJANGO_ALLOWED_HOSTS may not contain '*'" in done.stderr


def test_development_defaults_serve_make_runs_hosts_and_nothing_else():
    # make run: PUBLIC_BASE_URL on 127.0.0.1, the short domain on a .localhost name; DEBUG on is allowed the
    # published key
    values = _settings(
        DJANGO_DEBUG="1", PUBLIC_BASE_URL="http://127.0.0.1:8000", SHORT_LINK_DOMAIN="prly.localhost:8000"
    )
    assert "*" not in values["ALLOWED_HOSTS"]
    for host in ("127.0.0.1", ".localhost", "prly.localhost"):
        assert host in values["ALLOWED_HOSTS"]
    assert values["SECURE_SSL_REDIRECT"] is False and values["SESSION_COOKIE_SECURE"] is False


@pytest.mark.django_db
def test_the_webhook_lane_checks_the_host_header(org):
    account = factories.CarrierAccountFactory(organization=org)
    path = f"/webhooks/sinch/{account.webhook_secret}/delivery"
    body = json.dumps(
        {
            "type": "recipient_delivery_report_sms",
            "batch_id": "B",
            "recipient": "1",
            "code": 0,
            "status": "Delivered",
            "at": "2026-10-02T09:34:18.542Z",
        }
    ).encode()
    refused = wsgi_request("POST", path, body, HTTP_HOST="evil.example")
    assert refused.status_code == 400 and not WebhookEvent.objects.exists()
    accepted = wsgi_request("POST", path, body, HTTP_HOST="testserver")
    assert accepted.status_code == 200 and WebhookEvent.objects.count() == 1
