"""The client's IP address, one definition for login lockout (django-axes) and API-key failure limits.

REMOTE_ADDR unless TRUSTED_PROXY_COUNT proxies stand in front of the app; then the address those proxies
saw, taken from X-Forwarded-For counted from the right (entries further left are the client's to write).
"""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings


def client_ip_from_meta(meta: Mapping) -> str | None:
    proxies = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0))
    if proxies > 0:
        forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return meta.get("REMOTE_ADDR") or None  # None: no socket (e.g. the test client's force_login)


def client_ip(request) -> str | None:
    return client_ip_from_meta(request.META)
