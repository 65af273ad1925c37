"""Liveness and readiness for load balancers and orchestrators (docs/operations.md).

- `GET /healthz`: the process answers. No database, no Redis: a liveness probe must not restart a web
  server because PostgreSQL is down (that would not help and piles restarts on an outage).
- `GET /readyz`: the database, Redis (caches, rate limits, counters) and the Celery broker answer, each
  with a short timeout; 200 with every check "ok", else 503 naming what failed. A failing check names the
  error class only, never a URL or a password.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection

# Seconds each dependency gets: a readiness probe typically times out after 1-5 s in total.
CHECK_TIMEOUT = 1.0


def check_database() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        # A connection the server dropped stays broken for this thread: close it so the next
        # request (and the next probe) reconnects.
        connection.close()
        raise


def check_redis() -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=CHECK_TIMEOUT, socket_connect_timeout=CHECK_TIMEOUT
    )
    try:
        client.ping()
    finally:
        client.close()


def check_broker() -> None:
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=CHECK_TIMEOUT) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=CHECK_TIMEOUT)


CHECKS: dict[str, Callable[[], None]] = {"database": check_database, "redis": check_redis, "broker": check_broker}


def readiness() -> tuple[bool, dict[str, str]]:
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the class names it
            results[name] = f"failed: {type(exc).__name__}"
        else:
            results[name] = f"ok ({(time.monotonic() - started) * 1000:.0f} ms)"
    return all(v.startswith("ok") for v in results.values()), results


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    ready, checks = readiness()
    failed = sorted(name for name, result in checks.items() if not result.startswith("ok"))
    body: dict[str, object] = {"status": "ok" if ready else "unavailable", "checks": checks}
    if failed:
        body["failed"] = failed
    return JsonResponse(body, status=200 if ready else 503)
