"""One Redis client per process and timeout, for our own keys outside Celery (counters, failure limits).

A client is cached per timeout: redis-py's connection pool checks the process id on every checkout and
opens fresh connections in a forked child (web-server workers, Celery prefork), so one cached client is
safe across forks. Callers choose the timeout: a counter on a request path must fail fast rather than
hold the request while Redis is unreachable.
"""

from __future__ import annotations

import logging
from functools import cache

import redis
from django.conf import settings
from redis.lock import Lock

log = logging.getLogger(__name__)


@cache
def redis_client(*, timeout: float | None = None) -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout)


def redis_lock(name: str, *, ttl: float) -> Lock:
    """A lock shared by every process on REDIS_URL, expiring `ttl` seconds after it is taken if its
    holder dies. For a critical section that spans several transactions: PostgreSQL's session-level
    advisory locks do not survive PgBouncer in transaction mode, where consecutive statements of one
    session may run on different server connections (an unlock then misses its lock, which stays held
    on a pooled connection; docs/scaling.md). Take it with `acquire(blocking=False)` (a try-lock) or
    `acquire()` (waits, polling every 0.1 s); give it back with `redis_unlock`."""
    return redis_client(timeout=10).lock(f"{settings.REDIS_KEY_PREFIX}:lock:{name}", timeout=ttl)


def redis_unlock(lock: Lock) -> None:
    """Release a lock taken with `redis_lock`; one that expired meanwhile is logged (its ttl was too short
    for what it guarded), not raised, so the guarded work's own outcome stands."""
    try:
        lock.release()
    except redis.exceptions.LockError:
        log.warning("lock %s had expired before its release", lock.name)
