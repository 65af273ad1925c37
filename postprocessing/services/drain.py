"""The outbox drain: claim, dispatch to processors, mark done. See docs/postprocessing.md.

Concurrency: any number of drains may run at once. A batch is claimed with
`SELECT ... ORDER BY id LIMIT n FOR UPDATE SKIP LOCKED`, so two drains never hold the same event,
and processors run inside the claiming transaction: their writes and the `done` mark commit together
(an event is applied once, or not at all if the worker dies). Each processor runs in a savepoint, so
one failing processor rolls back only its own work; its events get an EventProcessing row (retry
with backoff, dead letter after MAX_ATTEMPTS) while the other processors' work commits.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from config.sql import sql_literals

from ..events import EventType
from ..models import EventState, ProcessingState
from ..registry import EventRow, Processor, after_batch_hooks, all_processors, processor_named, processors_for

log = logging.getLogger(__name__)

# Events per claimed batch (measurements: docs/performance.md, "Drain batch size"). Below 1000 the fixed cost
# per batch (claim, savepoints, the blast recount) dominates; 2000 was faster by median but inside the machine's
# noise, and a bigger batch holds its conversation row locks longer and sends more events to retry when a
# processor fails. 1000 already drains ~3x the 5k/s target, so it stays.
BATCH_SIZE = 1000
# The after-batch hooks (the blast recount, which re-reads every message of each marked blast) run after the
# last batch of a drain task and, between its batches, at most once per this many seconds, not after every
# batch: bench_send's 20k blast was recounted 43–50 times (once per batch, ~1M message rows read in all, the
# drain's largest statement), 15 times now, and the drain's PostgreSQL CPU fell 0.112 → 0.076 ms a message; a 100k
# blast 90 → 33 times, 0.213 → 0.118 ms (docs/performance.md, "CPU per message"). Counters may lag by this much
# while a backlog drains; they are exact when the drain task ends (it recounts after its last batch).
AFTER_BATCH_INTERVAL_SECONDS = 1.0
# A drain task stops claiming after this long and lets the next tick continue, so one task never
# monopolises a worker slot and a deploy's warm shutdown waits at most this long.
TIME_BUDGET_SECONDS = 20.0
# Retries: 10 s, 20 s, 40 s ... capped at one hour; after MAX_ATTEMPTS tries the row is a dead letter
# (about 21 minutes of retrying: long enough to ride out a database failover or a deploy).
MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 10
BACKOFF_CAP_SECONDS = 3600
RETRY_BATCH_SIZE = 500
# The pseudo-processor name of an event whose type this code does not know (a newer writer during a
# rolling deploy, a hand-written row). Retrying it dispatches the event to its type's processors.
UNKNOWN_TYPE = "registry"

# States as statement text (sql_literals), not parameters: the planner matches the partial indexes
# event_pending and evproc_due against them.
_PENDING, _DONE = sql_literals(EventState.PENDING), sql_literals(EventState.DONE)
_RETRY, _DEAD = sql_literals(ProcessingState.RETRY), sql_literals(ProcessingState.DEAD)
_CLAIM_SQL = f"""
SELECT id, type, message_id, payload FROM postprocessing_event
WHERE state = {_PENDING} ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
"""  # noqa: S608 — states via sql_literals; values bound
_DONE_SQL = f"""
UPDATE postprocessing_event SET state = {_DONE}, processed_at = clock_timestamp() WHERE id = ANY(%s::bigint[])
"""  # noqa: S608 — states via sql_literals; values bound
_BACKOFF_SQL = "clock_timestamp() + make_interval(secs => LEAST(%s * power(2, {attempts} - 1), %s))"
_FAIL_INSERT_SQL = f"""
INSERT INTO postprocessing_eventprocessing (event_id, processor, state, attempts, available_at, error, created_at,
                                            updated_at)
SELECT e, %s, {_RETRY}, 1, {_BACKOFF_SQL.format(attempts=1)}, %s, now(), now()
FROM unnest(%s::bigint[]) AS e ORDER BY e
ON CONFLICT (event_id, processor) DO UPDATE SET
    state = {_RETRY}, error = EXCLUDED.error, available_at = EXCLUDED.available_at, updated_at = now()
"""  # noqa: S608 — states via sql_literals; values bound
_RETRY_CLAIM_SQL = f"""
SELECT p.id, p.processor, e.id, e.type, e.message_id, e.payload
FROM postprocessing_eventprocessing p JOIN postprocessing_event e ON e.id = p.event_id
WHERE p.state = {_RETRY} AND p.available_at <= clock_timestamp() {{extra}}
ORDER BY p.id LIMIT %s FOR UPDATE OF p SKIP LOCKED
"""  # noqa: S608 — states via sql_literals; values bound
_RETRY_FAIL_SQL = f"""
UPDATE postprocessing_eventprocessing SET
    attempts = attempts + 1,
    state = CASE WHEN attempts + 1 >= %s THEN {_DEAD} ELSE {_RETRY} END,
    available_at = {_BACKOFF_SQL.format(attempts="(attempts + 1)")},
    error = %s, updated_at = now()
