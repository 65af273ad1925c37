"""Failed API-key attempts per client IP, counted in Redis (docs/security.md).

A client whose Authorization header carried API_KEY_FAILURE_LIMIT wrong keys within
API_KEY_FAILURE_WINDOW_SECONDS is refused with 429 (Retry-After: the rest of the window) before its next
key is even looked up, so guessing keys is paced to the limit per window per address. The window is fixed:
it starts at the first failure and is not extended by later ones. If Redis is unreachable the limit is not
applied (logged): a broken counter must not take the API down with it.
"""

from __future__ import annotations

import logging

import redis
from django.conf import settings

from config.redisconn import redis_client

log = logging.getLogger(__name__)


def _redis() -> redis.Redis:
    return redis_client(timeout=2)


def _key(ip: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:apikey-failures:{ip}"


def retry_after(ip: str | None) -> int | None:
    """Seconds until `ip` may try a key again, or None when it is not blocked."""
    if not ip:
        return None
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.get(_key(ip))
        pipe.ttl(_key(ip))
        count, ttl = pipe.execute()
    except redis.RedisError:
        log.warning("API-key failure counter unavailable; not applied", exc_info=True)
        return None
    if count is None or int(count) < settings.API_KEY_FAILURE_LIMIT:
        return None
    return max(int(ttl), 1)


def record_failure(ip: str | None) -> None:
    if not ip:
        return
    key = _key(ip)
    try:
        pipe = _redis().pipeline(transaction=True)
        pipe.set(key, 0, ex=settings.API_KEY_FAILURE_WINDOW_SECONDS, nx=True)
        pipe.incr(key)
        pipe.execute()
    except redis.RedisError:
        log.warning("API-key failure counter unavailable; not applied", exc_info=True)


def clear(ip: str) -> None:
    _redis().delete(_key(ip))
