"""The send step (queue `send`): pacing, the claim, the carrier call, the result. Nothing else.

Per carrier call: one claim statement, one call, one status statement (messages_apply_statuses).
Crash safety: the claim writes a fresh batch reference ("b:<uuid>") on the messages before the call
and the reference travels as Sinch's client_reference; whoever finds messages left in 'sending'
without a batch id (a retry after a transient error, or `sends_recover` after the lease) asks the
carrier for that reference: found → sent with its batch id; not found → prepared again and re-sent
(the send lease and the other sweeps: docs/recovery.md). Every call's outcome feeds the carrier
account's circuit breaker (carriers/breaker.py); while it is open, sends of the account's lines wait
instead of calling. See docs/send-pipeline.md.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from django.db import connection, transaction
from django.utils import timezone

from carriers import breaker
from carriers.base import CarrierError, OutboundBatch, PermanentCarrierError
from carriers.services import webhooks_wake_waiting
from config.wakeup import wake_on_commit_call

from .. import cache, ratelimit
from ..counters import sends_count
from ..status import MessageStatus as S
from ..status import sql_literals
from .claims import (
    Claimed,
    messages_claim_for_send,
    messages_hold_for_resume,
    messages_set_batch_ref,
    new_batch_ref,
)
from .grouping import SEND_ROW_COLUMNS, SendGroup, SendRow, group_for_send
from .status import StatusUpdate, messages_apply_statuses
from .templates import carrier_template

log = logging.getLogger(__name__)

# The send lease (docs/recovery.md): how long a reference may sit in 'sending' without a batch id,
# unrenewed, before the recovery sweep takes it over and asks the carrier. The claim sets it, every
# retry renews it while it holds the rows (messages_hold_for_resume) and a scheduled retry extends it
# by its wait (claims.messages_extend_lease, tasks._follow_up), so only a dead owner lets it run out.
# A live owner calls the carrier right after it claims or renews, and a call is bounded by the
# adapter's timeouts (connect 3 s + read 15 s, carriers/sinch.py): 40 s is more than twice that.
# Lease + the sweep's 5 s period + one lookup is what a dead worker's claim waits: under a minute.
SEND_LEASE = timedelta(seconds=40)
# A prepared message whose send task was lost is re-enqueued after this. A send task normally runs
# within a second of its prepare; a paced remainder or a breaker-paused group touches prepared_at when
# it is re-enqueued (countdown ≤ 30 s), so it is never taken for lost.
PREPARED_STALE = timedelta(seconds=40)
# Added to a batched remainder's due time after the call spacing: the broker's countdown fires a
# millisecond or so either side of it, and a take before the spacing has passed is an empty task.
DUE_MARGIN_S = 0.005
# A queued conversation message whose prepare task was lost (it normally runs within milliseconds).
QUEUED_STALE = timedelta(seconds=30)


@dataclass
class SendOutcome:
    sent: int = 0
    failed: int = 0
    not_claimed: int = 0
    retry_refs: list[str] = field(default_factory=list)  # carrier calls that hit a transient error
    rest: SendGroup | None = None  # what pacing did not allow yet
    rest_delay: float = 0.0  # seconds from the bucket take until `rest` may have its next call's worth
    # When `rest` is due (unix time): the take's time + rest_delay, and for a blast's group not before its
    # line's next batched call may start (the call spacing counts from this call's start). The follow-up
    # counts its countdown from here, not from after the carrier call (None: paused, use rest_delay).
    rest_due: float | None = None
    retry_after: float | None = None
    # The carrier account's breaker is open: nothing was called; try again in this many seconds.
    paused: float | None = None
    answered_at: float | None = None  # when the last carrier call returned or failed (unix time)


def _fail(rows: list[Claimed], *, code: str, reason: str) -> int:
    now = timezone.now()
    changed = messages_apply_statuses(
        updates=[StatusUpdate(r.id, S.FAILED, at=now, error_code=code[:32], error_reason=reason) for r in rows]
    )
    return len(changed)


def _record_sent(rows: list[Claimed], batch_id: str) -> int:
    now = timezone.now()
    changed = messages_apply_statuses(
        updates=[StatusUpdate(r.id, S.SENT, at=now, carrier_batch_id=batch_id) for r in rows]
    )
    if rows:
        sends_count(line_id=rows[0].line_id, n=len(changed))  # /metrics: sends per line (one batch = one line)
    _wake_waiting_reports(batch_id)
    return len(changed)


def _wake_waiting_reports(batch_id: str) -> None:
    """Reports that beat the carrier call's return wait for the batch id just recorded: applied once it
    commits, not after their backoff and the beat sweep (5-15 s later)."""
    wake_on_commit_call(partial(webhooks_wake_waiting, batch_ids=[batch_id]))


def build_batch(rows: list[Claimed], *, from_number: str, batch_ref: str, callback_url: str) -> OutboundBatch:
    """The Sinch batch for rows that share a template (blast) or a body."""
    first = rows[0]
    recipients = [r.recipient for r in rows]
    if first.send_params is not None and first.blast_body is not None:
        template = carrier_template(first.blast_body)
        parameters = {
            slot.name: {**{r.recipient: (r.send_params or {}).get(slot.name, "") for r in rows}, "default": ""}
            for slot in template.slots
        }
        body = template.body
    else:
        parameters, body = {}, first.rendered_body
    return OutboundBatch(
        from_number=from_number,
        recipients=recipients,
        body=body,
        parameters=parameters,
        client_reference=batch_ref,
        callback_url=callback_url,
    )


def _split(rows: list[Claimed]) -> list[list[Claimed]]:
    """Normally one carrier call per claim (prepare grouped them); split defensively if not."""
    groups: dict[tuple, tuple[list[Claimed], set[str]]] = {}
    for r in rows:
        key = ("t", r.blast_id) if r.send_params is not None and r.blast_body is not None else ("r", r.rendered_body)
        bucket = groups.setdefault(key, ([], set()))
        if r.recipient in bucket[1]:
            bucket = groups.setdefault(key + (r.id,), ([], set()))
        bucket[0].append(r)
        bucket[1].add(r.recipient)
    return [members for members, _ in groups.values()]


def _carrier_failed(account_id: int, exc: CarrierError) -> None:
    """A transient error counts against the breaker, except a 429: the carrier is up and pacing us."""
    if exc.http_status != 429:
        breaker.record_failure(account_id=account_id)


def _call(adapter, account, line, rows: list[Claimed], batch_ref: str, outcome: SendOutcome) -> None:
    batch = build_batch(rows, from_number=line.phone_number, batch_ref=batch_ref, callback_url=account.callback_url)
    try:
        try:
            result = adapter.send_batch(batch)
        finally:  # answered, refused or failed: the carrier has stamped it by now if it got it
            outcome.answered_at = time.time()
    except PermanentCarrierError as exc:
        breaker.record_success(account_id=account.id)  # it answered: up, the request was wrong
        log.warning("carrier refused batch %s: %s %s", batch_ref, exc.code, exc.http_status)
        outcome.failed += _fail(
            rows, code=exc.code or str(exc.http_status or "carrier_error"), reason=exc.text or str(exc)
        )
        return
    except CarrierError as exc:  # transient: the call may or may not have reached the carrier
        _carrier_failed(account.id, exc)
        log.info("transient carrier error on %s: %s", batch_ref, exc)
        outcome.retry_refs.append(batch_ref)
        if exc.retry_after:
            outcome.retry_after = max(outcome.retry_after or 0, exc.retry_after)
        return
    breaker.record_success(account_id=account.id)
    outcome.sent += _record_sent(rows, result.batch_id)


def _batch_need(segs: list[int], *, rate: float, batched: bool) -> int:
    """The units worth a carrier call for the messages `segs`: the first message's segments (a
    conversation message goes as soon as they are there), or for a blast the longest prefix that fits
    in one batching window of the line's rate (about r × W recipients; all of them if fewer remain)."""
    if not segs:
        return 1
    if not batched:
        return segs[0]
    target, need = ratelimit.batch_units(rate), 0
    for s in segs:
        if need and need + s > target:
            break
        need += s
    return need


