"""Thin Celery entry points of the carriers app. See docs/carriers.md."""

from __future__ import annotations

from celery import shared_task

from . import services


# Routed to the "webhooks" queue by name (config/queues.py: "carriers.*").
@shared_task(name="carriers.apply_webhooks", acks_late=True, ignore_result=True)
def apply_webhooks() -> dict:
    """Apply stored carrier webhooks in batches. Safe to run twice or concurrently (SKIP LOCKED claims).

    Enqueued by the webhook view through a Redis SET NX debounce, and every 15 s by beat as a sweep
    (retries of early reports, anything a lost enqueue left behind).
    """
    result = services.webhook_process(gather=services.APPLY_GATHER_SECONDS)
    return {"claimed": result.claimed, "applied": result.statuses_applied, "retried": result.retried}
