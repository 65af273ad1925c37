"""The shortener's configuration, read from settings with defaults (config/settings/parley.py holds the
documented ones; the optional ones below are read with getattr so the app runs without them)."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings

# 8 characters of 62 = 2.2e14 codes: with 100 million links a random guess hits one 1 time in 2 million.
# 7 (the minimum the issue allows) would be 62x easier to enumerate; per-recipient links make the table big.
CODE_LENGTH = 8
TARGET_URL_MAX_LENGTH = 2048
# Cached link data lives this long after creation (most clicks come in the first days); a later click is a
# cache miss that reloads the link from the database and caches it again.
CACHE_TTL_SECONDS = 7 * 24 * 3600
# Unknown codes are cached as such briefly, so a scanner cannot turn every guess into a database query.
NEGATIVE_CACHE_TTL_SECONDS = 60


def code_length() -> int:
    return int(getattr(settings, "SHORT_LINK_CODE_LENGTH", CODE_LENGTH))


def default_domain() -> str:
    return settings.SHORT_LINK_DOMAIN


def scheme() -> str:
    return getattr(settings, "SHORT_LINK_SCHEME", "https")


def default_fallback_url() -> str:
    """Where unknown or expired codes go when the link has no fallback; empty means a small 404 page."""
    return getattr(settings, "SHORT_LINK_FALLBACK_URL", "")


def _strip_port(host: str) -> str:
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


@lru_cache(maxsize=1)
def _short_hosts(domain: str, extra: tuple[str, ...]) -> frozenset[str]:
    hosts: set[str] = set()
    for d in (domain, *extra):
        d = d.strip().lower()
        if d:
            hosts.add(d)
            hosts.add(_strip_port(d))
    return frozenset(hosts)


def short_hosts() -> frozenset[str]:
    """Hosts the redirect answers on: SHORT_LINK_DOMAIN plus SHORT_LINK_EXTRA_DOMAINS (organizations' own
    short domains; each needs DNS and a certificate anyway, so it is a deployment setting)."""
    return _short_hosts(settings.SHORT_LINK_DOMAIN, tuple(getattr(settings, "SHORT_LINK_EXTRA_DOMAINS", ())))


def is_short_host(host: str) -> bool:
    if not host:
        return False
    hosts = short_hosts()
    host = host.lower()
    return host in hosts or _strip_port(host) in hosts


def redis_key_prefix() -> str:
    return f"{settings.REDIS_KEY_PREFIX}:sl"


def link_cache_key(code: str) -> str:
    return f"{redis_key_prefix()}:l:{code}"


def clicks_buffer_key() -> str:
    return f"{redis_key_prefix()}:clicks"
