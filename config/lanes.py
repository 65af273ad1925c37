"""WSGI fast lanes: the two URLs that carry per-message traffic answered before Django's request path.

A carrier posts one delivery report per recipient, and every recipient who taps a link hits the
redirect, so these two endpoints see the most requests by far. Their work is one INSERT
(carriers/wsgi.py) or one Redis round trip (shortener/wsgi.py); Django's request path around it
(WSGIRequest, the middleware chain, URL resolution, HttpResponse) cost more than the work itself.

Each lane answers with the same function its Django view calls (an `Answer`), so both transports
behave identically and the tests run the cases through both. Everything the lane does not claim goes
to Django unchanged. What a lane keeps of Django's request path (docs/architecture.md, "Lanes"):
- its routes: a path lane claims the paths the URLconf gives its views (`UrlconfRoutes`), so
  config/urls.py stays the one routing table;
- the Host check of `HttpRequest.get_host()` (ALLOWED_HOSTS), answered 400 and logged as Django does;
- errors: an exception is handled by Django's own `response_for_exception`, so it is logged on
  `django.request` and sent through `got_request_exception` (what error trackers hook) and answered
  with the project's 500;
- connection housekeeping: `request_started` / `request_finished` as `WSGIHandler` sends them
  (CONN_MAX_AGE, connections left broken by an error, the DEBUG query log).
The lanes in front of Django are listed in settings.WSGI_LANES (import strings, outermost first), so
config knows no app's lane (`application_with_lanes`).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.exceptions import DisallowedHost
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIRequest
from django.core.signals import setting_changed
from django.http import HttpResponse
from django.http.request import split_domain_port, validate_host
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.converters import StringConverter
from django.utils.module_loading import import_string

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
    """Django's ALLOWED_HOSTS check (HttpRequest.get_host) for a WSGI environ, without the request (whose
    construction would cost a lane more than its whole answer). A refused host is then put through
    get_host() itself (`Lane.__call__`), so what is refused and how is Django's."""
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


def answer_for_exception(environ: dict, exc: Exception) -> Answer:
    """Django's handling of an exception raised while answering (call it in the except block): logged
    on django.request (django.security.* for a refused host), `got_request_exception` sent, the
    project's error page as the answer."""
    request = WSGIRequest(environ)
    response = response_for_exception(request, exc)
    headers = tuple((k, v) for k, v in response.items() if k.lower() != "content-length")
    return Answer(response.status_code, response.content, headers)


Handler = Callable[[], Answer]


class Lane:
    """WSGI middleware: a request that `claim(environ)` takes is answered by the handler it returns (a
    callable bound to what the claim found: no second parse); every other request goes to the wrapped
    app."""

    name = "lane"

    def __init__(self, app: WSGIApp):
        self.app = app

    def claim(self, environ: dict) -> Handler | None:
        raise NotImplementedError

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        handler = self.claim(environ)
        if handler is None:
            return self.app(environ, start_response)
        signals.request_started.send(sender=self.__class__, environ=environ)
        try:
            try:
                if not host_allowed(environ):
                    WSGIRequest(environ).get_host()  # raises DisallowedHost as Django's request path would
                    raise DisallowedHost("host refused")  # (host_allowed mirrors get_host: not reached)
                answer = handler()
            except Exception as exc:  # every error is answered as Django answers it
                answer = answer_for_exception(environ, exc)
        finally:
            signals.request_finished.send(sender=self.__class__)
        headers = [("Content-Length", str(len(answer.body))), *answer.headers]
        start_response(f"{answer.status} {HTTPStatus(answer.status).phrase}", headers)
        return [answer.body]


def application_with_lanes(app: WSGIApp) -> WSGIApp:
    """`app` behind the lanes of settings.WSGI_LANES (import strings of Lane classes, outermost first)."""
    for dotted in reversed(settings.WSGI_LANES):
        app = import_string(dotted)(app)
    return app


# -- routes from the URLconf -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Route:
    regex: re.Pattern[str]
    view: Callable
    converters: Mapping[str, Any]
    convert: bool  # False when every converter is <str:> (to_python is the identity): skipped per request


def urlconf_routes(patterns: Iterable, views: frozenset, prefix: str = "", converters: Mapping | None = None):
    """The URLconf's routes to `views`: each pattern's full regex (the prefixes of its includes joined, as
    Django's resolver matches them) and its converters."""
    for p in patterns:
        regex = p.pattern.regex.pattern.removeprefix("^")
        conv = {**(converters or {}), **p.pattern.converters}
        if isinstance(p, URLResolver):
            yield from urlconf_routes(p.url_patterns, views, prefix + regex, conv)
        elif isinstance(p, URLPattern) and p.callback in views:
            convert = any(type(c) is not StringConverter for c in conv.values())
            yield Route(re.compile(prefix + regex), p.callback, conv, convert)


class UrlconfRoutes:
    """The paths of some Django views, taken from the URLconf: built at the first request and again after
    ROOT_URLCONF changes (an override in a test), so a changed config/urls.py moves the lane with the
    view. `match(path)` gives the view and its converted kwargs, as resolve() would, for a path of one of
    these views; else None.

    The settings' URLconf only: a per-request one (request.urlconf, set by a middleware) never applies to
    a lane, which runs before any. Per request this is one attribute test and a regex per route:
    get_resolver(get_urlconf()) would cost ~20 µs (asgiref's Local), a tenth of the lane's whole answer."""

    def __init__(self, views: Iterable[Callable]):
        self.views = frozenset(views)
        self._routes: tuple[Route, ...] | None = None
        setting_changed.connect(self._setting_changed)

    def _setting_changed(self, *, setting: str, **kwargs) -> None:
        if setting == "ROOT_URLCONF":
            self._routes = None

    def routes(self) -> tuple[Route, ...]:
        if self._routes is None:
            self._routes = tuple(urlconf_routes(get_resolver().url_patterns, self.views))
        return self._routes

    def match(self, path: str) -> tuple[Callable, dict[str, Any]] | None:
        if not path.startswith("/"):
            return None
        for route in self.routes():
            m = route.regex.match(path, 1)
            if m is None:
                continue
            kwargs = m.groupdict()
            if route.convert:
                try:  # a converter refusing the value is no match, as in Django's resolver
                    kwargs = {k: route.converters[k].to_python(v) for k, v in kwargs.items()}
                except ValueError:
                    continue
            return route.view, kwargs
        return None

    def __iter__(self) -> Iterator[Route]:
        return iter(self.routes())


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
