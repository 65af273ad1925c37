"""The WSGI lanes keep what Django's request path gives (config/lanes.py, docs/architecture.md "Lanes"):
their paths are the URLconf's, the Host check refuses what ALLOWED_HOSTS refuses, an exception is logged
and sent through got_request_exception, and config builds them from settings.WSGI_LANES. The lanes'
own cases (reports, redirects) run through both transports in tests/carriers and tests/shortener."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.core.signals import got_request_exception, request_finished, request_started
from django.db import close_old_connections
from django.urls import Resolver404, URLPattern, URLResolver, get_resolver, include, path, resolve

from carriers.models import WebhookEvent
from carriers.wsgi import KINDS, ROUTES, WebhookFastLane
from config.lanes import Answer, Lane, application_with_lanes
from shortener.wsgi import ShortLinkLane
from tests import factories
from tests.wsgi import wsgi_request

# A URLconf with the carrier webhooks mounted elsewhere (test_the_lane_follows_the_urlconf).
urlpatterns = [path("hooks/v2/", include("carriers.urls"))]

REPORT = json.dumps(
    {
        "type": "recipient_delivery_report_sms",
        "batch_id": "B",
        "recipient": "1",
        "code": 0,
        "status": "Delivered",
        "at": "2026-10-02T09:34:18.542Z",
    }
).encode()


def _all_patterns(patterns, prefix=""):
    """Every endpoint of the URLconf as (route text, view), walked independently of the lanes' code."""
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _all_patterns(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p.callback


def test_the_webhook_lanes_routing_table_is_the_urlconfs():
    # the URLconf's endpoints of the lane's views, and only those, are the lane's routes
    urlconf = {(route, view) for route, view in _all_patterns(get_resolver().url_patterns) if view in KINDS}
    assert {view for _, view in urlconf} == set(KINDS)
    assert len(list(ROUTES)) == len(urlconf)
    # and every path is claimed exactly when Django resolves it to one of those views
    paths = [
        "/webhooks/sinch/s3cret/delivery",
        "/webhooks/sinch/s3cret/inbound",
        "/webhooks/sinch/s3cret/other",
        "/webhooks/sinch/s3cret/delivery/extra",
        "/webhooks/sinch//delivery",
        "/integrations/nice/s3cret/events",
        "/healthz",
        "/api/v1/messages",
    ]
    for p in paths:
        try:
            match = resolve(p)
            django = (match.func, match.kwargs) if match.func in KINDS else None
        except Resolver404:  # Django routes it nowhere
            django = None
        assert ROUTES.match(p) == django, p


@pytest.mark.django_db
def test_the_lane_follows_the_urlconf(settings, org):
    account = factories.CarrierAccountFactory(organization=org)
    settings.ROOT_URLCONF = __name__  # the webhooks moved to /hooks/v2/ (setting_changed clears the resolver cache)
    assert ROUTES.match(f"/webhooks/sinch/{account.webhook_secret}/delivery") is None
    assert ROUTES.match(f"/hooks/v2/sinch/{account.webhook_secret}/delivery") is not None
    # end to end: the lane stores the report at the new path
    response = wsgi_request("POST", f"/hooks/v2/sinch/{account.webhook_secret}/delivery", REPORT)
    assert response.status_code == 200 and WebhookEvent.objects.count() == 1


@pytest.mark.django_db
def test_a_bad_host_gets_400_on_the_lane_logged_as_django_logs_it(org, caplog):
    account = factories.CarrierAccountFactory(organization=org)
    webhook = f"/webhooks/sinch/{account.webhook_secret}/delivery"
    with caplog.at_level(logging.ERROR, logger="django.security.DisallowedHost"):
        refused = wsgi_request("POST", webhook, REPORT, HTTP_HOST="evil.example")
    assert refused.status_code == 400 and not WebhookEvent.objects.exists()
    [record] = [r for r in caplog.records if r.name == "django.security.DisallowedHost"]
    assert "evil.example" in record.getMessage()
    # the short-link lane claims only short hosts, which are always allowed; a look-alike goes to Django's 400
    assert wsgi_request("GET", "/abc", HTTP_HOST="prly.localhost.evil.example").status_code == 400


class _Boom(Lane):
    """A lane whose answer fails: what Lane does with the exception is under test, not a view."""

    name = "boom"

    def claim(self, environ):
        if environ.get("PATH_INFO") != "/boom":
            return None

        def fail() -> Answer:
            raise RuntimeError("the lane's work failed")

        return fail


def _plain_app(environ, start_response):
    start_response("204 No Content", [])
    return [b""]


@pytest.mark.django_db
def test_an_exception_in_a_lane_is_logged_and_sent_through_got_request_exception(caplog):
    seen, finished = [], []

    def on_exception(sender, request=None, **kwargs):
        seen.append(request.path)

    def on_finished(sender, **kwargs):
        finished.append(sender)

    got_request_exception.connect(on_exception)
    request_finished.connect(on_finished)
    # as tests/wsgi.py does: the connection-closing receivers would end the test's transaction
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    started = []
    try:
        with caplog.at_level(logging.ERROR, logger="django.request"):
            body = _Boom(_plain_app)(
                {"REQUEST_METHOD": "GET", "PATH_INFO": "/boom", "HTTP_HOST": "testserver", "wsgi.input": io.BytesIO()},
                lambda status, headers: started.append(status),
            )
    finally:
        got_request_exception.disconnect(on_exception)
        request_finished.disconnect(on_finished)
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    assert started == ["500 Internal Server Error"] and b"".join(body)
    assert seen == ["/boom"]  # what error trackers hook (Sentry's Django integration among them)
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.levelno == logging.ERROR and "/boom" in record.getMessage()
    assert record.exc_info is not None and "the lane's work failed" in str(record.exc_info[1])
    assert finished == [_Boom]  # connection housekeeping still ran
    # a request the lane does not claim goes on untouched
    assert _Boom(_plain_app)({"PATH_INFO": "/other"}, lambda status, headers: started.append(status)) == [b""]
    assert started[-1] == "204 No Content"


def test_config_builds_the_lanes_from_settings(settings):
    app = application_with_lanes(_plain_app)
    assert isinstance(app, ShortLinkLane) and isinstance(app.app, WebhookFastLane) and app.app.app is _plain_app
    settings.WSGI_LANES = []
    assert application_with_lanes(_plain_app) is _plain_app
