"""Status backfill: ask the carrier for the real status of stuck messages and correct our records.

Entry points (docs/backfill.md):
- `backfill_run_create(...)` / `backfill_run_start(...)`: a BackfillRun row (start also enqueues "backfill.run").
- `statuses_backfill(run_id=...)`: claims the run and executes it; the command, the task and the
  reconciler all call this one function.
- `messages_reconcile()`: the periodic pass ("backfill.reconcile").

Every result goes through messaging.services.status.messages_apply_statuses, the code path of live
webhooks: statuses only move forward (so a backfill racing a webhook cannot regress anything),
outbox events fire, and blast counters and conversation views follow.
"""

from __future__ import annotations

import logging
import math
import queue
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from carriers.registry import adapter_for
from messaging.services.status import StatusUpdate, messages_apply_statuses
from messaging.status import AWAITING_CARRIER, MessageStatus, can_transition

from . import selectors
from .checks import CarrierCaller, Outcome, StuckMessage
from .models import BackfillRun, RunKind, RunState, empty_counts
from .pacing import TokenBucket

log = logging.getLogger("backfill")

# Messages read per keyset query and the most results applied in one statement. 500 keeps one
# UPDATE ... FROM unnest() at a few ms (perf-notes: ~64k rows/s) and a flush per ~2.5 s at 200 req/s.
CHUNK = 500
APPLY_BATCH = 500
# A partial batch is applied (and progress written) at least this often, so a slow carrier still
# shows progress and a heartbeat.
FLUSH_SECONDS = 2.0
# Threads needed = rate x carrier latency. Sinch answers reads in ~50-250 ms; 0.25 s covers that,
# and 16 is the adapter's HTTP connection pool size (more threads would only queue on it).
ASSUMED_LATENCY = 0.25
MAX_WORKERS = 16
# A RUNNING run whose heartbeat is older than this lost its process: another task may take it over.
STALE_AFTER = timedelta(minutes=5)
# Statuses a backfill may look at: those a carrier report can still move.
CHECKABLE = frozenset({MessageStatus.SENDING, MessageStatus.SENT, MessageStatus.UNKNOWN})
ERROR_SAMPLES = 20


@dataclass(frozen=True)
class BackfillOptions:
    since: datetime | None = None
    until: datetime | None = None
    statuses: tuple[str, ...] = tuple(sorted(AWAITING_CARRIER))
    limit: int | None = None
    dry_run: bool = False
    rate: float | None = None  # None: the carrier account's backfill_rate
    # Not found at the carrier and older than this → "unknown" (the carrier's retention has passed).
    mark_unknown_after: timedelta | None = None
    start_after_id: int = 0  # the reconciler resumes a line where its previous pass stopped
    handed_before: datetime | None = None  # the reconciler: last handed to the carrier before this

    def validate(self) -> BackfillOptions:
        errors: dict[str, list[str]] = {}
        bad = sorted(set(self.statuses) - CHECKABLE)
        if not self.statuses or bad:
            errors["status"] = [
                f"{', '.join(bad) or 'empty'}: not a status the carrier can still change "
                f"(use {', '.join(sorted(CHECKABLE))})."
            ]
        if self.limit is not None and self.limit < 1:
            errors["limit"] = ["Must be at least 1."]
        if self.rate is not None and not (0 < self.rate <= 1000):
            errors["rate"] = ["Must be between 0 and 1000 requests per second."]
        if self.since and self.until and self.since >= self.until:
            errors["until"] = ["Must be after since."]
        if errors:
            raise ValidationError(errors)
        return self

    def to_json(self) -> dict:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "statuses": list(self.statuses),
            "limit": self.limit,
            "dry_run": self.dry_run,
            "rate": self.rate,
            "mark_unknown_after": self.mark_unknown_after.total_seconds() if self.mark_unknown_after else None,
            "start_after_id": self.start_after_id,
            "handed_before": self.handed_before.isoformat() if self.handed_before else None,
        }

    @classmethod
    def from_json(cls, data: dict) -> BackfillOptions:
        def dt(value):
            return parse_datetime(value) if value else None

        return cls(
            since=dt(data.get("since")),
            until=dt(data.get("until")),
            statuses=tuple(data.get("statuses") or sorted(AWAITING_CARRIER)),
            limit=data.get("limit"),
            dry_run=bool(data.get("dry_run")),
            rate=data.get("rate"),
            mark_unknown_after=(
                timedelta(seconds=data["mark_unknown_after"]) if data.get("mark_unknown_after") else None
            ),
            start_after_id=int(data.get("start_after_id") or 0),
            handed_before=dt(data.get("handed_before")),
        )


