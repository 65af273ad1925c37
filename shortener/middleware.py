"""Host dispatch: requests for a short-link host are answered here, before any other middleware.

Installed first in settings.MIDDLEWARE. On a short host the redirect runs with no sessions, auth, CSRF or
messages (none of which a redirect needs, and each costs time on the hot path), and the normal app is
never served there: any other path is a 404. Every other host passes straight through (one dict lookup).
"""

from __future__ import annotations

from . import conf
from .views import short_host_dispatch


class ShortLinkHostMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if conf.is_short_host(request.META.get("HTTP_HOST", "")):
            return short_host_dispatch(request)
        return self.get_response(request)