def batch_send(
    *, line_id: int, message_ids: list[int], segments: list[int] | None = None, batched: bool = False
) -> SendOutcome:
    """Pace, claim and send one group of prepared messages of one line.

    batched (a blast's group): wait until a batching window's worth of the line's rate is free and send
    that much in one call, rather than the first free unit (docs/send-pipeline.md, "Batching window")."""
    outcome = SendOutcome()
    line = cache.line_info(line_id)
    if line is None or not message_ids:
        return outcome
    rate = line.rate_per_second
    segs = [max(1, s) for s in (segments or [1] * len(message_ids))]
    need = _batch_need(segs, rate=rate, batched=batched)
    spacing = ratelimit.window() + ratelimit.CALL_SPACING_SLACK_S if batched else 0.0
    taken_at = time.time()
    grant = ratelimit.take_detail(line_id=line_id, rate=rate, want=sum(segs), min_grant=need, spacing=spacing)
    granted = grant.granted
    n = used = 0
    for s in segs:
        if used + s > granted:
            break
        used += s
        n += 1
    ratelimit.refund(line_id=line_id, rate=rate, units=granted - used)
    if n < len(message_ids):
        outcome.rest = SendGroup(line_id, list(message_ids[n:]), segs[n:], batched=batched)
        # The remainder waits for its own next call's worth (a whole batch for a blast), not one unit.
        rest_need = _batch_need(segs[n:], rate=rate, batched=batched)
        outcome.rest_delay = ratelimit.wait_for(rate=rate, need=rest_need, left=grant.left + granted - used)
    if n == 0:
        outcome.rest_delay = max(outcome.rest_delay, grant.wait)  # the bucket's wait includes the spacing
        outcome.rest_due = taken_at + outcome.rest_delay
        return outcome
    if outcome.rest is not None:
        outcome.rest_due = taken_at + outcome.rest_delay
    # The carrier is down: claim nothing, give the units back, the whole group waits for the probe.
    verdict = breaker.check(account_id=line.carrier_account_id) if line.carrier_account_id else None
    if verdict is not None and not verdict.allowed:
        ratelimit.refund(line_id=line_id, rate=rate, units=used)
        outcome.rest = SendGroup(line_id, list(message_ids), segs, batched=batched)
        outcome.rest_delay = outcome.paused = verdict.wait
        outcome.rest_due = None
        return outcome
    probing = verdict is not None and verdict.action == breaker.PROBE
    batch_ref = new_batch_ref()
    rows = messages_claim_for_send(message_ids=list(message_ids[:n]), batch_ref=batch_ref)
    outcome.not_claimed = n - len(rows)
    if outcome.not_claimed:
        claimed = {r.id for r in rows}
        lost = sum(s for mid, s in zip(message_ids[:n], segs[:n], strict=True) if mid not in claimed)
        ratelimit.refund(line_id=line_id, rate=rate, units=lost)
    adapter, account = cache.adapter_for_line(line) if rows else (None, None)
    if not rows or adapter is None or not line.is_active:
        if probing and line.carrier_account_id:  # no call will report back: let the next caller probe
            breaker.release_probe(account_id=line.carrier_account_id)
        if rows:
            outcome.failed += _fail(rows, code="no_carrier", reason="The line has no active carrier account.")
        return outcome
    if batched:
        called_at = ratelimit.mark_call(line_id=line_id, rate=rate)
        if outcome.rest_due is not None:
            # Due when the spacing lets its take through: due at the bucket's refill alone, it came back
            # W + slack − (this call's claim, HTTP and status) after the mark, found nothing, and was
            # published again — an empty task for every carrier call (docs/send-pipeline.md).
            outcome.rest_due = max(outcome.rest_due, called_at + spacing + DUE_MARGIN_S)
    for i, group in enumerate(_split(rows)):
        ref = batch_ref
        if i:
            ref = new_batch_ref()
            messages_set_batch_ref(message_ids=[r.id for r in group], batch_ref=ref)
        _call(adapter, account, line, group, ref, outcome)
    if batched and outcome.answered_at is not None:
        called_at = ratelimit.mark_answered(line_id=line_id, rate=rate, answered_at=outcome.answered_at)
        if outcome.rest_due is not None:
            outcome.rest_due = max(outcome.rest_due, called_at + spacing + DUE_MARGIN_S)
    return outcome


