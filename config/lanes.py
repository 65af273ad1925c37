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
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core import signals
from django.http import HttpResponse
from django.http.request import split_domain_port, validate_host

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


def host_allowed(environ: Mapping) -> bool:
    """Django's ALLOWED_HOSTS check (HttpRequest.get_host) for a WSGI environ, without the request."""
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


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
            # The Host check Django's request.get_host() does: a lane answers only for ALLOWED_HOSTS.
            answer = self.answer(environ, claim) if host_allowed(environ) else Answer(400)
        except Exception:
            log.exception("%s failed", self.name)
            answer = Answer(500)
        finally:
            signals.request_finished.send(sender=self.__class__)
        headers = [("Content-Length", str(len(answer.body))), *answer.headers]
        start_response(f"{answer.status} {HTTPStatus(answer.status).phrase}", headers)
        return [answer.body]


# -- request bodies without a Content-Length ---------------------------------------------------------
# An HTTP/1.1 body sent with `Transfer-Encoding: chunked`, and an HTTP/2 body streamed in DATA frames,
# come with no Content-Length: the server passes no CONTENT_LENGTH and `wsgi.input` yields the body
# until its end. Django's WSGIRequest reads exactly CONTENT_LENGTH bytes and takes a missing one as 0,
# so such a body read as empty (a carrier's valid delivery report answered 400 and stored with 0 bytes).

# Methods whose requests we never expect a body on: no read for them (the redirect lane's GETs).
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_READ_CHUNK = 64 * 1024


class BodyTooLarge(Exception):
    pass


def has_unsized_body(environ: Mapping) -> bool:
    return not environ.get("CONTENT_LENGTH") and environ.get("REQUEST_METHOD", "GET") not in _BODYLESS_METHODS


def read_body(environ: Mapping, limit: int | None) -> bytes:
    """The whole request body, with or without a Content-Length. BodyTooLarge past `limit` bytes
    (checked before reading when the length is declared), ValueError for a malformed Content-Length."""
    stream = environ["wsgi.input"]
    declared = environ.get("CONTENT_LENGTH")
    if declared:
        length = int(declared)
        if length < 0:
            raise ValueError("negative Content-Length")
        if limit is not None and length > limit:
            raise BodyTooLarge
        return stream.read(length) if length else b""
    if environ.get("REQUEST_METHOD", "GET") in _BODYLESS_METHODS:
        return b""
    chunks, size = [], 0
    while chunk := stream.read(_READ_CHUNK):
        size += len(chunk)
        if limit is not None and size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class UnsizedBodies:
    """WSGI middleware in front of Django: a body without a Content-Length is read to its end (spooled
    to a temporary file past `memory_size`) and handed on with CONTENT_LENGTH set, so Django reads it
    like any other. Bodies past `max_size` are answered 413 without reading further."""

    def __init__(self, app: WSGIApp, *, memory_size: int = 2_621_440, max_size: int = 50 * 1024 * 1024):
        self.app, self.memory_size, self.max_size = app, memory_size, max_size

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if not has_unsized_body(environ):
            return self.app(environ, start_response)
        stream = environ["wsgi.input"]
        # Not a with-block: Django reads it after this call returns; it is freed with the environ.
        spool = tempfile.SpooledTemporaryFile(max_size=self.memory_size)  # noqa: SIM115
        size = 0
        while chunk := stream.read(_READ_CHUNK):
            size += len(chunk)
            if size > self.max_size:
                spool.close()
                start_response("413 Content Too Large", [("Content-Length", "0")])
                return [b""]
            spool.write(chunk)
        spool.seek(0)
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = spool, str(size)
        return self.app(environ, start_response)
