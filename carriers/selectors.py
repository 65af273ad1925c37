"""Reads for the carriers app. The webhook hot path's account lookup lives here, cached per process."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from .health import webhook_refusals
from .models import CarrierAccount, WebhookEvent, WebhookState

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


@dataclass(frozen=True)
class WebhookHealth:
    """One carrier account's webhooks over the last hour and day: accepted (stored and answered 200),
    refused (answered anything else: carriers/health.py), unprocessable (accepted, then failed or found
    invalid by the apply step), and accepted while the account was deactivated."""

    account_id: int
    last_accepted_at: datetime | None
    accepted_last_hour: int
    accepted_last_day: int
    inactive_accepted_last_day: int
    refused_last_hour: int
    refused_last_day: int
    last_refused_at: str | None
    last_refused_status: int | None
    last_refused_reason: str
    unprocessable_last_hour: int
    unprocessable_last_day: int
    last_unprocessable_at: datetime | None
    last_unprocessable_reason: str


def webhook_health(*, account_ids: list[int]) -> dict[int, WebhookHealth]:
    """Health of these accounts' webhooks: four queries whatever the number of accounts (two on the
    (account, received_at) index, two on the small partial index of unprocessable rows) and one Redis
    round trip. Read by the admin and the API, never on the hot path; the day's accepted count reads
    the day's rows of the account, the one part whose cost grows with traffic."""
    if not account_ids:
        return {}
    now = timezone.now()
    hour, day = now - timedelta(hours=1), now - timedelta(days=1)
    # Stored as invalid by the view itself (processed_at empty) is a refusal (a 400), not an acceptance.
    refused_at_the_door = Q(state=WebhookState.INVALID, processed_at__isnull=True)
    unprocessable = Q(state__in=[WebhookState.FAILED, WebhookState.INVALID], processed_at__isnull=False)
    recent = WebhookEvent.objects.filter(account_id__in=account_ids, received_at__gte=day)
    counts: dict[int, dict[str, Any]] = {
        row["account_id"]: dict(row)
        for row in recent.exclude(refused_at_the_door)
        .values("account_id")
        .annotate(
            accepted_hour=Count("id", filter=Q(received_at__gte=hour)),
            accepted_day=Count("id"),
            inactive_day=Count("id", filter=Q(account_inactive=True)),
        )
    }
    # Unprocessable rows are few: counted and the latest found on their own partial index.
    bad = WebhookEvent.objects.filter(unprocessable, account_id__in=account_ids)
    bad_counts: dict[int, dict[str, Any]] = {
        row["account_id"]: dict(row)
        for row in bad.filter(processed_at__gte=day)
        .values("account_id")
        .annotate(bad_hour=Count("id", filter=Q(processed_at__gte=hour)), bad_day=Count("id"))
    }
    last_bad = {
        account_id: (at, error)
        for account_id, at, error in bad.order_by("account_id", "-processed_at")
        .distinct("account_id")
        .values_list("account_id", "processed_at", "error")
    }
    # The latest accepted per account, however old: DISTINCT ON down the (account, received_at) index.
    accepted = dict(
        WebhookEvent.objects.filter(account_id__in=account_ids)
        .exclude(refused_at_the_door)
        .order_by("account_id", "-received_at")
        .distinct("account_id")
        .values_list("account_id", "received_at")
    )
    refusals = webhook_refusals(list(account_ids))
    health = {}
    for account_id in account_ids:
        row: dict[str, Any] = {**counts.get(account_id, {}), **bad_counts.get(account_id, {})}
        refused = refusals[account_id]
        bad_at, bad_reason = last_bad.get(account_id, (None, ""))
        health[account_id] = WebhookHealth(
            account_id=account_id,
            last_accepted_at=accepted.get(account_id),
            accepted_last_hour=row.get("accepted_hour", 0),
            accepted_last_day=row.get("accepted_day", 0),
            inactive_accepted_last_day=row.get("inactive_day", 0),
            refused_last_hour=refused.last_hour,
            refused_last_day=refused.last_day,
            last_refused_at=refused.last_at,
            last_refused_status=refused.last_status,
            last_refused_reason=refused.last_reason,
            unprocessable_last_hour=row.get("bad_hour", 0),
            unprocessable_last_day=row.get("bad_day", 0),
            last_unprocessable_at=bad_at,
            last_unprocessable_reason=bad_reason,
        )
    return health


def carrier_accounts_for(*, organization) -> QuerySet[CarrierAccount]:
    return CarrierAccount.objects.filter(organization=organization).order_by("id")
