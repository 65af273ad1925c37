"""Counters kept in Redis for /metrics (docs/operations.md): messages accepted by the carrier, per line.

One HINCRBY per carrier batch (not per message), on a client with short timeouts; a Redis failure is
logged and the count lost, never the send. Counters only grow (Prometheus takes rates of them).
"""

from __future__ import annotations

import logging

import redis
from django.conf import settings

from config.redisconn import redis_client

log = logging.getLogger(__name__)


def _redis() -> redis.Redis:
    return redis_client(timeout=0.5)  # a metrics counter on the send path must fail fast


def _key() -> str:
    return f"{settings.REDIS_KEY_PREFIX}:metrics:sent-per-line"


def sends_count(*, line_id: int, n: int) -> None:
    if n <= 0:
        return
    try:
        _redis().hincrby(_key(), str(line_id), n)
    except redis.RedisError:
        log.warning("could not count %d sent messages of line %s (Redis unavailable)", n, line_id)


def sends_per_line() -> dict[int, int]:
    """{line id: messages the carrier accepted since the counter began}. Raises redis.RedisError."""
    return {int(k): int(v) for k, v in _redis().hgetall(_key()).items()}
