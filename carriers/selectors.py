"""Reads for the carriers app. The webhook hot path's account lookup lives here, cached per process."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from .models import CarrierAccount

# An account's webhook identity changes rarely (secret rotation, deactivation, basic-auth edit);
# 30 s of staleness is the price of answering ~all webhooks without a query for it.
ACCOUNT_CACHE_TTL = 30.0
_ACCOUNT_CACHE_MAX = 10_000  # bounds memory against a flood of made-up secrets
_cache: dict[str, tuple[float, WebhookAccount | None]] = {}
_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class WebhookAccount:
    id: int
    organization_id: int
    provider: str
    username: str = ""
    password: str = field(default="", repr=False)
    # A deactivated account's callbacks are still accepted and applied (reports of messages in
    # flight when it was switched off must land), and flagged on the stored row.
    is_active: bool = True


def account_for_webhook(secret: str) -> WebhookAccount | None:
    """The carrier account whose webhook secret this is, active or not, or None. Cached per process.
    A database error propagates (the view answers 503, never 404: the carrier would drop the report)."""
    now = time.monotonic()
    hit = _cache.get(secret)
    if hit is not None and hit[0] > now:
        return hit[1]
    row = (
        CarrierAccount.objects.filter(webhook_secret=secret)
        .values_list("id", "organization_id", "provider", "webhook_username", "webhook_password", "is_active")
        .first()
    )
    account = WebhookAccount(*row) if row else None
    with _lock:
        if len(_cache) >= _ACCOUNT_CACHE_MAX:
            _cache.clear()
        _cache[secret] = (now + ACCOUNT_CACHE_TTL, account)
    return account


def account_cache_clear() -> None:
    with _lock:
        _cache.clear()
