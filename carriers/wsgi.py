"""The carrier webhook fast lane: WSGI middleware that answers carrier callbacks before Django's
request machinery. See docs/carriers.md ("Receiving").

A carrier posts one callback per recipient, so the delivery-report endpoint is the busiest URL we
serve. Its work is one INSERT; Django's request path around it (WSGIRequest, middleware, URL
resolution, HttpResponse) cost more than the work itself. Measured in-process on one callback
(`bench/bench_webhooks.py` runs it under wrk): 0.49 ms of CPU through Django, 0.20 ms here.

Only `POST /webhooks/sinch/<secret>/(delivery|inbound)` takes this lane; everything else, including
other methods on those paths, goes to Django. The answer is `carriers.views.webhook_answer`, the same
function the Django views call, so both transports behave identically (the webhook tests run on both).
Connection housekeeping is Django's own: the request_started / request_finished signals, as
`django.core.handlers.wsgi.WSGIHandler` sends them (CONN_MAX_AGE, broken connections, DEBUG query log).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from http import HTTPStatus

from django.conf import settings
from django.core import signals

from .views import Answer, webhook_answer

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]

# Mirrors config/urls.py ("webhooks/") + carriers/urls.py; tests/carriers pin that the reversed URLs match.
WEBHOOK_PATH = re.compile(r"/webhooks/sinch/(?P<secret>[^/]+)/(?P<kind>delivery|inbound)")


def _status_line(code: int) -> str:
    return f"{code} {HTTPStatus(code).phrase}"


class WebhookFastLane:
    def __init__(self, app: WSGIApp):
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        match = WEBHOOK_PATH.fullmatch(environ.get("PATH_INFO", ""))
        if match is None or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        signals.request_started.send(sender=self.__class__, environ=environ)
        try:
            answer = self._answer(environ, match["secret"], match["kind"])
        except Exception:
            log.exception("carrier webhook failed")
            answer = Answer(500)
        finally:
            signals.request_finished.send(sender=self.__class__)
        headers = [("Content-Length", str(len(answer.body))), *answer.headers]
        start_response(_status_line(answer.status), headers)
        return [answer.body]

    @staticmethod
    def _answer(environ: dict, secret: str, kind: str) -> Answer:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return Answer(400)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            return Answer(413)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        return webhook_answer(secret=secret, kind=kind, authorization=environ.get("HTTP_AUTHORIZATION", ""), body=body)
