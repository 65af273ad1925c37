"""Thin Celery entry points of the carriers app (the apply task is messaging's: messaging/tasks.py)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from .services import webhook_events_prune


@shared_task(name="carriers.prune_webhooks", ignore_result=True)
def prune_webhooks() -> int:
    """Delete processed webhook events past the retention, in bounded batches. Safe to run twice: a
    second run finds the rows gone (or waits on the first one's 5,000-row lock, then finds them gone)."""
    return webhook_events_prune(older_than_days=settings.WEBHOOK_EVENT_RETENTION_DAYS).deleted