def batch_resume(*, line_id: int, batch_ref: str) -> SendOutcome:
    """After a transient error: did the carrier get the call after all? Record it, else send it again.

    The reference's rows stay locked for the whole step (one transaction around the lookup and the
    call), so a duplicate of this task or the recovery sweep cannot ask and send at the same time."""
    outcome = SendOutcome()
    line = cache.line_info(line_id)
    if line is None:
        return outcome
    with transaction.atomic():
        rows = messages_hold_for_resume(batch_ref=batch_ref)
        if not rows:
            return outcome  # done, or another resume / the sweep holds it
        adapter, account = cache.adapter_for_line(line)
        if adapter is None:
            outcome.failed += _fail(rows, code="no_carrier", reason="The line has no active carrier account.")
            return outcome
        verdict = breaker.check(account_id=account.id)
        if not verdict.allowed:
            outcome.retry_refs.append(batch_ref)
            outcome.paused = verdict.wait
            return outcome
        try:
            batch_id = adapter.find_batch_by_client_reference(batch_ref)
        except CarrierError as exc:
            _carrier_failed(account.id, exc)
            outcome.retry_refs.append(batch_ref)
            if exc.retry_after:
                outcome.retry_after = exc.retry_after
            return outcome
        breaker.record_success(account_id=account.id)
        if batch_id:
            outcome.sent += _record_sent(rows, batch_id)
            return outcome
        _call(adapter, account, line, rows, batch_ref, outcome)
    return outcome


