"""Thin Celery entry points of the send pipeline: ids in, one service call, safe to run twice.

Tasks carry lists of ids (one task per message would cap the pipeline at ~700/s, docs/performance.md);
idempotency lives in the database (the prepared → sending compare-and-set, unique client_reference).
See docs/send-pipeline.md.
"""

from __future__ import annotations

import logging
import random
import time

from celery import shared_task
from django.conf import settings

from carriers.services import APPLY_TASK_NAME
from config.wakeup import wake

from .services import carrier_send, claims, prepare, recovery, reports
from .services.grouping import SendGroup

log = logging.getLogger(__name__)

# A paced remainder never waits in the broker longer than this; it re-checks the bucket instead.
MAX_PACING_DELAY_S = 30.0
# No countdown exceeds this (a 429's Retry-After included), nor 80 % of the broker's visibility timeout.
# The worker's broker heartbeat (config/broker_heartbeat.py) already keeps a waiting task from being
# handed out twice; the cap is a second guard (a worker started without the step). Each countdown
# extends the send lease by its wait.
MAX_RETRY_DELAY_S = 60.0
# A paced remainder's prepared_at is renewed when it would be older than this at the next task's due
# time: half of carrier_send.PREPARED_STALE (40 s), so a task delayed by up to 20 s more in the broker
# is still not taken for lost by the sweep.
TOUCH_AGE_S = carrier_send.PREPARED_STALE.total_seconds() / 2
# Spread of the tasks that wait for a carrier's breaker, so they do not all wake in the same instant.
PAUSE_JITTER_S = 1.0


def _send_argsrepr(line_id: int, message_ids: list[int]) -> str:
    """What a send task's headers show of its arguments. Celery's default is a saferepr of the id list,
    walked item by item on every publish (~40 % of a paced re-publish's CPU at 1,000 ids, cProfile)."""
    return f"[{line_id}, <{len(message_ids)} message ids>, …]"


def enqueue_send_groups(groups: list[SendGroup]) -> None:
    """Publish one send task per carrier group. Call after commit (tasks read committed rows only).
    A publish the broker refuses is logged: the prepared rows are re-kicked by release_stuck_sends."""
    for g in groups:
        wake(
            send_batch,
            [g.line_id, g.message_ids, g.segments, g.batched],
            argsrepr=_send_argsrepr(g.line_id, g.message_ids),
        )


@shared_task(name="messaging.prepare_blast_chunk", acks_late=True)
def prepare_blast_chunk(
    blast_id: int, first_recipient_id: int, last_recipient_id: int, then: list[list[list[int]]] | None = None
) -> int:
    """then: chains of further ranges of the blast ([[lo, hi], …] each); once this chunk is prepared, the
    first range of each chain is enqueued carrying the rest of its chain (sending.blast_chunk_plan). A
    redelivered link enqueues its successor twice: the duplicate prepares nothing (client_reference)."""
    groups = prepare.blast_prepare_chunk(
        blast_id=blast_id, first_recipient_id=first_recipient_id, last_recipient_id=last_recipient_id
    )
    enqueue_send_groups(groups)  # the prepare transaction has committed when the service returns
    for chain in then or []:
        (lo, hi), rest = chain[0], chain[1:]
        wake(prepare_blast_chunk, [blast_id, lo, hi, [rest] if rest else None])
    return sum(len(g.message_ids) for g in groups)


@shared_task(name="messaging.prepare_messages", acks_late=True)
def prepare_messages(message_ids: list[int], check_opt_out: bool = True) -> int:
    groups = prepare.messages_prepare(message_ids=message_ids, check_opt_out=check_opt_out)
    enqueue_send_groups(groups)
    return sum(len(g.message_ids) for g in groups)


def _backoff(attempt: int) -> float:
    """Exponential backoff with full jitter (settings SEND_RETRY_BASE/CAP_SECONDS)."""
    ceiling = min(settings.SEND_RETRY_CAP_SECONDS, settings.SEND_RETRY_BASE_SECONDS * 2 ** min(attempt, 30))
    return random.uniform(0, ceiling)  # noqa: S311 - jitter, not crypto


