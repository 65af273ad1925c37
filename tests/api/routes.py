"""Every route of /api/v1/, read from the URLconf itself, so a route added anywhere (any app, a router
or a plain path()) is seen by the tests that must cover every route (tenancy matrix, schema)."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver

API_PREFIX = "api/v1/"
_IGNORED_METHODS = {"head", "options"}


@dataclass(frozen=True)
class Route:
    name: str
    pattern: str  # e.g. "api/v1/links/<pk>" (router regexes are shown as they are)
    method: str  # lower case


def _walk(patterns, prefix: str = ""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def _methods(callback) -> set[str]:
    actions = getattr(callback, "actions", None)
    if actions:  # a viewset: its method → action map, for the actions the class really has and serves
        served = set(callback.cls.http_method_names)
        return {m for m, action in actions.items() if hasattr(callback.cls, action) and m in served} - _IGNORED_METHODS
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view_class is None:  # a plain function view
        allowed = getattr(callback, "allowed_methods", None) or {"get"}
        return {m.lower() for m in allowed} - _IGNORED_METHODS
    return {m for m in view_class.http_method_names if hasattr(view_class, m)} - _IGNORED_METHODS


def api_routes() -> set[Route]:
    routes = set()
    for pattern, entry in _walk(get_resolver().url_patterns):
        if not pattern.lstrip("^").startswith(API_PREFIX):
            continue
        for method in _methods(entry.callback):
            routes.add(Route(name=entry.name or pattern, pattern=pattern, method=method))
    return routes
