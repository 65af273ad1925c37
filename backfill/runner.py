"""The engine of one backfill run: keyset reads and batched applies in the calling thread, carrier
calls in a paced thread pool (docs/backfill.md). Used only through services.statuses_backfill."""

from __future__ import annotations

import math
import queue
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from carriers.registry import adapter_for
from messaging.services.status import StatusUpdate, messages_apply_statuses
from messaging.status import MessageStatus, can_transition

from . import selectors
from .checks import CarrierCaller, Outcome, StuckMessage
from .models import BackfillRun, RunState, empty_counts
from .options import BackfillOptions
from .pacing import TokenBucket

# Messages read per keyset query and the most results applied in one statement. 500 keeps one
# UPDATE ... FROM unnest() at a few ms (docs/performance.md: ~64k rows/s) and a flush per ~2.5 s at 200 req/s.
CHUNK = 500
APPLY_BATCH = 500
# A partial batch is applied (and progress written) at least this often, so a slow carrier still
# shows progress and a heartbeat.
FLUSH_SECONDS = 2.0
# Threads needed = rate x carrier latency. Sinch answers reads in ~50-250 ms; 0.25 s covers that,
# and 16 is the adapter's HTTP connection pool size (more threads would only queue on it).
ASSUMED_LATENCY = 0.25
MAX_WORKERS = 16
ERROR_SAMPLES = 20


@dataclass
class _Tally:
    counts: dict = field(default_factory=empty_counts)
    error_samples: list = field(default_factory=list)


class Runner:
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
            self.run.total = (
                selectors.stuck_messages_qs(
                    line_ids=[line.id for line in lines],
                    statuses=list(self.options.statuses),
                    since=self.options.since,
                    until=self.options.until,
                    handed_before=self.options.handed_before,
                    handed_after=self.options.handed_after,
                )
                .filter(id__gt=self.options.start_after_id)
                .count()
            )
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
                        chunk = (
                            selectors.stuck_messages_after(
                                line_id=line.id,
                                statuses=list(self.options.statuses),
                                after_id=read_after,
                                limit=n,
                                since=self.options.since,
                                until=self.options.until,
                                handed_before=self.options.handed_before,
                                handed_after=self.options.handed_after,
                            )
                            if n
                            else []
                        )
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
                    updates.append(
                        StatusUpdate(
                            message_id=message.id,
                            status=MessageStatus.UNKNOWN,
                            at=now,
                            error_reason=f"The carrier has no record of this message after its "
                            f"{_human(limit)} retention window.",
                        )
                    )
                else:
                    counts["not_found"] += 1
            else:
                report = outcome.report
                failed = report.status in (MessageStatus.FAILED, MessageStatus.UNDELIVERED)
                updates.append(
                    StatusUpdate(
                        message_id=message.id,
                        status=report.status,
                        at=report.at or now,
                        carrier_status=report.carrier_status[:32],
                        error_code=report.code[:32] if failed else "",
                        error_reason=f"Carrier status {report.carrier_status}"
                        if failed and report.carrier_status
                        else "",
                        carrier_batch_id=report.batch_id,
                    )
                )
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
            counts=counts,
            processed=self.processed,
            cursor=self.cursor,
            error_samples=self.tally.error_samples,
            heartbeat_at=now,
        )
        if not still_running:
            self.canceled = True
        if self.progress:
            self.progress(len(outcomes), counts)

    def persist(self, *, state: str, error: str = "") -> None:
        finished = timezone.now() if state != RunState.PENDING else None
        BackfillRun.objects.filter(pk=self.run.pk).update(
            state=state,
            counts=self.tally.counts,
            processed=self.processed,
            cursor=self.cursor,
            error_samples=self.tally.error_samples,
            error=error,
            finished_at=finished,
            heartbeat_at=timezone.now(),
        )


def _human(delta: timedelta) -> str:
    if delta.total_seconds() % 86400 == 0:
        return f"{int(delta.total_seconds() // 86400)}-day"
    return f"{int(delta.total_seconds() // 3600)}-hour"