def _countdown(delay: float, ceiling: float) -> float:
    visibility = float(settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout") or 3600)
    return max(0.0, min(delay, ceiling, 0.8 * visibility))


def _pause_delay(wait: float) -> float:
    return wait + random.uniform(0, PAUSE_JITTER_S)  # noqa: S311 - jitter, not crypto


def _follow_up(
    line_id: int, outcome: carrier_send.SendOutcome, attempt: int, since: float | None, touched_at: float | None = None
) -> None:
    if outcome.rest is not None:
        if outcome.paused is not None:
            wait = _pause_delay(outcome.paused)
        elif outcome.rest_due is not None:  # counted from the bucket take, not from after the carrier call
            wait = outcome.rest_due - time.time()
        else:
            wait = outcome.rest_delay
        delay = _countdown(wait, MAX_PACING_DELAY_S)
        # The remainder's prepared_at keeps the stale-prepared sweep away (PREPARED_STALE). Touching it on
        # every pacing cycle rewrote the whole remainder once per carrier call (a 300-recipient blast on a
        # 10/s line: ~4,500 row updates for 300 sends); it is touched only when it would otherwise be
        # more than half the stale age old by the time the next task is due.
        due = time.time() + delay
        if touched_at is None or due - touched_at > TOUCH_AGE_S:
            carrier_send.messages_touch_prepared(message_ids=outcome.rest.message_ids)
            touched_at = time.time()
        wake(
            send_batch,
            [line_id, outcome.rest.message_ids, outcome.rest.segments, outcome.rest.batched, touched_at],
            countdown=delay,
            argsrepr=_send_argsrepr(line_id, outcome.rest.message_ids),
        )
    now = time.time()
    for ref in outcome.retry_refs:
        first_error = since or now
        if now - first_error > settings.SEND_RETRY_WINDOW_SECONDS:
            log.warning(
                "batch %s: giving up after %s attempts over %.0f s; recovery takes over after the lease",
                ref,
                attempt + 1,
                now - first_error,
            )
            continue
        if outcome.paused is not None:  # the breaker is open: wait for its probe, the backoff does not grow
            delay, next_attempt = _pause_delay(outcome.paused), attempt
        else:
            delay, next_attempt = max(_backoff(attempt), outcome.retry_after or 0), attempt + 1
        delay = _countdown(delay, MAX_RETRY_DELAY_S)
        # The send lease must outlast the wait, or the recovery sweep would take the batch over meanwhile.
        claims.messages_extend_lease(batch_ref=ref, seconds=delay)
        wake(send_resume, [line_id, ref, next_attempt, first_error], countdown=delay)


@shared_task(name="messaging.send_batch", acks_late=True)
def send_batch(
    line_id: int,
    message_ids: list[int],
    segments: list[int] | None = None,
    batched: bool = False,
    touched_at: float | None = None,
) -> int:
    """batched: a blast's group, paced in batching windows (a task enqueued before the flag existed
    sends as a conversation message does, unit by unit). touched_at: when a paced remainder's
    prepared_at was last set (unix time; None: never by a remainder)."""
    outcome = carrier_send.batch_send(line_id=line_id, message_ids=message_ids, segments=segments, batched=batched)
    _follow_up(line_id, outcome, 0, None, touched_at)
    return outcome.sent


@shared_task(name="messaging.send_resume", acks_late=True)
def send_resume(line_id: int, batch_ref: str, attempt: int = 1, first_error_at: float | None = None) -> int:
    """A batch whose carrier call failed transiently: ask the carrier by reference, send again if it has
    nothing. Retried with backoff until SEND_RETRY_WINDOW_SECONDS after `first_error_at` (unix time)."""
    outcome = carrier_send.batch_resume(line_id=line_id, batch_ref=batch_ref)
    _follow_up(line_id, outcome, attempt, first_error_at)
    return outcome.sent


@shared_task(name="messaging.release_due")
def release_due() -> int:
    """Beat, every few seconds: scheduled blasts and messages whose time has come."""
    from .services import sending

    started = sending.blasts_start_due()
    groups = prepare.messages_release_due()
    enqueue_send_groups(groups)
    return started + sum(len(g.message_ids) for g in groups)


@shared_task(name="messaging.release_stuck_sends")
def release_stuck_sends() -> int:
    """Beat, every 5 s: the send pipeline's sweeper (docs/recovery.md). Blast chunks not yet prepared,
    sends a dead worker left in 'sending', prepared and queued messages whose task was lost."""
    chunks = recovery.blasts_rekick_chunks()
    for c in chunks:
        wake(prepare_blast_chunk, [c.blast_id, c.first_recipient_id, c.last_recipient_id])
    result = carrier_send.sends_recover()
    enqueue_send_groups(result.to_send)
    if result.to_prepare:
        wake(prepare_messages, [result.to_prepare])
    return len(chunks) + result.recorded_sent + sum(len(g.message_ids) for g in result.to_send)


# The carriers app declares the name (its intake publishes it) and keeps its "carriers." prefix, so the
# route (config/queues.py: "carriers.*" → webhooks queue) and the beat sweep (config/beat.py) are unchanged.
@shared_task(name=APPLY_TASK_NAME, acks_late=True, ignore_result=True)
def apply_webhooks() -> dict:
    """Apply stored carrier webhooks in batches. Safe to run twice or concurrently (SKIP LOCKED claims).

    Enqueued by the webhook view through a Redis SET NX debounce, and every 15 s by beat as a sweep
    (retries of early reports, anything a lost enqueue left behind).
    """
    result = reports.webhook_process(gather=reports.APPLY_GATHER_SECONDS)
    return {"claimed": result.claimed, "applied": result.statuses_applied, "retried": result.retried}
