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


def account_for_webhook(secret: str) -> WebhookAccount | None:
    """The active carrier account whose webhook secret this is, or None. Cached per process."""
    now = time.monotonic()
    hit = _cache.get(secret)
    if hit is not None and hit[0] > now:
        return hit[1]
    row = (
        CarrierAccount.objects.filter(webhook_secret=secret, is_active=True)
        .values_list("id", "organization_id", "provider", "webhook_username", "webhook_password")
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
