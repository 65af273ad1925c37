"""Status backfill: ask the carrier for the real status of stuck messages and correct our records.

Entry points (docs/backfill.md):
- `backfill_run_create(...)` / `backfill_run_start(...)`: a BackfillRun row (start also enqueues "backfill.run").
- `statuses_backfill(run_id=...)`: claims the run and executes it; the command, the task and the
  reconciler all call this one function.
- `messages_reconcile()`: the periodic pass ("backfill.reconcile").
- `messages_check_overdue()`: the overdue-report pass ("backfill.overdue_reports", every minute).

Every result goes through messaging.services.status.messages_apply_statuses, the code path of live
webhooks: statuses only move forward (so a backfill racing a webhook cannot regress anything),
outbox events fire, and blast counters and conversation views follow.
"""

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from config.redisconn import redis_lock, redis_unlock
from config.wakeup import wake_on_commit
from messaging.status import AWAITING_CARRIER, MessageStatus

from . import selectors
from .models import BackfillRun, RunKind, RunState
from .options import CHECKABLE, BackfillOptions
from .runner import Runner

log = logging.getLogger("backfill")

# A RUNNING run whose heartbeat is older than this lost its process: another task may take it over.
STALE_AFTER = timedelta(minutes=5)


def backfill_run_create(
    *,
    organization_id: int,
    line_id: int | None = None,
    options: BackfillOptions,
    kind: str = RunKind.MANUAL,
    created_by_id: int | None = None,
) -> BackfillRun:
    options.validate()
    return BackfillRun.objects.create(
        organization_id=organization_id,
        line_id=line_id,
        kind=kind,
        options=options.to_json(),
        created_by_id=created_by_id,
    )


def backfill_run_start(
    *, organization_id: int, line_id: int | None = None, options: BackfillOptions, created_by_id: int | None = None
) -> BackfillRun:
    """Create a run and hand it to the bulk queue once the row is committed."""
    from .tasks import run_backfill

    with transaction.atomic():
        run = backfill_run_create(
            organization_id=organization_id, line_id=line_id, options=options, created_by_id=created_by_id
        )
        # A lost publish is re-kicked from the row by backfill.rekick (runs_rekick).
        wake_on_commit(run_backfill, [run.id])
    return run


def backfill_run_cancel(*, run_id: int) -> bool:
    """A running backfill notices at its next progress write (within ~2 s) and stops."""
    return bool(
        BackfillRun.objects.filter(pk=run_id, state__in=[RunState.PENDING, RunState.RUNNING]).update(
            state=RunState.CANCELED, finished_at=timezone.now()
        )
    )


def statuses_backfill(
    *, run_id: int, progress: Callable[[int, dict], None] | None = None, time_budget: float | None = None
) -> BackfillRun:
    """Claim the run and execute it. Returns the run, refreshed.

    Returns without doing anything if another process holds the run (fresh heartbeat) or it is
    finished. With a time budget, stops cleanly when it is spent and leaves the run PENDING with its
    cursor, for the next task to resume. progress(n, counts) is called after each applied batch.
    """
    now = timezone.now()
    claimed = (
        BackfillRun.objects.filter(pk=run_id)
        .filter(Q(state=RunState.PENDING) | Q(state=RunState.RUNNING, heartbeat_at__lt=now - STALE_AFTER))
        .update(state=RunState.RUNNING, started_at=Coalesce("started_at", now), heartbeat_at=now)
    )
    run = BackfillRun.objects.select_related("line").get(pk=run_id)
    if not claimed:
        return run
    runner = Runner(run, progress=progress, time_budget=time_budget)
    try:
        finished = runner.execute()
    except KeyboardInterrupt:
        runner.persist(state=RunState.CANCELED, error="interrupted")
        raise
    except Exception as exc:
        log.exception("backfill run %s failed", run_id)
        runner.persist(state=RunState.FAILED, error=f"{type(exc).__name__}: {exc}"[:1000])
    else:
        if runner.canceled:
            pass  # the row already says canceled; keep what it counted
        elif finished:
            runner.persist(state=RunState.SUCCEEDED)
        else:
            runner.persist(state=RunState.PENDING)
    run.refresh_from_db()
    return run


# A pending run not picked up for this long lost its task (a flushed broker, a failed publish).
PENDING_REKICK_AFTER = timedelta(seconds=60)
REKICK_LIMIT = 100


