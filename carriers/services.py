"""Carrier webhooks: store first, apply in batches. See docs/carriers.md.

The view's hot path is `webhook_receive`: parse enough to answer 400 for a malformed body, one
INSERT of the raw body, and at most one Redis SET NX that decides whether an apply task must be
enqueued. `webhook_process` (task "carriers.apply_webhooks") claims pending rows in pk order,
resolves their messages with one set-based query and applies every status through
messaging's `messages_apply_statuses` in one statement.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.cache import cache
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from config.sql import execute as execute_bound
from messaging.services.status import StatusUpdate, messages_apply_statuses

from .base import DeliveryReport, InboundMessage
from .models import WebhookEvent, WebhookKind, WebhookState
from .sinch import clean_text, parse_delivery_payload, parse_inbound_payload

log = logging.getLogger(__name__)

# 1000 events per claim: one UPDATE ... FROM unnest of ~1000 rows is where messages_apply_statuses
# sits near its measured plateau (~64k rows/s, docs/performance.md), while the claim transaction (locks on
# 1000 webhook rows) still commits in well under a second.
APPLY_BATCH_SIZE = 1000
# A task works this long, then hands over to a fresh task so one worker is not monopolised.
APPLY_TIME_BUDGET = 25.0
# Debounce key: while it exists an apply task is queued or running, so 1,000 webhooks/s enqueue one
# task, not 1,000. Its TTL only matters if a worker dies mid-run (the beat sweep covers that too).
APPLY_DEBOUNCE_KEY = "carriers:apply-webhooks"
APPLY_DEBOUNCE_TTL = 60
# After a partial batch the task waits this long before the next claim, so that a steady stream of
# callbacks is applied in batches of ~100 (at 1,000/s) instead of ~20: each batch has a fixed cost of
# four planned statements and a commit (~10 ms), which at ~50 batches/s took a third of a core
# (measured in bench/bench_send.py). A full batch (a backlog) is followed at once.
APPLY_GATHER_SECONDS = 0.1
# A report that matches no message yet (it beat our send call's return) is retried with backoff
# 5 s, 10 s, ... capped at 10 min; after this many tries (~1 h in all) it is marked failed.
MAX_ATTEMPTS = 12


def _retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(5 * 2 ** max(attempts - 1, 0), 600))


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
    transaction.on_commit(webhooks_enqueue_apply)


# Per process: when this process last saw the debounce key set (by itself or a running task). Within
# this window the Redis round trip is skipped: under a burst a task is running anyway, and a row
# stored just after that task's final claim is picked up by the next webhook past the window or by
# the beat sweep (<= 15 s). Measured: the SET NX was ~1/4 of the view's time.
ENQUEUE_MEMO_SECONDS = 0.5
_enqueue_memo = {"at": -1.0}


def webhooks_enqueue_apply(*, force: bool = False) -> None:
    """Enqueue "carriers.apply_webhooks" unless one is already queued or running (SET NX)."""
    now = time.monotonic()
    if not force and now - _enqueue_memo["at"] < ENQUEUE_MEMO_SECONDS:
        return
    try:
        _enqueue_memo["at"] = now
        if not cache.add(APPLY_DEBOUNCE_KEY, 1, timeout=APPLY_DEBOUNCE_TTL):
            return
        from .tasks import apply_webhooks

        apply_webhooks.apply_async()
    except Exception:  # Redis/broker hiccup: the row is stored, the beat sweep will apply it
        log.warning("could not enqueue carriers.apply_webhooks; the beat sweep will pick the rows up", exc_info=True)


# -- applying -----------------------------------------------------------------------------------------


@dataclass
class ProcessResult:
    claimed: int = 0
    processed: int = 0
    retried: int = 0
    failed: int = 0
    statuses_applied: int = 0
    inbound_stored: int = 0
    last_id: int = 0  # highest event id claimed

    def add(self, other: ProcessResult) -> None:
        for name in self.__dataclass_fields__:
            if name != "last_id":
                setattr(self, name, getattr(self, name) + getattr(other, name))
        self.last_id = max(self.last_id, other.last_id)


@dataclass
class _Claimed:
    id: int
    account_id: int
    kind: str
    body: bytes
    attempts: int
    reports: list[DeliveryReport] = field(default_factory=list)
    inbound: InboundMessage | None = None
    error: str = ""


# Reports → message ids, set-based. Three ways to find a report's message, all scoped to messages
# sent through a line of the account whose webhook URL received the report (tenant isolation):
#   a) (carrier_batch_id, recipient): the normal case. Recipient "" (a summary report in which the
#      whole batch has one status) stands for every message of the batch.
#   b) (send_batch_ref, recipient): the send pipeline's per-call reference, sent as client_reference;
#      matches a report that beat our own send call's return (batch id not recorded yet).
#   c) client_reference = Message.client_reference, recipient = the message's contact: a
#      per-message reference.
# carrier_recipient is stored E.164; the digits form is accepted too.
_RESOLVE_SQL = """
WITH r AS (
    -- idx (1-based position) and the digits-only form are derived here: fewer arrays to quote in Python.
    SELECT u.idx::int AS idx, u.account_id, u.batch_id, u.e164, ltrim(u.e164, '+') AS digits, u.cref
    FROM unnest(%s::bigint[], %s::varchar[], %s::varchar[], %s::varchar[]) WITH ORDINALITY
        AS u(account_id, batch_id, e164, cref, idx)
), a AS (
    -- "= ANY(ARRAY[...])" keeps both columns of msg_carrier_ref in the index condition (an OR would
    -- scan the whole batch per report: 1000x the rows, measured).
    -- LATERAL pins a parameterized index probe per report: as a plain join the planner, misjudging
    -- the unnest's selectivity, flipped to a sequential scan of the whole table after bulk updates
    -- (measured: 180 ms instead of 10 ms per 1000 reports at only 50k messages).
    SELECT r.idx, m.id FROM r
    CROSS JOIN LATERAL (
        SELECT mm.id, mm.line_id FROM messaging_message mm
        WHERE mm.carrier_batch_id = r.batch_id AND mm.carrier_batch_id <> ''
          AND mm.carrier_recipient = ANY(ARRAY[r.e164, r.digits]) AND mm.direction = 'out'
        OFFSET 0  -- an optimization fence: keeps the subquery from being pulled up into a plain join
    ) m
    JOIN messaging_line l ON l.id = m.line_id AND l.carrier_account_id = r.account_id
    WHERE r.e164 <> ''
), whole AS (
    SELECT r.idx, m.id FROM r
    CROSS JOIN LATERAL (
        SELECT mm.id, mm.line_id FROM messaging_message mm
        WHERE mm.carrier_batch_id = r.batch_id AND mm.carrier_batch_id <> '' AND mm.direction = 'out'
        OFFSET 0
    ) m
    JOIN messaging_line l ON l.id = m.line_id AND l.carrier_account_id = r.account_id
    WHERE r.e164 = ''
), unplaced AS (
    -- Reports with a reference that the batch id did not place. b and c probe only these, each with a
    -- parameterized index probe (LATERAL + fence): as plain joins the planner hashed the whole of
    -- messaging_message for them before the anti-join removed every row (measured: a sequential scan
    -- of the table per 1000 reports, 50 of 65 ms at 68k messages, growing with the table).
    SELECT r.* FROM r
    WHERE r.cref <> '' AND r.e164 <> '' AND NOT EXISTS (SELECT 1 FROM a WHERE a.idx = r.idx)
), b AS (
    SELECT p.idx, m.id FROM unplaced p
    CROSS JOIN LATERAL (
        SELECT mm.id, mm.line_id FROM messaging_message mm
        WHERE mm.send_batch_ref = p.cref AND mm.send_batch_ref <> ''
          AND mm.carrier_recipient = ANY(ARRAY[p.e164, p.digits]) AND mm.direction = 'out'
        OFFSET 0
    ) m
    JOIN messaging_line l ON l.id = m.line_id AND l.carrier_account_id = p.account_id
), c AS (
    SELECT p.idx, m.id FROM unplaced p
    CROSS JOIN LATERAL (
        SELECT mm.id, mm.line_id, mm.contact_id FROM messaging_message mm
        WHERE mm.client_reference = p.cref AND mm.direction = 'out'
        OFFSET 0
    ) m
    JOIN messaging_contact ct ON ct.id = m.contact_id AND ct.phone_number = ANY(ARRAY[p.e164, p.digits])
    JOIN messaging_line l ON l.id = m.line_id AND l.carrier_account_id = p.account_id
)
SELECT idx, id FROM a UNION ALL SELECT idx, id FROM whole
UNION SELECT idx, id FROM b UNION SELECT idx, id FROM c
"""

# The claim marks every claimed row processed (attempts + 1) in the same statement that locks it: the
# common case then needs no second write. Rows that are not processed after all are corrected here.
_CLAIM_SQL = """
WITH c AS (
    SELECT id FROM carriers_webhookevent
    WHERE state = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= now()) AND id > %s {only}
    ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
)
UPDATE carriers_webhookevent w SET state = 'processed', attempts = w.attempts + 1, processed_at = now(),
    next_attempt_at = NULL, error = ''
