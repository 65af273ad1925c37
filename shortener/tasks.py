"""Thin Celery entry points of the shortener."""

from __future__ import annotations

from celery import shared_task

from .clicks import clicks_flush


# Beat runs it every second (config/beat.py); expires keeps a backlog of stale runs from piling up when
# no worker is consuming, and the Redis lock inside makes overlapping runs return at once.
@shared_task(name="shortener.flush_clicks", ignore_result=True, expires=10)
def flush_clicks() -> int:
    return clicks_flush()
