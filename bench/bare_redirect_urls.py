"""Bench-only baseline for bench/bench_redirect.py: a bare Django view answering 302 from a dict.

Served by its own web server as `bare_redirect_urls:application` (bench/ on PYTHONPATH): the project's
settings with one override, ROOT_URLCONF = this module, so the request goes through the same
middleware stack as any page of the app, then a dict lookup. The codes and targets come from the file
named by BENCH_CODES_FILE ("code<TAB>url" per line), the same links the real redirect serves.
"""

from __future__ import annotations

import os

import django
from django.http import HttpResponse
from django.urls import path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

TARGETS: dict[str, str] = {}


def bare_redirect(request, code: str) -> HttpResponse:
    url = TARGETS.get(code)
    if url is None:
        return HttpResponse(status=404)
    response = HttpResponse(status=302)
    response["Location"] = url
    return response


urlpatterns = [path("<str:code>", bare_redirect)]


def _application():
    django.setup()
    from django.core.wsgi import get_wsgi_application
    from django.test.utils import override_settings

    override_settings(ROOT_URLCONF=__name__).enable()
    codes_file = os.environ.get("BENCH_CODES_FILE")
    if codes_file:
        with open(codes_file) as f:
            for line in f:
                code, _, url = line.rstrip("\n").partition("\t")
                TARGETS[code] = url
    return get_wsgi_application()


application = _application()
