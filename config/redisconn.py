"""One Redis client per process and timeout, for our own keys outside Celery (counters, failure limits).

A client is cached per timeout: redis-py's connection pool checks the process id on every checkout and
opens fresh connections in a forked child (web-server workers, Celery prefork), so one cached client is
safe across forks. Callers choose the timeout: a counter on a request path must fail fast rather than
hold the request while Redis is unreachable.
"""

from __future__ import annotations

from functools import cache

import redis
from django.conf import settings


@cache
def redis_client(*, timeout: float | None = None) -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout)
