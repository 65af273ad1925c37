"""Carrier webhooks, the intake side: validate, store first, hand over. See docs/carriers.md.

The view's hot path is `webhook_receive`: parse enough to answer 400 for a malformed body, one
INSERT of the raw body, and at most one Redis SET NX that decides whether an apply task must be
enqueued. The store (`carriers_webhookevent`) is this app's: `webhooks_claim` locks due rows and
parses them into wire-level reports and inbound texts, `webhooks_settle` writes their outcome with
the store's retry schedule. What a report means for a message is messaging's business: the task
"carriers.apply_webhooks" is `messaging/tasks.py: apply_webhooks`, running
`messaging/services/reports.py: webhook_process` — carriers never reads a message row.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from config.celery import app as celery_app
from config.sql import execute as execute_bound
from config.sql import sql_literals
from config.wakeup import wake_on_commit_call

from .base import DeliveryReport, InboundMessage
from .models import WebhookEvent, WebhookKind, WebhookState
from .sinch import clean_text, parse_delivery_payload, parse_inbound_payload

log = logging.getLogger(__name__)

# The wire name of the task that applies stored webhooks (routed by name to the "webhooks" queue,
# config/queues.py; swept by beat, config/beat.py). Declared here, where the intake publishes it;
# implemented by messaging (messaging/tasks.py), which knows what a report does to a message. The name
# kept its "carriers." prefix when the task moved: a wire name outlives module moves.
APPLY_TASK_NAME = "carriers.apply_webhooks"
# Debounce key: while it exists an apply task is queued or running, so 1,000 webhooks/s enqueue one
# task, not 1,000. Its TTL only matters if a worker dies mid-run (the beat sweep covers that too).
APPLY_DEBOUNCE_KEY = "carriers:apply-webhooks"
APPLY_DEBOUNCE_TTL = 60
# A report that matches no message yet (it beat our send call's return) is retried with backoff
# 5 s, 10 s, ... capped at 10 min; after this many tries (~1 h in all) it is marked failed.
MAX_ATTEMPTS = 12


def _retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(5 * 2 ** max(attempts - 1, 0), 600))


# A report that beat our send call's return names a carrier batch id we have not recorded yet. Its row
# waits for its backoff; the send that records that batch id wakes it at once (`webhooks_wake_waiting`)
# instead of leaving it to the backoff and the beat sweep (docs/recovery.md). The waiting rows, by the
# batch id they wait for, in Redis: one key per batch id, kept as long as the retry schedule runs (~1 h).
WAITING_KEY = "carriers:apply-waiting:{}"
WAITING_TTL = 3600


# -- receiving ------------------------------------------------------------------------------------------
class WebhookRejected(ValueError):
    """The body can never be processed (not JSON, wrong shape): answered 400, stored as invalid."""


def _loads(body: bytes) -> object:
    """json.loads, with nesting too deep for the parser (RecursionError, e.g. 1,500 levels of [[[...)
    refused like any other malformed body."""
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("body is nested too deeply") from None


def webhook_validate(*, kind: str, body: bytes) -> None:
    try:
        payload = _loads(body)
    except ValueError as exc:
        reason = str(exc) if str(exc) == "body is nested too deeply" else "body is not valid JSON"
        raise WebhookRejected(reason) from None
    try:
        if kind == WebhookKind.DELIVERY:
            parse_delivery_payload(payload)
        else:
            parse_inbound_payload(payload)
    except ValueError as exc:
        raise WebhookRejected(str(exc)) from None


_INSERT_SQL = (
    "INSERT INTO carriers_webhookevent (account_id, kind, body, received_at, state, attempts, error, account_inactive)"
    " VALUES (%s, %s, %s, now(), %s, 0, %s, %s)"
)


def webhook_receive(*, account_id: int, kind: str, body: bytes, account_inactive: bool = False) -> None:
    """Store a carrier callback, then make sure an apply task will see it.

    Raises WebhookRejected (after storing the body as invalid) when it can never be processed;
    a database error propagates, so the view answers 5xx and the carrier retries.
    account_inactive: the account was deactivated; the callback is applied all the same, and flagged.
    """
    try:
        webhook_validate(kind=kind, body=body)
    except WebhookRejected as exc:
        with connection.cursor() as cursor:
            cursor.execute(
                _INSERT_SQL,
                [account_id, kind, body, WebhookState.INVALID, clean_text(str(exc))[:500], account_inactive],
            )
        raise
    # One plain INSERT (no ORM instance, no RETURNING): the row is all the view must write. Prepared
    # once per connection instead of parsed and planned per callback (measured: ~40 µs of
    # PostgreSQL's ~200 µs per stored callback).
    execute_bound(_INSERT_SQL, [account_id, kind, body, WebhookState.PENDING, "", account_inactive], prepare=True)
    # The callable form: the debounce below decides after commit whether to publish at all.
    wake_on_commit_call(webhooks_enqueue_apply)


# Per process: when this process last saw the debounce key set (by itself or a running task). Within
# this window the Redis round trip is skipped: under a burst a task is running anyway, and a row
# stored just after that task's final claim is picked up by the task's last claim, made once this
# window has passed since it dropped the key (messaging/services/reports.py: webhook_process).
# Measured: the SET NX was ~1/4 of the view's time.
ENQUEUE_MEMO_SECONDS = 0.5
_enqueue_memo = {"at": -1.0}


def webhooks_enqueue_apply(*, force: bool = False) -> None:
    """Enqueue the apply task ("carriers.apply_webhooks") unless one is already queued or running (SET NX).

    Run after commit through `config.wakeup.wake_on_commit_call`, which logs a Redis or broker failure
    instead of raising it: the row is stored, and the beat sweep applies it."""
    now = time.monotonic()
    if not force and now - _enqueue_memo["at"] < ENQUEUE_MEMO_SECONDS:
        return
    _enqueue_memo["at"] = now
    if not cache.add(APPLY_DEBOUNCE_KEY, 1, timeout=APPLY_DEBOUNCE_TTL):
        return
    celery_app.signature(APPLY_TASK_NAME).apply_async()


# -- the store: claim and settle ----------------------------------------------------------------------


@dataclass
class ClaimedWebhook:
    """A claimed row of the store, parsed: its delivery reports or its inbound text (wire level)."""

    id: int
    account_id: int
    kind: str
    body: bytes
    attempts: int  # counts this try
    reports: list[DeliveryReport] = field(default_factory=list)
    inbound: InboundMessage | None = None
    error: str = ""  # set when the body does not parse: the row is settled invalid


# The claim marks every claimed row processed (attempts + 1) in the same statement that locks it: the
# common case then needs no second write. Rows that are not processed after all are corrected here.
_PENDING, _PROCESSED = sql_literals(WebhookState.PENDING), sql_literals(WebhookState.PROCESSED)
_CLAIM_SQL = f"""
WITH c AS (
    SELECT id FROM carriers_webhookevent
    WHERE state = {_PENDING} AND (next_attempt_at IS NULL OR next_attempt_at <= now()) AND id > %s {{only}}
    ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
)
UPDATE carriers_webhookevent w SET state = {_PROCESSED}, attempts = w.attempts + 1, processed_at = now(),
    next_attempt_at = NULL, error = ''
FROM c WHERE w.id = c.id
RETURNING w.id, w.account_id, w.kind, w.body, w.attempts
"""  # noqa: S608 — states from WebhookState via sql_literals, the id filter a constant; values bound

_CORRECT_SQL = f"""
UPDATE carriers_webhookevent w SET
    state = v.state, error = left(v.error, 500), next_attempt_at = v.next_at,
    processed_at = CASE WHEN v.state = {_PENDING} THEN NULL ELSE w.processed_at END
FROM unnest(%s::bigint[], %s::varchar[], %s::varchar[], %s::timestamptz[]) AS v(id, state, error, next_at)
WHERE w.id = v.id
"""  # noqa: S608 — states from WebhookState via sql_literals, the id filter a constant; values bound


def webhooks_claim(batch_size: int, ids: list[int] | None = None, after_id: int = 0) -> list[ClaimedWebhook]:
    """Lock (SKIP LOCKED, pk order) and mark processed up to batch_size due pending rows, or exactly `ids`,
    and parse their bodies. Call inside the transaction that applies them and then `webhooks_settle`s."""
    with connection.cursor() as cursor:
        if ids is None:
            cursor.execute(_CLAIM_SQL.format(only=""), [after_id, batch_size])
        else:
            cursor.execute(_CLAIM_SQL.format(only="AND id = ANY(%s::bigint[])"), [after_id, ids, batch_size])
        rows = cursor.fetchall()
    # attempts as returned already counts this try.
    events = sorted((ClaimedWebhook(i, a, k, bytes(b), n) for i, a, k, b, n in rows), key=lambda e: e.id)
    for event in events:
        try:
            payload = _loads(event.body)
            if event.kind == WebhookKind.DELIVERY:
                event.reports = parse_delivery_payload(payload)
            else:
                event.inbound = parse_inbound_payload(payload)
        except ValueError as exc:  # stored as pending but unparseable (e.g. requeued from admin)
            event.error = f"invalid: {exc}"
    return events


@dataclass
class SettleResult:
    processed: int = 0
    retried: int = 0
    failed: int = 0


def webhooks_settle(
    events: list[ClaimedWebhook],
    *,
    unmatched: dict[int, list[DeliveryReport]],
    failed: dict[int, str],
    now: datetime | None = None,
) -> SettleResult:
    """Write the outcome of claimed rows (claimed rows are already `processed`; only the others are
    written): invalid bodies; `failed` (row id → why, e.g. an inbound text that could not be stored);
    `unmatched` (row id → its reports that matched no message yet) back to pending with backoff, or
    failed after MAX_ATTEMPTS."""
    now = now or timezone.now()
    result = SettleResult()
    ids, states, errors, next_at = [], [], [], []
    waiting: dict[str, set[int]] = {}
    for event in events:
        tries = event.attempts
        missing = unmatched.get(event.id)
        state, error, due = WebhookState.PROCESSED, "", None
        if event.error:
            state, error = WebhookState.INVALID, event.error
        elif failed.get(event.id):
            state, error = WebhookState.FAILED, failed[event.id]
        elif missing:
            first = missing[0]
            error = (
                f"no message for batch {first.batch_id} recipient {first.recipient or '(all)'}"
                + (f" client_reference {first.client_reference}" if first.client_reference else "")
                + (f" (+{len(missing) - 1} more)" if len(missing) > 1 else "")
            )
            if tries >= MAX_ATTEMPTS:
                state, error = WebhookState.FAILED, f"gave up after {tries} attempts: {error}"
            else:
                state, due = WebhookState.PENDING, now + _retry_delay(tries)
                for report in missing:
                    if report.batch_id:
                        waiting.setdefault(report.batch_id, set()).add(event.id)
        if state == WebhookState.PROCESSED:
            result.processed += 1
            continue
        if state == WebhookState.PENDING:
            result.retried += 1
        else:
            result.failed += 1
            # Unprocessable after it was accepted: said in the log, counted by the health selector.
            log.warning(
                "carrier webhook %s (account %s, %s) is %s: %s", event.id, event.account_id, event.kind, state, error
            )
        ids.append(event.id)
        states.append(state)
        errors.append(error)
        next_at.append(due)
    if ids:
        with connection.cursor() as cursor:
            cursor.execute(_CORRECT_SQL, [ids, states, errors, next_at])
    if waiting:
        wake_on_commit_call(partial(_note_waiting, waiting))
    return result


def _note_waiting(waiting: dict[str, set[int]]) -> None:
    keys = {WAITING_KEY.format(batch_id): row_ids for batch_id, row_ids in waiting.items()}
    known = cache.get_many(list(keys))
    cache.set_many({k: sorted(ids | set(known.get(k, ()))) for k, ids in keys.items()}, timeout=WAITING_TTL)


def webhooks_wake_waiting(*, batch_ids: list[str]) -> int:
    """A send recorded these carrier batch ids: stored reports that wait for one of them (they came
    first) are made due and the apply task is published. Returns the rows woken.

    Called after commit, once per carrier call: in the common case (no report came first) one Redis
    MGET and no query. A report noted just after this look is applied after its backoff by the sweep."""
    keys = [WAITING_KEY.format(b) for b in sorted(set(batch_ids)) if b]
    found = cache.get_many(keys)
    if not found:
        return 0
    cache.delete_many(list(found))
    row_ids = sorted({i for ids in found.values() for i in ids})
    woken = WebhookEvent.objects.filter(pk__in=row_ids, state=WebhookState.PENDING).update(next_attempt_at=None)
    if woken:  # not debounced: a running apply task may have made its last claim already
        celery_app.signature(APPLY_TASK_NAME).apply_async()
    return woken


def webhook_fail(*, event_id: int, attempts: int, error: str) -> None:
    """Mark one claimed row failed outside a batch (its batch of one raised: a poisonous body)."""
    WebhookEvent.objects.filter(pk=event_id, state=WebhookState.PENDING).update(
        state=WebhookState.FAILED, attempts=attempts, processed_at=timezone.now(), error=error[:500]
    )


def webhook_requeue(*, event_ids: list[int]) -> int:
    """Admin: put failed/invalid events back to pending (after a fix). Returns rows requeued."""
    count = (
        WebhookEvent.objects.filter(pk__in=event_ids)
        .exclude(state=WebhookState.PENDING)
        .update(state=WebhookState.PENDING, attempts=0, next_attempt_at=None, error="")
    )
    if count:
        wake_on_commit_call(partial(webhooks_enqueue_apply, force=True))
    return count


# -- retention ------------------------------------------------------------------------------------------
# The store keeps every callback as received, so it would grow by one row per delivery report for ever.
# Processed rows older than the retention (WEBHOOK_EVENT_RETENTION_DAYS, docs/carriers.md "Retention")
# are deleted by "carriers.prune_webhooks" (hourly, config/beat.py). Pending, failed and invalid rows are
# never deleted: they are retry material and the evidence of what we could not apply.
# 5,000 rows per statement: each statement is one short transaction (p50 16–20 ms, max 160–200 ms at
# load 3–4, bench/bench_retention.py; docs/carriers.md), so nothing waits long behind its row locks.
PRUNE_BATCH = 5_000
_PROCESSED = sql_literals(WebhookState.PROCESSED)
# One window of the primary key per statement: the next `batch` rows after the last window (an index
# range scan of the pkey, never a sequential scan), of which the processed old ones are deleted. The
# store's ids follow received_at (one sequence, now() at insert), so the old rows are the low ids; the
# run stops at the first window with no row received before the cutoff. The state is re-checked on the
# row itself, so a row an admin requeued meanwhile (webhook_requeue) is not deleted.
_PRUNE_WINDOW = """
WITH win AS (SELECT id, received_at FROM carriers_webhookevent WHERE id > %s ORDER BY id LIMIT %s),
hit AS ({action} FROM carriers_webhookevent w
        WHERE w.id > %s AND w.id <= (SELECT max(id) FROM win)
          AND w.state = {processed} AND w.received_at < %s AND w.processed_at < %s {returning})
SELECT (SELECT max(id) FROM win), (SELECT count(*) FROM win), (SELECT count(*) FROM win WHERE received_at < %s),
       (SELECT count(*) FROM hit)
"""
_PRUNE_SQL = _PRUNE_WINDOW.format(action="DELETE", processed=_PROCESSED, returning="RETURNING 1")
_PRUNE_DRY_SQL = _PRUNE_WINDOW.format(action="SELECT 1", processed=_PROCESSED, returning="")


@dataclass
class PruneResult:
    deleted: int = 0  # or, on a dry run, the rows that would be
    statements: int = 0
    seconds: float = 0.0


def webhook_events_prune(*, older_than_days: int, batch: int = PRUNE_BATCH, dry_run: bool = False) -> PruneResult:
    """Delete processed webhook events received (and processed) more than `older_than_days` ago, `batch`
    rows of the primary key per statement, each statement its own transaction. dry_run: count instead."""
    result = PruneResult()
    if older_than_days <= 0:  # retention off: keep everything
        return result
    started = time.monotonic()
    cutoff = timezone.now() - timedelta(days=older_than_days)
    sql, after = (_PRUNE_DRY_SQL if dry_run else _PRUNE_SQL), 0
    while True:
        ((last, rows, old, hit),) = execute_bound(sql, [after, batch, after, cutoff, cutoff, cutoff])
        result.statements += 1
        result.deleted += hit
        if rows < batch or not old:  # the end of the table, or a whole window newer than the cutoff
            break
        after = last
    result.seconds = time.monotonic() - started
    log.info(
        "webhook events pruned%s: %d in %d statements, %.1f s",
        " (dry run)" if dry_run else "",
        result.deleted,
        result.statements,
        result.seconds,
    )
    return result
