"""The short-link lane (config/lanes.py): every request whose Host is a short-link host is answered by
`shortener.views.short_host_answer` before Django's request path. See docs/shortener.md.

The Django route stays (shortener.middleware, first in MIDDLEWARE) and answers with the same function;
this lane saves the request/response objects and the middleware chain around a redirect whose own
work is one Redis round trip.
"""

from __future__ import annotations

from collections.abc import Mapping

from config.lanes import Answer, Lane

from . import conf
from .views import short_host_answer


class ShortLinkLane(Lane):
    name = "short-link redirect"

    def claim(self, environ: Mapping) -> bool | None:
        return True if conf.is_short_host(environ.get("HTTP_HOST", "")) else None

    def answer(self, environ: dict, claim: bool) -> Answer:
        path = environ.get("PATH_INFO", "") or "/"
        return short_host_answer(path=path, method=environ.get("REQUEST_METHOD", "GET"), meta=environ)