def runs_rekick(*, now: datetime | None = None) -> list[int]:
    """Beat: the ids of runs whose task was lost, to enqueue again (docs/recovery.md).

    Pending runs untouched for PENDING_REKICK_AFTER (the re-kick stamps heartbeat_at, a compare-and-set,
    so each is woken once per period) and running runs whose heartbeat is older than STALE_AFTER (their
    worker died). The task's own claim decides who runs it, so a duplicate wake-up does nothing. Reconcile
    runs are made and run inside the reconcile pass and are left to it."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            """UPDATE backfill_backfillrun SET heartbeat_at = %s
               WHERE id IN (
                   SELECT id FROM backfill_backfillrun
                   WHERE state = %s AND kind <> %s AND COALESCE(heartbeat_at, created_at) < %s
                   ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)
               RETURNING id""",
            [now, RunState.PENDING, RunKind.RECONCILE, now - PENDING_REKICK_AFTER, REKICK_LIMIT],
        )
        ids = [r[0] for r in cursor.fetchall()]
    ids += list(
        BackfillRun.objects.filter(state=RunState.RUNNING, heartbeat_at__lt=now - STALE_AFTER)
        .exclude(kind=RunKind.RECONCILE)
        .order_by("id")
        .values_list("id", flat=True)[:REKICK_LIMIT]
    )
    return sorted(ids)


# -- the periodic reconciler ---------------------------------------------------------------------------

# One reconciler (and one overdue pass) at a time across workers: a Redis lock, not a PostgreSQL
# session advisory lock, which PgBouncer's transaction pooling would strand on a pooled server connection
# (docs/scaling.md). It expires a margin past the pass's time budget if the worker dies holding it.
_RECONCILE_LOCK = "backfill:reconcile"
_LOCK_MARGIN_S = 300.0


def carrier_retention(provider: str) -> timedelta:
    days = settings.BACKFILL_CARRIER_RETENTION_DAYS
    return timedelta(days=days.get(provider, days.get("default", 14)))


def messages_reconcile(*, now: datetime | None = None, time_budget: float | None = None) -> list[int]:
    """One pass: for each line with messages non-final past BACKFILL_RECONCILE_AFTER, a small paced
    run (BACKFILL_RECONCILE_BATCH messages) that also marks what the carrier no longer knows, past its
    retention window, as unknown. Returns the ids of the runs made."""
    now = now or timezone.now()
    deadline = time.monotonic() + (time_budget or settings.BACKFILL_TASK_TIME_BUDGET)
    lock = redis_lock(_RECONCILE_LOCK, ttl=(time_budget or settings.BACKFILL_TASK_TIME_BUDGET) + _LOCK_MARGIN_S)
    if not lock.acquire(blocking=False):
        log.info("backfill reconcile: another pass is running")
        return []
    try:
        # Reconcile runs are a log of passes, not a record anyone asked for: keep a month of them.
        BackfillRun.objects.filter(
            kind=RunKind.RECONCILE, created_at__lt=now - timedelta(days=settings.BACKFILL_RECONCILE_RUNS_KEEP_DAYS)
        ).delete()
        cutoff = now - settings.BACKFILL_RECONCILE_AFTER
        batch = settings.BACKFILL_RECONCILE_BATCH
        run_ids = []
        line_ids = selectors.lines_due_for_reconcile(
            statuses=sorted(AWAITING_CARRIER), handed_before=cutoff, limit=settings.BACKFILL_RECONCILE_LINES
        )
        for line_id in line_ids:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            line = selectors.lines_for_line_id(line_id=line_id)
            account = line.carrier_account
            if account is None:  # the selector only picks lines with one; it was detached meanwhile
                continue
            previous = selectors.last_reconcile_run(line_id=line_id)
            start_after = 0
            if previous is not None and previous.processed >= batch and previous.cursor.get("line_id") == line_id:
                start_after = int(previous.cursor.get("after_id") or 0)  # it stopped at its limit: go on
            options = BackfillOptions(
                handed_before=cutoff,
                limit=batch,
                mark_unknown_after=carrier_retention(account.provider),
                start_after_id=start_after,
            )
            run = backfill_run_create(
                organization_id=line.organization_id, line_id=line_id, options=options, kind=RunKind.RECONCILE
            )
            run_ids.append(run.id)
            run = statuses_backfill(run_id=run.id, time_budget=remaining)
            if run.state == RunState.PENDING:  # the pass's time is up; the next pass starts afresh
                BackfillRun.objects.filter(pk=run.id, state=RunState.PENDING).update(
                    state=RunState.CANCELED,
                    error="time budget of the reconcile pass spent",
                    finished_at=timezone.now(),
                )
        return run_ids
    finally:
        redis_unlock(lock)


# -- overdue delivery reports ----------------------------------------------------------------------------

_OVERDUE_LOCK = "backfill:overdue"


def _overdue_window(*, line_id: int, cutoff: datetime, not_before: datetime) -> tuple[datetime, datetime, int]:
    """(handed_after, handed_before, start_after_id) of the line's next overdue run: the previous run's
    window again from its cursor if it did not get through it (its limit, time budget, a crash), else
    from where the previous window ended up to now minus the account's report delay."""
    previous = selectors.last_run(line_id=line_id, kind=RunKind.OVERDUE)
    if previous is None:
        return not_before, cutoff, 0
    options = BackfillOptions.from_json(previous.options)
    stopped_short = previous.state != RunState.SUCCEEDED or (
        options.limit is not None and previous.processed >= options.limit
    )
    if stopped_short and options.handed_after and options.handed_before:
        after_id = int((previous.cursor or {}).get("after_id") or options.start_after_id)
        return max(options.handed_after, not_before), options.handed_before, after_id
    return max(options.handed_before or not_before, not_before), cutoff, 0


