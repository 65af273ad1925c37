"""The Redis side of the shortener: one client per process, the link cache, the click buffer key.

Link data is cached as a small JSON string under `<prefix>:sl:l:<code>`, written when links are created
(after commit) and on a cache miss, so a redirect that hits the cache asks the database nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

import redis
from django.conf import settings

from . import conf

_client: list[redis.Redis | None] = [None]
_client_pid: list[int | None] = [None]
NEGATIVE = b"-"
# One pipeline round-trip per this many SETs when caching a blast's links: 1,000 keeps a round-trip's
# payload ~300 KB and the number of round-trips for 20,000 links at 20.
CACHE_PIPELINE_CHUNK = 1000


def redis_client() -> redis.Redis:
    """A process-wide client (its pool is thread-safe); rebuilt after a fork (gunicorn, celery prefork)."""
    import os

    pid = os.getpid()
    if _client[0] is None or _client_pid[0] != pid:
        _client[0] = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        _client_pid[0] = pid
    client = _client[0]
    assert client is not None
    return client


def link_payload(*, link_id: int, target_url: str, fallback_url: str, expires_at: datetime | None) -> bytes:
    return json.dumps(
        {
            "i": link_id,
            "u": target_url,
            "f": fallback_url,
            "e": expires_at.timestamp() if expires_at else None,
        },
        separators=(",", ":"),
    ).encode()


def links_cache(items: Iterable[tuple[str, bytes]]) -> None:
    """SET each (code, payload) with the cache TTL, pipelined in chunks."""
    client = redis_client()
    pipe = client.pipeline(transaction=False)
    pending = 0
    for code, payload in items:
        pipe.set(conf.link_cache_key(code), payload, ex=conf.CACHE_TTL_SECONDS)
        pending += 1
        if pending >= CACHE_PIPELINE_CHUNK:
            pipe.execute()
            pending = 0
    if pending:
        pipe.execute()


def links_uncache(codes: Iterable[str]) -> None:
    keys = [conf.link_cache_key(code) for code in codes]
    if keys:
        redis_client().delete(*keys)