def backfill_run_create(
    *, organization_id: int, line_id: int | None = None, options: BackfillOptions,
    kind: str = RunKind.MANUAL, created_by_id: int | None = None,
) -> BackfillRun:
    options.validate()
    return BackfillRun.objects.create(
        organization_id=organization_id, line_id=line_id, kind=kind, options=options.to_json(),
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
        transaction.on_commit(lambda: run_backfill.delay(run.id))
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
    runner = _Runner(run, progress=progress, time_budget=time_budget)
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


@dataclass
class _Tally:
    counts: dict = field(default_factory=empty_counts)
    error_samples: list = field(default_factory=list)


class _Runner:
    def __init__(self, run: BackfillRun, *, progress, time_budget: float | None):
        self.run = run
        self.options = BackfillOptions.from_json(run.options)
        self.progress = progress
        self.deadline = time.monotonic() + time_budget if time_budget else None
        self.tally = _Tally(counts={**empty_counts(), **(run.counts or {})}, error_samples=list(run.error_samples))
        self.processed = run.processed
        self.cursor = dict(run.cursor or {})
        self.remaining = None if self.options.limit is None else max(0, self.options.limit - run.processed)
        self.stopping = self.canceled = False
        self.carrier_calls = 0
        self.throttle_pauses = 0

    # -- orchestration ------------------------------------------------------------------------------

    def execute(self) -> bool:
        """True when every line is done; False when stopped (time budget, cancel)."""
        lines = selectors.lines_for_run(run=self.run)
        if self.run.total is None:
            self.run.total = selectors.stuck_messages_qs(
                line_ids=[line.id for line in lines], statuses=list(self.options.statuses),
                since=self.options.since, until=self.options.until, handed_before=self.options.handed_before,
            ).filter(id__gt=self.options.start_after_id).count()
            if self.options.limit is not None:
                self.run.total = min(self.run.total, self.options.limit)
            BackfillRun.objects.filter(pk=self.run.pk).update(total=self.run.total)
        for line in lines:
            if self.cursor.get("line_id") and line.id < self.cursor["line_id"]:
                continue  # finished in an earlier slice
            if self.cursor.get("line_id") == line.id:
                after_id = self.cursor.get("after_id", 0)
            else:
                after_id = self.options.start_after_id
                self.cursor = {"line_id": line.id, "after_id": after_id}
            if line.carrier_account is None:
                continue
            self._line(line, after_id)
            if self.stopping:
                return False
            if self.remaining == 0:
                break
        return True

    def _line(self, line, after_id: int) -> None:
        account = line.carrier_account
        rate = self.options.rate or account.backfill_rate
        bucket = TokenBucket(rate)
        caller = CarrierCaller(adapter_for(account), bucket)
        workers = max(1, min(MAX_WORKERS, math.ceil(rate * ASSUMED_LATENCY)))
        results: queue.SimpleQueue[Outcome] = queue.SimpleQueue()

        def work(message: StuckMessage) -> None:
            try:
                outcome = caller.check(message)
            except Exception as exc:  # a bug or an unexpected answer: count it, keep the run going
                outcome = Outcome(message, error=f"{type(exc).__name__}: {exc}"[:300])
            results.put(outcome)

        futures: dict[int, object] = {}
        submitted: deque[int] = deque()  # ids in keyset order, for the resume watermark
        done: set[int] = set()
        buffer: list[Outcome] = []
        read_after, exhausted = after_id, False
        last_flush = time.monotonic()

        def watermark() -> int:
            while submitted and submitted[0] in done:
                done.discard(submitted.popleft())
            return submitted[0] - 1 if submitted else read_after

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backfill") as pool:
            try:
                while True:
                    # Keep up to two chunks queued so the pool never idles on a keyset read.
                    if not self.stopping and not exhausted and len(futures) < CHUNK:
                        n = CHUNK if self.remaining is None else min(CHUNK, self.remaining)
                        chunk = selectors.stuck_messages_after(
                            line_id=line.id, statuses=list(self.options.statuses), after_id=read_after, limit=n,
                            since=self.options.since, until=self.options.until,
                            handed_before=self.options.handed_before,
                        ) if n else []
                        exhausted = len(chunk) < n or n == 0
                        for message in chunk:
                            futures[message.id] = pool.submit(work, message)
                            submitted.append(message.id)
                        if chunk:
                            read_after = chunk[-1].id
                            if self.remaining is not None:
                                self.remaining -= len(chunk)
                    if not futures:
                        break
                    try:
                        outcome = results.get(timeout=FLUSH_SECONDS)
                        while True:
                            buffer.append(outcome)
                            futures.pop(outcome.message.id, None)
                            done.add(outcome.message.id)
                            outcome = results.get_nowait()
                    except queue.Empty:
                        pass
                    if self.deadline and time.monotonic() > self.deadline:
                        self._stop(futures)
                    if len(buffer) >= APPLY_BATCH or time.monotonic() - last_flush >= FLUSH_SECONDS:
                        self._flush(buffer, line_id=line.id, after_id=watermark())
                        buffer, last_flush = [], time.monotonic()
                        if self.canceled:
                            self._stop(futures)
            except BaseException:
                self._stop(futures)
                raise
            finally:
                self.throttle_pauses += bucket.pauses
                # Results already in hand are applied even when interrupted: the carrier told us.
                while True:
                    try:
                        outcome = results.get_nowait()
                    except queue.Empty:
                        break
                    buffer.append(outcome)
                    done.add(outcome.message.id)
                if buffer:
                    self._flush(buffer, line_id=line.id, after_id=watermark())

    def _stop(self, futures: dict) -> None:
        self.stopping = True
        for message_id, future in list(futures.items()):
            if future.cancel():  # not started: it stays below the watermark and is redone on resume
                del futures[message_id]

    # -- applying -----------------------------------------------------------------------------------

    def _flush(self, outcomes: list[Outcome], *, line_id: int, after_id: int) -> None:
        counts = self.tally.counts
        updated = Counter(counts["updated"])
        now = timezone.now()
        updates: list[StatusUpdate] = []
        to_unknown: set[int] = set()
        current: dict[int, str] = {}
        for outcome in outcomes:
            message = outcome.message
            self.carrier_calls += outcome.calls
            counts["checked"] += 1
            current[message.id] = message.status
            if outcome.error:
                counts["errors"] += 1
                if len(self.tally.error_samples) < ERROR_SAMPLES:
                    self.tally.error_samples.append({"message_id": message.id, "error": outcome.error})
            elif outcome.report is None:
                limit = self.options.mark_unknown_after
                if limit is not None and now - message.handed_at >= limit:
                    to_unknown.add(message.id)
                    updates.append(StatusUpdate(
                        message_id=message.id, status=MessageStatus.UNKNOWN, at=now,
                        error_reason=f"The carrier has no record of this message after its "
                                     f"{_human(limit)} retention window.",
                    ))
                else:
                    counts["not_found"] += 1
            else:
                report = outcome.report
                failed = report.status in (MessageStatus.FAILED, MessageStatus.UNDELIVERED)
                updates.append(StatusUpdate(
                    message_id=message.id, status=report.status, at=report.at or now,
                    carrier_status=report.carrier_status[:32], error_code=report.code[:32] if failed else "",
                    error_reason=f"Carrier status {report.carrier_status}" if failed and report.carrier_status else "",
                    carrier_batch_id=report.batch_id,
                ))
        if not updates:
            changed: dict[int, str] = {}
        elif self.options.dry_run:
            # What the guarded UPDATE would do given the statuses we read.
            changed = {u.message_id: u.status for u in updates if can_transition(current[u.message_id], u.status)}
        else:
            changed = messages_apply_statuses(updates=updates)
        for u in updates:
            if u.message_id in changed:
                updated[changed[u.message_id]] += 1
            elif u.message_id in to_unknown:
                counts["not_found"] += 1
            else:
                counts["unchanged"] += 1
        counts["updated"] = dict(sorted(updated.items()))
        self.processed += len(outcomes)
        self.cursor = {"line_id": line_id, "after_id": after_id}
        # One statement: progress, counts and heartbeat; no row back means someone canceled the run.
        still_running = BackfillRun.objects.filter(pk=self.run.pk, state=RunState.RUNNING).update(
            counts=counts, processed=self.processed, cursor=self.cursor,
            error_samples=self.tally.error_samples, heartbeat_at=now,
        )
        if not still_running:
            self.canceled = True
        if self.progress:
            self.progress(len(outcomes), counts)

    def persist(self, *, state: str, error: str = "") -> None:
        finished = timezone.now() if state != RunState.PENDING else None
        BackfillRun.objects.filter(pk=self.run.pk).update(
            state=state, counts=self.tally.counts, processed=self.processed, cursor=self.cursor,
            error_samples=self.tally.error_samples, error=error, finished_at=finished,
            heartbeat_at=timezone.now(),
        )


def _human(delta: timedelta) -> str:
    if delta.total_seconds() % 86400 == 0:
        return f"{int(delta.total_seconds() // 86400)}-day"
    return f"{int(delta.total_seconds() // 3600)}-hour"


# -- the periodic reconciler ---------------------------------------------------------------------------

# pg_try_advisory_lock key: one reconciler at a time across workers (released with the session).
_RECONCILE_LOCK = 0x0BACF111


def carrier_retention(provider: str) -> timedelta:
    days = settings.BACKFILL_CARRIER_RETENTION_DAYS
    return timedelta(days=days.get(provider, days.get("default", 14)))


def messages_reconcile(*, now: datetime | None = None, time_budget: float | None = None) -> list[int]:
    """One pass: for each line with messages non-final past BACKFILL_RECONCILE_AFTER, a small paced
    run (BACKFILL_RECONCILE_BATCH messages) that also marks what the carrier no longer knows, past its
    retention window, as unknown. Returns the ids of the runs made."""
    now = now or timezone.now()
    deadline = time.monotonic() + (time_budget or settings.BACKFILL_TASK_TIME_BUDGET)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_RECONCILE_LOCK])
        if not cursor.fetchone()[0]:
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
            previous = selectors.last_reconcile_run(line_id=line_id)
            start_after = 0
            if previous is not None and previous.processed >= batch and previous.cursor.get("line_id") == line_id:
                start_after = int(previous.cursor.get("after_id") or 0)  # it stopped at its limit: go on
            options = BackfillOptions(
                handed_before=cutoff, limit=batch,
                mark_unknown_after=carrier_retention(line.carrier_account.provider),
                start_after_id=start_after,
            )
            run = backfill_run_create(
                organization_id=line.organization_id, line_id=line_id, options=options, kind=RunKind.RECONCILE
            )
            run_ids.append(run.id)
            run = statuses_backfill(run_id=run.id, time_budget=remaining)
            if run.state == RunState.PENDING:  # the pass's time is up; the next pass starts afresh
                BackfillRun.objects.filter(pk=run.id, state=RunState.PENDING).update(
                    state=RunState.CANCELED, error="time budget of the reconcile pass spent",
                    finished_at=timezone.now(),
                )
        return run_ids
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_RECONCILE_LOCK])


__all__ = [
    "BackfillOptions", "backfill_run_cancel", "backfill_run_create", "backfill_run_start", "carrier_retention",
    "messages_reconcile", "statuses_backfill",
]
