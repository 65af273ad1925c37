"""Thin Celery entry points of post-processing. See docs/postprocessing.md."""

from __future__ import annotations

from celery import shared_task

from .services import drain_kick_now, events_drain, events_prune


@shared_task(name="postprocessing.drain", acks_late=True, ignore_result=True)
def drain() -> int:
    """Drain the outbox (retries first) until empty or the time budget is spent. Safe to run many at
    once (SKIP LOCKED) and twice (events are claimed and marked done in one transaction)."""
    result = events_drain()
    if result.more:
        drain_kick_now()  # backlog left: continue on a fresh task rather than wait for the next tick
    return result.events


@shared_task(name="postprocessing.prune", ignore_result=True)
def prune() -> int:
    return events_prune()
