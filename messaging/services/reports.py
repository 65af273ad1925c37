"""Delivery reports and inbound texts from the carrier's webhook store, applied to messages.
See docs/carriers.md ("Applying") and docs/architecture.md (steps 5-6 of a message's path).

The carriers app stores each callback first (`carriers.services.webhook_receive`) and owns its store:
`webhooks_claim` locks due rows and parses them, `webhooks_settle` writes their outcome and retry
schedule. This module is the part that knows messages: it resolves each report to message ids with
one set-based query (`_RESOLVE_SQL`), applies every status through `messages_apply_statuses` in one
statement, and hands inbound texts to `messaging.services.inbound`. Run by the task
"carriers.apply_webhooks" (messaging/tasks.py: apply_webhooks).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.core.cache import cache
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from carriers.base import DeliveryReport
from carriers.services import (
    APPLY_DEBOUNCE_KEY,
    APPLY_DEBOUNCE_TTL,
    ENQUEUE_MEMO_SECONDS,
    ClaimedWebhook,
    webhook_fail,
    webhooks_claim,
    webhooks_settle,
)
from config.sql import execute as execute_bound
from config.wakeup import wake_on_commit

from .inbound import InboundItem, inbound_messages_receive
from .status import StatusUpdate, messages_apply_statuses

log = logging.getLogger(__name__)

# 1000 events per claim: one UPDATE ... FROM unnest of ~1000 rows is where messages_apply_statuses
# sits near its measured plateau (~64k rows/s, docs/performance.md), while the claim transaction (locks on
# 1000 webhook rows) still commits in well under a second.
APPLY_BATCH_SIZE = 1000
# A task works this long, then hands over to a fresh task so one worker is not monopolised.
APPLY_TIME_BUDGET = 25.0
# After a partial batch the task waits this long before the next claim, so that a steady stream of
# callbacks is applied in batches of ~100 (at 1,000/s) instead of ~20: each batch has a fixed cost of
# four planned statements and a commit (~10 ms), which at ~50 batches/s took a third of a core
# (measured in bench/bench_send.py). A full batch (a backlog) is followed at once.
APPLY_GATHER_SECONDS = 0.1


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


def _apply(events: list[ClaimedWebhook]) -> ProcessResult:
    """Resolve and apply claimed events; settle their rows. Inside the claim transaction."""
    result = ProcessResult(claimed=len(events))
    now = timezone.now()
    pairs: list[tuple[int, DeliveryReport]] = []
    owners: list[ClaimedWebhook] = []
    inbound: list[ClaimedWebhook] = []
    for event in events:
        if event.error:
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
        inbound_errors = inbound_messages_receive(
            items=[
                InboundItem(key=e.id, account_id=e.account_id, message=e.inbound)
                for e in inbound
                if e.inbound is not None
            ]
        )
        result.inbound_stored = sum(1 for e in inbound if not inbound_errors.get(e.id))

    settled = webhooks_settle(events, unmatched=unmatched, failed=inbound_errors, now=now)
    result.processed, result.retried, result.failed = settled.processed, settled.retried, settled.failed
    return result


def webhook_process_batch(
    *, batch_size: int = APPLY_BATCH_SIZE, ids: list[int] | None = None, after_id: int = 0
) -> ProcessResult:
    """Claim up to batch_size due pending events (SKIP LOCKED, pk order, id > after_id) and apply them,
    in one transaction."""
    events: list[ClaimedWebhook] = []
    try:
        with transaction.atomic():
            events = webhooks_claim(batch_size, ids, after_id)
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
            webhook_fail(event_id=event.id, attempts=event.attempts, error=f"{type(exc).__name__}: {exc}")
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
    snapshot finds no key and enqueues a new task, one stored before it is seen by that claim. An
    intake process that saw the key less than ENQUEUE_MEMO_SECONDS before the drop skips its SET NX
    (carriers/services.py): what it stores until then is claimed once more when that window is over.
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
            released = time.monotonic()
            cache.delete(APPLY_DEBOUNCE_KEY)
            result = webhook_process_batch(batch_size=batch_size)
            if result.claimed == 0:
                time.sleep(max(0.0, ENQUEUE_MEMO_SECONDS - (time.monotonic() - released)))
                result = webhook_process_batch(batch_size=batch_size)
            total.add(result)
            if result.claimed == 0:
                return total
            cache.add(APPLY_DEBOUNCE_KEY, 1, timeout=APPLY_DEBOUNCE_TTL)
        if time_budget is not None and (timezone.now() - started).total_seconds() > time_budget:
            from ..tasks import apply_webhooks

            wake_on_commit(apply_webhooks)
            return total
