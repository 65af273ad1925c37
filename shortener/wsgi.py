"""The short-link lane (config/lanes.py): every request whose Host is a short-link host is answered before
Django's request path, by the rule the Django route applies too (`shortener.views.short_host_route`,
called by shortener.middleware, first in MIDDLEWARE). See docs/shortener.md.

The lane saves the request/response objects and the middleware chain around a redirect whose own work
is one Redis round trip.
"""

from __future__ import annotations

from config.lanes import Handler, Lane

from .views import short_host_route


class ShortLinkLane(Lane):
    name = "short-link redirect"

    def claim(self, environ: dict) -> Handler | None:
        return short_host_route(
            host=environ.get("HTTP_HOST", ""),
            path=environ.get("PATH_INFO", ""),
            method=environ.get("REQUEST_METHOD", "GET"),
            meta=environ,
        )
