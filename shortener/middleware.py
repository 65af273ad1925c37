"""Host dispatch: requests for a short-link host are answered here, before any other middleware.

Installed first in settings.MIDDLEWARE. On a short host the redirect runs with no sessions, auth, CSRF or
messages (none of which a redirect needs, and each costs time on the hot path), and the normal app is
never served there: any other path is a 404. Every other host passes straight through (one dict lookup).
The rule is `shortener.views.short_host_route`, which the WSGI lane (shortener/wsgi.py) calls too.
"""

from __future__ import annotations

from config.lanes import answer_to_response

from .views import short_host_route


class ShortLinkHostMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        handler = short_host_route(
            host=request.META.get("HTTP_HOST", ""), path=request.path_info, method=request.method, meta=request.META
        )
        if handler is None:
            return self.get_response(request)
        return answer_to_response(handler())
