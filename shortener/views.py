"""The redirect: GET /<code> on a short-link host → 302 to the target. The hot path; see docs/shortener.md.

On a cache hit it costs one Redis round-trip (GET the link + RPUSH the click, in one packet) and no
database query. HEAD answers the same; its click is buffered too but flagged (head_request) and never counted.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from functools import lru_cache, partial
from urllib.parse import quote, urlsplit, urlunsplit

import idna
import redis
from django.utils.encoding import iri_to_uri

from config.lanes import Answer

from . import conf, selectors
from .cache import NEGATIVE, link_get_and_buffer_click
from .clicks import click_payload
from .codes import CODE_RE

log = logging.getLogger(__name__)

NOT_FOUND_HTML = (
    b"<!doctype html><meta charset=utf-8><title>Link not found</title><p>This link does not exist or has expired.</p>"
)
ROBOTS_TXT = b"User-agent: *\nDisallow: /\n"
# 302, never 301: a permanent redirect is cached by browsers, and the next click would not reach us.
_REDIRECT_HEADERS = (("Cache-Control", "private, no-store"), ("X-Robots-Tag", "noindex"))


@lru_cache(maxsize=8192)
def location_header(url: str) -> str:
    """A target URL as an HTTP header may carry it: ASCII only, the host IDNA-encoded (bücher.example →
    xn--bcher-kva.example), everything else non-ASCII, spaces and control characters (a right-to-left
    override too) percent-encoded as UTF-8; what is already ASCII and printable is left as it is.
    ValueError for a host IDNA refuses. Cached: the redirect asks for the same few URLs over and over."""
    if url.isascii() and url.isprintable() and " " not in url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if not netloc.isascii():
        userinfo, at, hostport = netloc.rpartition("@")
        host, colon, port = hostport.partition(":")  # an IPv6 literal is ASCII: never here
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise ValueError(f"host {host!r} cannot be IDNA-encoded: {exc}") from None
        netloc = f"{quote(userinfo, safe='%:!$&()*+,;=')}{at}{host}{colon}{port}"
    # iri_to_uri: percent-encodes all but the characters URIs allow, never encodes '%' twice.
    return iri_to_uri(urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)))


def _redirect(url: str) -> Answer:
    try:
        location = location_header(url)
    except ValueError:
        log.warning("shortener: a target's host cannot be IDNA-encoded; answered 404")
        return _not_found("")
    return Answer(302, headers=(*_REDIRECT_HEADERS, ("Location", location)))


def _not_found(fallback: str) -> Answer:
    if fallback:
        return _redirect(fallback)
    return Answer(404, NOT_FOUND_HTML, (*_REDIRECT_HEADERS, ("Content-Type", "text/html; charset=utf-8")))


def link_redirect_answer(*, code: str, method: str, meta: Mapping) -> Answer:
    if method not in ("GET", "HEAD"):
        return Answer(405, headers=(("Allow", "GET, HEAD"),))
    if not CODE_RE.fullmatch(code):
        return _not_found(conf.default_fallback_url())
    key = conf.link_cache_key(code)
    data = None
    try:
        raw = link_get_and_buffer_click(
            key=key, buffer_key=conf.clicks_buffer_key(), click=click_payload(meta, code, method)
        )
    except redis.RedisError:
        # Redis down: still redirect (from the database); the click is lost, the visitor is not.
        log.warning("shortener: redis unavailable, redirect served from the database, click not recorded")
        raw = None
        data = selectors.link_for_redirect(code=code)
    else:
        if raw is None:
            data = selectors.link_cache_fill(code=code)
        elif raw != NEGATIVE:
            data = json.loads(raw)
    if data is None:
        return _not_found(conf.default_fallback_url())
    expires = data["e"]
    if expires is not None and expires <= time.time():
        return _not_found(data["f"])
    return _redirect(data["u"])


def short_host_answer(*, path: str, method: str, meta: Mapping) -> Answer:
    """Everything a short-link host answers: /<code>, /robots.txt (crawlers: stay away); else 404.
    Reached through `short_host_route`, from the middleware (through Django) and the WSGI lane."""
    if path == "/robots.txt":
        return Answer(200, ROBOTS_TXT, (("Content-Type", "text/plain"),))
    code = path[1:]
    if "/" in code or not code:
        return _not_found("")
    return link_redirect_answer(code=code, method=method, meta=meta)


def short_host_route(*, host: str, path: str, method: str, meta: Mapping) -> Callable[[], Answer] | None:
    """The short-host rule, for both transports (the middleware on Django's path, the WSGI lane): a
    request for a short-link host is answered by `short_host_answer`, and nothing else is served there;
    None when the host is not one of ours."""
    if not conf.is_short_host(host):
        return None
    return partial(short_host_answer, path=path or "/", method=method, meta=meta)