WHERE id = ANY(%s::bigint[])
"""  # noqa: S608 — states via sql_literals; values bound


@dataclass
class DrainResult:
    events: int = 0
    batches: int = 0
    retried: int = 0
    failed: int = 0
    more: bool = False  # stopped on the time budget with events left


def events_drain(
    *,
    batch_size: int = BATCH_SIZE,
    time_budget: float = TIME_BUDGET_SECONDS,
    max_batches: int | None = None,
    after_batch_interval: float = AFTER_BATCH_INTERVAL_SECONDS,
) -> DrainResult:
    """Drain until the backlog is empty, the time budget is spent or max_batches ran. Retries first.

    The after-batch hooks run at the start, after the last batch, and between batches once
    `after_batch_interval` seconds have passed since they last ran (0: after every batch)."""
    result = DrainResult()
    retried, failed = processings_retry_due()
    result.retried, result.failed = retried, failed
    run_after_batch_hooks()
    hooks_ran, unhooked = time.monotonic(), False  # unhooked: a batch committed since the hooks last ran
    deadline = hooks_ran + time_budget
    while True:
        claimed, failed = drain_batch(batch_size=batch_size)
        result.events += claimed
        result.failed += failed
        result.batches += 1 if claimed else 0
        unhooked = unhooked or claimed > 0
        now = time.monotonic()
        result.more = claimed >= batch_size and (
            now >= deadline or (max_batches is not None and result.batches >= max_batches)
        )
        last = claimed < batch_size or result.more
        if unhooked and (last or now - hooks_ran >= after_batch_interval):
            run_after_batch_hooks()
            hooks_ran, unhooked = time.monotonic(), False
        if last:
            return result


def run_after_batch_hooks() -> None:
    """Processors' deferred work (blast recounts). A failure is logged and left for the next pass:
    the hooks keep their own to-do rows (e.g. BlastRecount marks) until they succeed."""
    for hook in after_batch_hooks():
        try:
            hook()
        except Exception:
            log.warning("post-processing: after-batch hook %s failed; retried on the next pass", hook, exc_info=True)


def drain_batch(*, batch_size: int = BATCH_SIZE) -> tuple[int, int]:
    """Claim up to batch_size pending events, run their processors, mark them done.

    Returns (events claimed, events×processors that failed). Statements: claim, then per processor
    with events in the batch a savepoint around its own constant number of statements, then one
    UPDATE (plus one INSERT per failing processor) — constant in the batch size.
    """
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM_SQL, [batch_size])
            rows = cursor.fetchall()
        if not rows:
            return 0, 0
        events = [_row(r) for r in rows]
        failures = _dispatch(events)
        with connection.cursor() as cursor:
            cursor.execute(_DONE_SQL, [[e.id for e in events]])
            for name, event_ids, error in failures:
                cursor.execute(_FAIL_INSERT_SQL, [name, BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS, error, event_ids])
    return len(events), sum(len(ids) for _, ids, _ in failures)


def _row(r: Sequence) -> EventRow:
    payload = r[3]
    if isinstance(payload, str):  # Django's psycopg 3 setup hands jsonb over as text
        payload = json.loads(payload)
    return EventRow(r[0], r[1], r[2], payload or {})


def _dispatch(events: list[EventRow]) -> list[tuple[str, list[int], str]]:
    """Run every processor on its share of the batch, each in a savepoint. Returns the failures."""
    failures: list[tuple[str, list[int], str]] = []
    known = set(EventType.values)
    unknown = [e.id for e in events if e.type not in known]
    if unknown:
        failures.append((UNKNOWN_TYPE, unknown, "unknown event type"))
    for proc in all_processors():
        mine = [e for e in events if e.type in proc.event_types]
        if mine:
            error = _run(proc, mine)
            if error is not None:
                failures.append((proc.name, [e.id for e in mine], error))
    return failures


def _run(proc: Processor, events: list[EventRow]) -> str | None:
    try:
        with transaction.atomic():  # a savepoint: a failure undoes this processor's writes only
            proc(events)
    except Exception as exc:
        log.warning("post-processing: processor %s failed on %d events", proc.name, len(events), exc_info=True)
        return _error_text(exc)
    return None


def _error_text(exc: BaseException) -> str:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=8))
    return tb[-4000:]


def processings_retry_due(
    *, batch_size: int = RETRY_BATCH_SIZE, event_ids: Iterable[int] | None = None, processor: str | None = None
) -> tuple[int, int]:
    """Retry failed (event, processor) pairs whose backoff has expired. Returns (succeeded, failed).

    Succeeded rows are deleted; failed ones back off again and turn dead after MAX_ATTEMPTS tries.
    """
    extra, params = "", list[Any]()
    if event_ids is not None:
        extra += " AND e.id = ANY(%s::bigint[])"
        params.append(sorted(set(event_ids)))
    if processor is not None:
        extra += " AND p.processor = %s"
        params.append(processor)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_RETRY_CLAIM_SQL.format(extra=extra), [*params, batch_size])
            rows = cursor.fetchall()
        if not rows:
            return 0, 0
        by_processor: dict[str, list[tuple[int, EventRow]]] = {}
        for pid, name, *event in rows:
            by_processor.setdefault(name, []).append((pid, _row(event)))
        ok: list[int] = []
        failed: list[tuple[list[int], str]] = []
        for name, items in by_processor.items():
            pids = [pid for pid, _ in items]
            error = _retry_one(name, [ev for _, ev in items])
            if error is None:
                ok.extend(pids)
            else:
                failed.append((pids, error))
        with connection.cursor() as cursor:
            if ok:
                cursor.execute("DELETE FROM postprocessing_eventprocessing WHERE id = ANY(%s::bigint[])", [ok])
            for pids, error in failed:
                cursor.execute(_RETRY_FAIL_SQL, [MAX_ATTEMPTS, BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS, error, pids])
    return len(ok), sum(len(p) for p, _ in failed)


def _retry_one(name: str, events: list[EventRow]) -> str | None:
    if name == UNKNOWN_TYPE:
        return _retry_unknown_type(events)
    try:
        proc = processor_named(name)
    except KeyError as exc:  # a processor removed since: keep the row, visible, until someone decides
        return str(exc)
    return _run(proc, events)


def _retry_unknown_type(events: list[EventRow]) -> str | None:
    known = set(EventType.values)
    still_unknown = sorted({e.type for e in events if e.type not in known})
    if still_unknown:
        return f"unknown event type(s): {', '.join(still_unknown)}"
    # Now known: dispatch like a fresh batch; a processor failing here gets its own retry row.
    failures = []
    for proc in {p.name: p for e in events for p in processors_for(e.type)}.values():
        mine = [e for e in events if e.type in proc.event_types]
        error = _run(proc, mine)
        if error is not None:
            failures.append((proc.name, [e.id for e in mine], error))
    with connection.cursor() as cursor:
        for name, event_ids, error in failures:
            cursor.execute(_FAIL_INSERT_SQL, [name, BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS, error, event_ids])
    return None


def dead_letters_requeue(
    *, processor: str | None = None, event_ids: Iterable[int] | None = None, processing_ids: Iterable[int] | None = None
) -> int:
    """Give dead letters (optionally filtered) a fresh retry schedule, due now. Returns how many.

    The drain picks them up on its next tick; `postprocessing_retry` also runs them at once.
    """
    sql = (
        "UPDATE postprocessing_eventprocessing SET state = %s, attempts = 0, available_at = clock_timestamp(),"
        " updated_at = now() WHERE state = %s"
    )
    params: list = [ProcessingState.RETRY, ProcessingState.DEAD]
    if processor is not None:
        sql += " AND processor = %s"
        params.append(processor)
    if event_ids is not None:
        sql += " AND event_id = ANY(%s::bigint[])"
        params.append(sorted(set(event_ids)))
    if processing_ids is not None:
        sql += " AND id = ANY(%s::bigint[])"
        params.append(sorted(set(processing_ids)))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        count = cursor.rowcount
    if count:
        from .record import drain_kick

        drain_kick()
    return count


def events_prune(*, older_than_days: int = 7, chunk: int = 10_000) -> int:
    """Delete done events older than the window (failed ones stay while they have a processing row)."""
    total = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"""
                DELETE FROM postprocessing_event WHERE id IN (
                    SELECT e.id FROM postprocessing_event e
                    WHERE e.state = {_DONE} AND e.processed_at < now() - make_interval(days => %s)
                      AND NOT EXISTS (SELECT 1 FROM postprocessing_eventprocessing p WHERE p.event_id = e.id)
                    ORDER BY e.id LIMIT %s)
                """,  # noqa: S608 — states via sql_literals; values bound
                [older_than_days, chunk],
            )
            total += cursor.rowcount
            if cursor.rowcount < chunk:
                return total