def messages_touch_prepared(*, message_ids: list[int]) -> None:
    """A paced remainder is re-enqueued: mark it fresh so the stale-prepared sweep leaves it alone."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE messaging_message SET prepared_at = now() WHERE id = ANY(%s::bigint[])"  # noqa: S608 — statuses via sql_literals, fragments and table names are module constants; values bound
            f" AND status = {sql_literals(S.PREPARED)}",
            [list(message_ids)],
        )


# ---------------------------------------------------------------------------------------------- recovery
# The sweeps find their rows in the work queue (messaging_message_inflight, an index probe on its lease
# columns), then check them on the message row itself: the queue is kept by triggers in the same
# transaction, so the two agree, and the row's own status guards every write.
_STUCK_SQL = f"""
SELECT m.send_batch_ref, m.line_id, array_agg(m.id ORDER BY m.id)
FROM messaging_message_inflight f JOIN messaging_message m ON m.id = f.message_id
WHERE f.status = {sql_literals(S.SENDING)} AND f.sending_at < %s
  AND m.status = {sql_literals(S.SENDING)} AND m.carrier_batch_id = ''
GROUP BY m.send_batch_ref, m.line_id
LIMIT 200
"""  # noqa: S608 — statuses via sql_literals, fragments and table names are module constants; values bound

_HOLD_STUCK_SQL = """
SELECT id FROM messaging_message
WHERE send_batch_ref = %s AND status = %s AND carrier_batch_id = '' AND sending_at < %s
ORDER BY id FOR UPDATE SKIP LOCKED
"""

_STALE_PREPARED_SQL = f"""
UPDATE messaging_message SET prepared_at = now()
WHERE id IN (
    SELECT m.id FROM messaging_message m
    WHERE m.id IN (SELECT f.message_id FROM messaging_message_inflight f
                   WHERE f.status = {sql_literals(S.PREPARED)} AND f.prepared_at < %s)
      AND m.status = {sql_literals(S.PREPARED)} AND m.prepared_at < %s
    ORDER BY m.id LIMIT 20000 FOR UPDATE OF m SKIP LOCKED
)
RETURNING {SEND_ROW_COLUMNS}
"""  # noqa: S608 — statuses via sql_literals, fragments and table names are module constants; values bound

# Queued outbound conversation messages (blast messages are inserted prepared): prepared_at, empty until
# the prepare step, holds the last re-kick, so a message is woken once per QUEUED_STALE, not every pass.
_STALE_QUEUED_SQL = f"""
UPDATE messaging_message SET prepared_at = now()
WHERE id IN (
    SELECT m.id FROM messaging_message m
    WHERE m.id IN (SELECT f.message_id FROM messaging_message_inflight f WHERE f.status = {sql_literals(S.QUEUED)})
      AND m.status = {sql_literals(S.QUEUED)} AND m.direction = 'out' AND m.blast_id IS NULL
      AND COALESCE(m.prepared_at, m.created_at) < %s
    ORDER BY m.id LIMIT 5000 FOR UPDATE OF m SKIP LOCKED
)
RETURNING id
"""  # noqa: S608 — statuses via sql_literals, fragments and table names are module constants; values bound


@dataclass
class RecoveryResult:
    recorded_sent: int = 0
    to_send: list[SendGroup] = field(default_factory=list)
    to_prepare: list[int] = field(default_factory=list)


def sends_recover(
    *,
    lease: timedelta = SEND_LEASE,
    prepared_stale: timedelta = PREPARED_STALE,
    queued_stale: timedelta = QUEUED_STALE,
) -> RecoveryResult:
    """The sweeper's pass over the send step (docs/recovery.md): messages stuck in 'sending' past the
    lease with no batch id, and prepared/queued messages whose task was lost, each re-kicked once per
    lease. The caller enqueues `to_send` / `to_prepare`."""
    result = RecoveryResult()
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_STUCK_SQL, [now - lease])
        stuck = cursor.fetchall()
    released: list[int] = []
    for batch_ref, line_id, _ids in stuck:
        line = cache.line_info(line_id)
        adapter, account = cache.adapter_for_line(line) if line else (None, None)
        if adapter is None or account is None:
            continue
        if not breaker.is_closed(account_id=account.id):
            continue  # the carrier is down: its lookup would fail; the retries or a later pass decide
        # Held (locked, still past the lease) for the lookup and its consequence: a retry of the same
        # reference that renewed its lease meanwhile, or holds it now, is left to finish its work.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_HOLD_STUCK_SQL, [batch_ref, S.SENDING, now - lease])
            ids = [r[0] for r in cursor.fetchall()]
            if not ids:
                continue
            try:
                batch_id = adapter.find_batch_by_client_reference(batch_ref) if batch_ref else None
            except CarrierError as exc:
                _carrier_failed(account.id, exc)
                log.warning("recovery: carrier lookup of %s failed (%s); next pass", batch_ref, exc)
                continue
            if batch_id:
                changed = messages_apply_statuses(
                    updates=[StatusUpdate(i, S.SENT, at=now, carrier_batch_id=batch_id) for i in ids]
                )
                result.recorded_sent += len(changed)
                _wake_waiting_reports(batch_id)
            else:
                # sending → prepared: legal only because the carrier provably has no batch for this reference.
                changed = messages_apply_statuses(updates=[StatusUpdate(i, S.PREPARED, at=now) for i in ids])
                released.extend(i for i, st in changed.items() if st == S.PREPARED)
    with transaction.atomic(), connection.cursor() as cursor:
        if released:
            cursor.execute("UPDATE messaging_message SET prepared_at = now() WHERE id = ANY(%s::bigint[])", [released])
        cursor.execute(_STALE_PREPARED_SQL, [now - prepared_stale, now - prepared_stale])
        rows = cursor.fetchall()
        if released:
            cursor.execute(
                f"""SELECT {SEND_ROW_COLUMNS}
                   FROM messaging_message WHERE id = ANY(%s::bigint[]) AND status = {sql_literals(S.PREPARED)}""",  # noqa: S608 — statuses via sql_literals, fragments and table names are module constants; values bound
                [released],
            )
            seen = {r[0] for r in rows}
            rows += [r for r in cursor.fetchall() if r[0] not in seen]
        cursor.execute(_STALE_QUEUED_SQL, [now - queued_stale])
        result.to_prepare = sorted(r[0] for r in cursor.fetchall())
    result.to_send = group_for_send(sorted(SendRow(*r) for r in rows))
    return result
