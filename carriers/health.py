"""Refused carrier callbacks: logged (never with the secret) and counted per carrier account.

A refusal is every answer but 200 to a callback: 404 (no such secret), 401 (basic auth), 400 (a body
that can never be processed: stored as invalid too), 413 (too large), 503 (we could not look the
account up or store the body; the carrier retries). Most of them store nothing, and the 503s happen
exactly when the database fails, so they are counted in Redis: per account (refusals before an
account is known count under "unknown"), in per-minute fields of one hash per hour, kept a day.
Only refusals pay for this; an accepted callback costs nothing here (its row is its record).
What was accepted and what the apply step could not use are read from the webhook table
(carriers.selectors.webhook_health).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from django.conf import settings

from config.redisconn import redis_client

log = logging.getLogger("carriers.webhooks")

UNKNOWN = "unknown"
_HOUR_KEY_TTL = 26 * 3600
_LAST_TTL = 30 * 86400


def _redis() -> redis.Redis:
    return redis_client(timeout=1)  # short: counting a refusal must not hang on Redis


def _prefix(account_id: int | None) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:webhook-refused:{account_id if account_id is not None else UNKNOWN}"


def webhook_refusal_record(*, account_id: int | None, kind: str, status: int, reason: str) -> None:
    """Log and count one refused callback. Never raises (the answer to the carrier comes first)."""
    log.warning(
        "carrier webhook refused: account=%s kind=%s status=%s reason=%s",
        account_id if account_id is not None else UNKNOWN,
        kind,
        status,
        reason,
    )
    now = time.time()
    minute, hour = int(now // 60), int(now // 3600)
    prefix = _prefix(account_id)
    last = {"at": datetime.fromtimestamp(now, UTC).isoformat(), "status": status, "kind": kind, "reason": reason[:300]}
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.hincrby(f"{prefix}:{hour}", str(minute), 1)
        pipe.expire(f"{prefix}:{hour}", _HOUR_KEY_TTL)
        pipe.set(f"{prefix}:last", json.dumps(last), ex=_LAST_TTL)
        pipe.execute()
    except redis.RedisError:
        log.warning("could not count a refused carrier webhook (Redis unavailable)")


@dataclass(frozen=True)
class Refusals:
    last_hour: int = 0
    last_day: int = 0
    last_at: str | None = None
    last_status: int | None = None
    last_reason: str = ""


def webhook_refusals(account_ids: list[int | None]) -> dict[int | None, Refusals]:
    """Refusal counts over the last 60 minutes and 24 hours and the last refusal, per account, in one
    round trip. Empty counts when Redis is unavailable (health is shown, not enforced)."""
    now = time.time()
    minute, hour = int(now // 60), int(now // 3600)
    hours = range(hour - 24, hour + 1)
    try:
        pipe = _redis().pipeline(transaction=False)
        for account_id in account_ids:
            prefix = _prefix(account_id)
            for h in hours:
                pipe.hgetall(f"{prefix}:{h}")
            pipe.get(f"{prefix}:last")
        replies = pipe.execute()
    except redis.RedisError:
        log.warning("could not read refused-webhook counts (Redis unavailable)")
        return {account_id: Refusals() for account_id in account_ids}
    result: dict[int | None, Refusals] = {}
    step = len(hours) + 1
    for i, account_id in enumerate(account_ids):
        buckets, raw_last = replies[i * step : i * step + len(hours)], replies[i * step + len(hours)]
        last_hour = last_day = 0
        for fields in buckets:
            for field, count in fields.items():
                age = minute - int(field)
                if 0 <= age < 24 * 60:
                    last_day += int(count)
                    if age < 60:
                        last_hour += int(count)
        last = json.loads(raw_last) if raw_last else {}
        result[account_id] = Refusals(
            last_hour=last_hour,
            last_day=last_day,
            last_at=last.get("at"),
            last_status=last.get("status"),
            last_reason=last.get("reason", ""),
        )
    return result