def messages_check_overdue(*, now: datetime | None = None, time_budget: float | None = None) -> list[int]:
    """One pass: ask the carrier about sent messages whose delivery report is overdue by their carrier
    account's `report_delay_seconds` (a report lost with the carrier's process, a callback we never got),
    through the backfill runner — paced at the account's backfill_rate, results applied by the webhook
    code path, statuses only forward. Each message is asked about once here, when it becomes overdue;
    one still unresolved is the hourly reconciler's after BACKFILL_RECONCILE_AFTER. Returns the run ids."""
    now = now or timezone.now()
    deadline = time.monotonic() + (time_budget or settings.BACKFILL_TASK_TIME_BUDGET)
    lock = redis_lock(_OVERDUE_LOCK, ttl=(time_budget or settings.BACKFILL_TASK_TIME_BUDGET) + _LOCK_MARGIN_S)
    if not lock.acquire(blocking=False):
        log.info("overdue reports: another pass is running")
        return []
    try:
        BackfillRun.objects.filter(
            kind=RunKind.OVERDUE, created_at__lt=now - timedelta(days=settings.BACKFILL_OVERDUE_RUNS_KEEP_DAYS)
        ).delete()
        statuses = (MessageStatus.SENT,)  # accepted by the carrier: a report is owed ('sending' is the send step's)
        not_before = now - settings.BACKFILL_RECONCILE_AFTER  # older ones are the reconciler's
        run_ids = []
        for line_id, cutoff in selectors.lines_with_overdue_reports(
            statuses=list(statuses), now=now, not_before=not_before, limit=settings.BACKFILL_OVERDUE_LINES
        ):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            handed_after, handed_before, start_after = _overdue_window(
                line_id=line_id, cutoff=cutoff, not_before=not_before
            )
            pending = selectors.stuck_messages_qs(
                line_ids=[line_id], statuses=list(statuses), handed_before=handed_before, handed_after=handed_after
            ).filter(id__gt=start_after)
            if handed_after >= handed_before or not pending.exists():
                continue  # asked about already, and still unresolved: the reconciler's later
            line = selectors.lines_for_line_id(line_id=line_id)
            options = BackfillOptions(
                statuses=statuses,
                handed_after=handed_after,
                handed_before=handed_before,
                limit=settings.BACKFILL_OVERDUE_BATCH,
                start_after_id=start_after,
            )
            run = backfill_run_create(
                organization_id=line.organization_id, line_id=line_id, options=options, kind=RunKind.OVERDUE
            )
            run_ids.append(run.id)
            run = statuses_backfill(run_id=run.id, time_budget=remaining)
            if run.state == RunState.PENDING:  # time is up; the next pass resumes this window from its cursor
                BackfillRun.objects.filter(pk=run.id, state=RunState.PENDING).update(
                    state=RunState.CANCELED, error="time budget of the overdue pass spent", finished_at=timezone.now()
                )
        return run_ids
    finally:
        redis_unlock(lock)


__all__ = [
    "CHECKABLE",
    "BackfillOptions",
    "backfill_run_cancel",
    "backfill_run_create",
    "backfill_run_start",
    "carrier_retention",
    "messages_check_overdue",
    "messages_reconcile",
    "statuses_backfill",
]
