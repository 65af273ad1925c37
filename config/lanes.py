"""WSGI fast lanes: the two URLs that carry per-message traffic answered before Django's request path.

A carrier posts one delivery report per recipient, and every recipient who taps a link hits the
redirect, so these two endpoints see the most requests by far. Their work is one INSERT
(carriers/wsgi.py) or one Redis round trip (shortener/wsgi.py); Django's request path around it
(WSGIRequest, the middleware chain, URL resolution, HttpResponse) cost more than the work itself.

Each lane answers with the same function its Django view calls (an `Answer`), so both transports
behave identically and the tests run the cases through both. Everything the lane does not claim goes
to Django unchanged. Connection housekeeping stays Django's: a lane sends `request_started` and
`request_finished` as `django.core.handlers.wsgi.WSGIHandler` does (CONN_MAX_AGE, connections left
broken by an error, the DEBUG query log).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from django.core import signals
from django.http import HttpResponse

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


def answer_to_response(answer: Answer) -> HttpResponse:
    """The Django view's form of an Answer."""
    response = HttpResponse(answer.body, status=answer.status)
    for name, value in answer.headers:
        response[name] = value
    return response


class Lane:
    """WSGI middleware: a request that `claim(environ)` takes (anything but None, e.g. a regex match) is
    answered by `answer(environ, claim)`; every other request goes to the wrapped app."""

    name = "lane"

    def __init__(self, app: WSGIApp):
        self.app = app

    def claim(self, environ: Mapping) -> object | None:
        raise NotImplementedError

    def answer(self, environ: dict, claim: Any) -> Answer:
        raise NotImplementedError

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        claim = self.claim(environ)
        if claim is None:
            return self.app(environ, start_response)
        signals.request_started.send(sender=self.__class__, environ=environ)
        try:
            answer = self.answer(environ, claim)
        except Exception:
            log.exception("%s failed", self.name)
            answer = Answer(500)
        finally:
            signals.request_finished.send(sender=self.__class__)
        headers = [("Content-Length", str(len(answer.body))), *answer.headers]
        start_response(f"{answer.status} {HTTPStatus(answer.status).phrase}", headers)
        return [answer.body]
