"""Thin Celery entry points of the status backfill (queue "bulk" by the "backfill." route)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from .models import BackfillRun, RunState


@shared_task(name="backfill.run", bind=True, acks_late=True, ignore_result=True)
def run_backfill(self, run_id: int) -> None:
    """Runs one time slice of a backfill; re-enqueues itself until the run is finished. A redelivery
    (dead worker) finds the run claimed and returns until its heartbeat is stale (docs/recovery.md)."""
    from .services import statuses_backfill

    if not BackfillRun.objects.filter(pk=run_id).exists():
        return
    run = statuses_backfill(run_id=run_id, time_budget=settings.BACKFILL_TASK_TIME_BUDGET)
    if run.state == RunState.PENDING:
        run_backfill.delay(run_id)  # if this publish is lost, backfill.rekick wakes the run again


@shared_task(name="backfill.reconcile", bind=True, acks_late=True, ignore_result=True)
def reconcile(self) -> None:
    from .services import messages_reconcile

    messages_reconcile()


@shared_task(name="backfill.overdue_reports", bind=True, acks_late=True, ignore_result=True)
def overdue_reports(self) -> None:
    """Beat, every minute: ask the carrier about sent messages whose delivery report is overdue."""
    from .services import messages_check_overdue

    messages_check_overdue()


@shared_task(name="backfill.rekick", ignore_result=True)
def rekick() -> int:
    """Beat: runs whose task was lost or whose worker died get a task again (docs/recovery.md)."""
    from config.wakeup import wake

    from .services import runs_rekick

    ids = runs_rekick()
    for run_id in ids:
        wake(run_backfill, [run_id])
    return len(ids)
