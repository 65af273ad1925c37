"""The Progressive Web App's three pieces (issue 16): the web manifest, the service worker and the offline
page. The worker is served from the site root, not /static/, because a service worker only controls pages
under its own path; its script is a template so that it names the static files by their served URLs."""

from __future__ import annotations

import hashlib
import json

from django.http import JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.cache import cache_control

THEME = "#16324f"


@cache_control(max_age=3600)
def manifest(request):
    return JsonResponse(
        {
            "name": "Parley",
            "short_name": "Parley",
            "description": "Business texting: your inbox and conversations.",
            "id": "/",
            "start_url": "/inbox/",
            "scope": "/",
            "display": "standalone",
            "background_color": "#f6f7f9",
            "theme_color": THEME,
            "icons": [
                {"src": static("webapp/icons/icon-192.png"), "sizes": "192x192", "type": "image/png"},
                {"src": static("webapp/icons/icon-512.png"), "sizes": "512x512", "type": "image/png"},
                {"src": static("webapp/icons/icon.svg"), "sizes": "any", "type": "image/svg+xml"},
            ],
        },
        content_type="application/manifest+json",
    )


# Browsers re-check the worker script at most daily anyway; no-cache makes a new deploy's worker (a new
# cache name) reach agents on their next visit.
@cache_control(no_cache=True)
def service_worker(request):
    shell = [
        "/offline/",
        static("webapp/app.css"),
        static("webapp/htmx.min.js"),
        static("webapp/app.js"),
        static("webapp/icons/icon-192.png"),
        static("webapp/icons/icon.svg"),  # the offline page's icon (without one Chromium asks for /favicon.ico)
    ]
    # The cache is named after the shell's URLs: a deploy that changes a hashed static name or the list
    # gets a new cache, and the old one is dropped on activation.
    version = hashlib.sha256("\n".join(shell).encode()).hexdigest()[:12]
    return render(
        request,
        "webapp/sw.js",
        {"shell_json": json.dumps(shell), "version": version},
        content_type="application/javascript; charset=utf-8",
    )


def offline(request):
    """Shown by the service worker when a page cannot be fetched; it must need no login and no data."""
    return render(request, "webapp/offline.html")