FROM c WHERE w.id = c.id
RETURNING w.id, w.account_id, w.kind, w.body, w.attempts
"""

_CORRECT_SQL = """
UPDATE carriers_webhookevent w SET
    state = v.state, error = left(v.error, 500), next_attempt_at = v.next_at,
    processed_at = CASE WHEN v.state = 'pending' THEN NULL ELSE w.processed_at END
FROM unnest(%s::bigint[], %s::varchar[], %s::varchar[], %s::timestamptz[]) AS v(id, state, error, next_at)
WHERE w.id = v.id
"""


def _resolve(pairs: list[tuple[int, DeliveryReport]]) -> dict[int, list[int]]:
    """[(account_id, report)] → {report index: [message ids]} in one query."""
    if not pairs:
        return {}
    params: list[list] = [
        [account_id for account_id, _ in pairs],
        [r.batch_id for _, r in pairs],
        [r.recipient for _, r in pairs],
        [r.client_reference for _, r in pairs],
    ]
    found: dict[int, list[int]] = {}
    # Server-side binding: Django's client-side binding quoted the four 1000-element arrays into the SQL
    # text, and planning that text cost ~180 ms a batch against ~10 ms of execution (measured).
    for idx, message_id in execute_bound(_RESOLVE_SQL, params):
        found.setdefault(idx - 1, []).append(message_id)
    return found


def _claim(batch_size: int, ids: list[int] | None = None, after_id: int = 0) -> list[_Claimed]:
    """Lock (SKIP LOCKED, pk order) and mark processed up to batch_size due pending rows, or exactly `ids`."""
    with connection.cursor() as cursor:
        if ids is None:
            cursor.execute(_CLAIM_SQL.format(only=""), [after_id, batch_size])
        else:
            cursor.execute(_CLAIM_SQL.format(only="AND id = ANY(%s::bigint[])"), [after_id, ids, batch_size])
        rows = cursor.fetchall()
    # attempts as returned already counts this try.
    return sorted((_Claimed(i, a, k, bytes(b), n) for i, a, k, b, n in rows), key=lambda e: e.id)


def _apply(events: list[_Claimed]) -> ProcessResult:
    """Parse, resolve and apply claimed events; write their new states. Inside the claim transaction."""
    result = ProcessResult(claimed=len(events))
    now = timezone.now()
    pairs: list[tuple[int, DeliveryReport]] = []
    owners: list[_Claimed] = []
    inbound: list[_Claimed] = []
    for event in events:
        try:
            payload = _loads(event.body)
            if event.kind == WebhookKind.DELIVERY:
                event.reports = parse_delivery_payload(payload)
            else:
                event.inbound = parse_inbound_payload(payload)
        except ValueError as exc:  # stored as pending but unparseable (e.g. requeued from admin)
            event.error = f"invalid: {exc}"
            continue
        for report in event.reports:
            pairs.append((event.account_id, report))
            owners.append(event)
        if event.inbound is not None:
            inbound.append(event)

    matched = _resolve(pairs)
    updates: list[StatusUpdate] = []
    unmatched: dict[int, list[DeliveryReport]] = {}
    for i, (_, report) in enumerate(pairs):
        message_ids = matched.get(i)
        if not message_ids:
            unmatched.setdefault(owners[i].id, []).append(report)
            continue
        # Sinch's code is an error only on a failure; on Queued/Dispatched (400/401) it is not.
        is_error = report.status in ("failed", "undelivered")
        for message_id in message_ids:
            updates.append(
                StatusUpdate(
                    message_id=message_id,
                    status=report.status,
                    at=report.at,
                    carrier_status=report.carrier_status,
                    error_code=report.code if is_error else "",
                    error_reason=f"Sinch {report.carrier_status} (code {report.code})" if is_error else "",
                    carrier_batch_id=report.batch_id,
                )
            )
    if updates:
        # Message-id order: concurrent apply tasks then lock rows in the same order (no deadlock).
        updates.sort(key=lambda u: u.message_id)
        result.statuses_applied = len(messages_apply_statuses(updates=updates))

    inbound_errors: dict[int, str] = {}
    if inbound:
        from messaging.services.inbound import InboundItem, inbound_messages_receive

        inbound_errors = inbound_messages_receive(
            items=[
                InboundItem(key=e.id, account_id=e.account_id, message=e.inbound)
                for e in inbound
                if e.inbound is not None
            ]
        )
        result.inbound_stored = sum(1 for e in inbound if not inbound_errors.get(e.id))

    ids, states, errors, next_at = [], [], [], []
    for event in events:
        tries = event.attempts
        missing = unmatched.get(event.id)
        state, error, due = WebhookState.PROCESSED, "", None
        if event.error:
            state, error = WebhookState.INVALID, event.error
        elif event.id in inbound_errors and inbound_errors[event.id]:
            state, error = WebhookState.FAILED, inbound_errors[event.id]
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
    return result


def webhook_process_batch(
    *, batch_size: int = APPLY_BATCH_SIZE, ids: list[int] | None = None, after_id: int = 0
) -> ProcessResult:
    """Claim up to batch_size due pending events (SKIP LOCKED, pk order, id > after_id) and apply them,
    in one transaction."""
    events: list[_Claimed] = []
    try:
        with transaction.atomic():
            events = _claim(batch_size, ids, after_id)
            if not events:
                return ProcessResult()
            result = _apply(events)
            result.last_id = events[-1].id
            return result
    except (OperationalError, InterfaceError):
        raise  # the database is unavailable: nothing to isolate, the rows stay pending
    except Exception:
        # One poisonous body must not block the queue: isolate it, one event at a time.
        if len(events) <= 1:
            raise
        log.exception("webhook batch failed; retrying its %d events one by one", len(events))
    result = ProcessResult()
    for event in events:
        try:
            result.add(webhook_process_batch(batch_size=1, ids=[event.id]))
        except (OperationalError, InterfaceError):
            raise
        except Exception as exc:
            log.exception("webhook event %s failed", event.id)
            WebhookEvent.objects.filter(pk=event.id, state=WebhookState.PENDING).update(
                state=WebhookState.FAILED,
                attempts=event.attempts,
                processed_at=timezone.now(),
                error=f"{type(exc).__name__}: {exc}"[:500],
            )
            result.failed += 1
    return result


def webhook_process(
    *,
    batch_size: int = APPLY_BATCH_SIZE,
    time_budget: float | None = APPLY_TIME_BUDGET,
    debounce: bool = True,
    gather: float = 0.0,
) -> ProcessResult:
    """Apply pending webhooks until none is due (or the time budget is spent; then a fresh task follows).

    The debounce key is dropped before the final empty claim: a webhook stored after that claim's
    snapshot finds no key and enqueues a new task, one stored before it is seen by that claim.
    gather: seconds to wait after a partial batch (the task passes APPLY_GATHER_SECONDS).
    """
    started = timezone.now()
    total = ProcessResult()
    # Each claim starts after the last id this run claimed: processed rows stay in the partial
    # "pending" index as dead entries until vacuum, and a claim from id 0 would wade through all of
    # them (measured: a fixed ~0.1 s per claim after 50k rows). One rescan from 0 at the end picks up
    # rows skipped meanwhile (locked by another run, or a retry that became due).
    after_id = 0
    while True:
        result = webhook_process_batch(batch_size=batch_size, after_id=after_id)
        total.add(result)
        if result.claimed:
            after_id = result.last_id
            if gather and result.claimed < batch_size:
                time.sleep(gather)
        elif after_id:
            after_id = 0
            continue
        if result.claimed == 0:
            if not debounce:
                return total
            cache.delete(APPLY_DEBOUNCE_KEY)
            result = webhook_process_batch(batch_size=batch_size)
            total.add(result)
            if result.claimed == 0:
                return total
            cache.add(APPLY_DEBOUNCE_KEY, 1, timeout=APPLY_DEBOUNCE_TTL)
        if time_budget is not None and (timezone.now() - started).total_seconds() > time_budget:
            from .tasks import apply_webhooks

            transaction.on_commit(apply_webhooks.apply_async)
            return total


def webhook_requeue(*, event_ids: list[int]) -> int:
    """Admin: put failed/invalid events back to pending (after a fix). Returns rows requeued."""
    count = (
        WebhookEvent.objects.filter(pk__in=event_ids)
        .exclude(state=WebhookState.PENDING)
        .update(state=WebhookState.PENDING, attempts=0, next_attempt_at=None, error="")
    )
    if count:
        transaction.on_commit(lambda: webhooks_enqueue_apply(force=True))
    return count
