"""Blast counters and completion, from carrier results. See docs/postprocessing.md.

Counters are RECOUNTED per affected blast with one aggregate (GROUP BY blast_id, status over the
msg_blast index), not incremented: a redelivered report, a retried batch or a re-run dead
letter then cannot double-count, and two drains racing on one blast converge on the truth.
A recount of a 20k-message blast costs a few ms (tens under load), paid once per drain task per affected
blast and, while a backlog drains, at most once a second (the drain's AFTER_BATCH_INTERVAL_SECONDS), not
once per batch; so no increments (and no per-event dedup table they would need to be idempotent); the
figures are in docs/performance.md.

Two steps, because the blast row is often locked by someone else: the send pipeline's prepare chunks
hold it FOR SHARE (so that a cancel waits for them) back to back for the whole preparation of a big
blast, and an UPDATE of the row must wait for every one of them. Recounting inside the drain's batch
made every batch wait behind preparation (measured: docs/performance.md). So:

1. in the batch (this processor): mark the affected blasts in `BlastRecount` (one upsert, blast id
   order), which never touches the blast row;
2. after the batch commits (`blasts_recount_marked`, called by the drain after its last batch, between
   batches at most once a second, and at the start of every drain task): claim marks FOR UPDATE SKIP
   LOCKED, lock their blasts FOR NO KEY UPDATE SKIP LOCKED, recount those, delete their marks. A blast
   that is locked keeps its mark and is recounted by a later pass (at the latest the next 1 s tick):
   counters may lag while a blast is being prepared, events never wait.

Race: the recount's statement runs after both locks are held, with a fresh READ COMMITTED snapshot. A
batch marking the same blast meanwhile waits on the claimed mark (the upsert's DO UPDATE) and
re-inserts it after the recount commits, so a status change the recount did not see always leaves a
mark behind; and only one recount per blast runs at a time (SKIP LOCKED), so none overwrites a newer
count with an older one.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, transaction

from postprocessing.events import EventType
from postprocessing.registry import EventRow, after_batch, processor

from ..models import BlastRollup, BlastStatus
from ..status import CARRIER_ACCEPTED, FINAL, S, sql_literals
from . import RANK

# Why a blast message was blocked when the recipient had opted out: the send pipeline's
# messaging.services.prepare.OPTED_OUT_CODE (it keeps the same counter with the same definition).
OPTED_OUT_ERROR_CODES = ("opted_out",)

_MARK_SQL = """
INSERT INTO postprocessing_blastrecount (blast_id, marked_at)
SELECT DISTINCT m.blast_id, now() FROM messaging_message m
WHERE m.id = ANY(%s::bigint[]) AND m.blast_id IS NOT NULL
ORDER BY 1
ON CONFLICT (blast_id) DO UPDATE SET marked_at = EXCLUDED.marked_at
"""
_CLAIM_MARKS_SQL = """
SELECT blast_id FROM postprocessing_blastrecount ORDER BY blast_id LIMIT %s FOR UPDATE SKIP LOCKED
"""
_LOCK_BLASTS_SQL = """
SELECT id FROM messaging_blast WHERE id = ANY(%s::bigint[]) ORDER BY id FOR NO KEY UPDATE SKIP LOCKED
"""
# Marks are cleared for the blasts recounted and for blasts that no longer exist.
_CLEAR_MARKS_SQL = """
DELETE FROM postprocessing_blastrecount r
WHERE r.blast_id = ANY(%s::bigint[])
   OR (r.blast_id = ANY(%s::bigint[]) AND NOT EXISTS (SELECT 1 FROM messaging_blast b WHERE b.id = r.blast_id))
"""
# Blasts recounted per pass: a 20k-message blast recounts in a few ms, so 50 keep a pass well under a second.
RECOUNT_PASS_SIZE = 50

# The inner GROUP BY reads the blast's rows through msg_blast (status is kept off the index so that
# a report's status change is a HOT update, docs/indexes.md). The same pass gives the blast's rollup
# (messaging.models.BlastRollup: status × error code × 10 s slot of the final report), which its report
# reads; the counters are sums of those cells, opted-outs the blocked cells with the opt-out code.
# Complete = sending, no message short of final, and every recipient has its message (prepare creates
# messages chunk by chunk, so "all final" alone could be true between two chunks). The recipient count
# is read live (a deleted contact drops its BlastRecipient row) and only when nothing is open.
_COMPLETE = f"""b.status = {sql_literals(BlastStatus.SENDING)} AND c.open = 0
    AND c.total >= (SELECT count(*) FROM messaging_blastrecipient r WHERE r.blast_id = b.id)"""  # noqa: S608 — statuses and states via sql_literals, fragments are module constants; values bound

_CODED = sql_literals(S.FAILED, S.UNDELIVERED, S.BLOCKED)
_TIMED = sql_literals(S.DELIVERED, S.FAILED, S.UNDELIVERED)
_RECOUNT_SQL = f"""
WITH cells AS (
    SELECT m.blast_id, m.status,
           CASE WHEN m.status IN ({_CODED}) THEN m.error_code ELSE '' END AS error_code,
           CASE WHEN m.status IN ({_TIMED})
                THEN floor(extract(epoch FROM COALESCE(m.delivered_at, m.failed_at)) / %(slot)s)::bigint END AS slot,
           count(*) AS n
    FROM messaging_message m
    WHERE m.blast_id = ANY(%(ids)s::bigint[]) GROUP BY 1, 2, 3, 4
), counts AS (
    SELECT blast_id,
           sum(n) AS total,
           COALESCE(sum(n) FILTER (WHERE status = ANY(%(accepted)s::text[])), 0) AS sent,
           COALESCE(sum(n) FILTER (WHERE status = {sql_literals(S.DELIVERED)}), 0) AS delivered,
           COALESCE(sum(n) FILTER (WHERE status = {sql_literals(S.FAILED)}), 0) AS failed,
           COALESCE(sum(n) FILTER (WHERE status = {sql_literals(S.UNDELIVERED)}), 0) AS undelivered,
           COALESCE(sum(n) FILTER (WHERE status <> ALL(%(final)s::text[])), 0) AS open,
           COALESCE(sum(n) FILTER (WHERE status = {sql_literals(S.BLOCKED)}
                                     AND error_code = ANY(%(opted_codes)s::text[])), 0) AS opted
    FROM cells GROUP BY blast_id
), kept AS (
    -- the rollup: cells that changed are written, cells that are gone deleted, the rest left alone
    INSERT INTO messaging_blastrollup (blast_id, status, error_code, slot, count)
    SELECT blast_id, status, error_code, slot, n FROM cells ORDER BY 1, 2, 3, 4
    ON CONFLICT (blast_id, status, error_code, slot) DO UPDATE SET count = EXCLUDED.count
    WHERE messaging_blastrollup.count <> EXCLUDED.count
), gone AS (
    DELETE FROM messaging_blastrollup r
    WHERE r.blast_id = ANY(%(ids)s::bigint[])
      AND NOT EXISTS (SELECT 1 FROM cells c WHERE c.blast_id = r.blast_id AND c.status = r.status
                      AND c.error_code = r.error_code AND c.slot IS NOT DISTINCT FROM r.slot)
)
UPDATE messaging_blast b SET
    sent_count = c.sent, delivered_count = c.delivered, failed_count = c.failed,
    undelivered_count = c.undelivered, opted_out_count = c.opted,
    delivery_rate = CASE WHEN c.sent > 0 THEN c.delivered::float / c.sent END,
    status = CASE WHEN {_COMPLETE} THEN {sql_literals(BlastStatus.COMPLETED)} ELSE b.status END,
    -- completion time: the last final report, looked up only for the blast completing now
    completed_at = CASE WHEN {_COMPLETE}
        THEN COALESCE(b.completed_at,
                      (SELECT max(m.status_updated_at) FROM messaging_message m WHERE m.blast_id = b.id),
                      now())
        ELSE b.completed_at END
FROM counts c
WHERE b.id = c.blast_id AND b.id = ANY(%(ids)s::bigint[])
  AND ((b.sent_count, b.delivered_count, b.failed_count, b.undelivered_count, b.opted_out_count)
       IS DISTINCT FROM (c.sent, c.delivered, c.failed, c.undelivered, c.opted)
       OR ({_COMPLETE}))
"""  # noqa: S608 — statuses and states via sql_literals, fragments are module constants; values bound


def blasts_recount(*, blast_ids: Sequence[int]) -> None:
    """Recount the counters of these blasts from their messages; complete those whose messages are all
    final. Call with the blast rows locked (or from a one-off rebuild)."""
    if not blast_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            _RECOUNT_SQL,
            {
                "ids": list(blast_ids),
                "accepted": sorted(CARRIER_ACCEPTED),
                "final": sorted(FINAL),
                "opted_codes": list(OPTED_OUT_ERROR_CODES),
                "slot": BlastRollup.SLOT_SECONDS,
            },
        )


@after_batch
def blasts_recount_marked(*, limit: int = RECOUNT_PASS_SIZE) -> tuple[int, int]:
    """Recount the marked blasts that nobody holds locked. Returns (recounted, left marked)."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM_MARKS_SQL, [limit])
            marked = [r[0] for r in cursor.fetchall()]
            if not marked:
                return 0, 0
            cursor.execute(_LOCK_BLASTS_SQL, [marked])
            locked = [r[0] for r in cursor.fetchall()]
        blasts_recount(blast_ids=locked)
        with connection.cursor() as cursor:
            cursor.execute(_CLEAR_MARKS_SQL, [locked, marked])
            cleared = cursor.rowcount
    return len(locked), len(marked) - cleared


@processor(
    EventType.MESSAGE_SENT,
    EventType.MESSAGE_DELIVERED,
    EventType.MESSAGE_FAILED,
    EventType.MESSAGE_BLOCKED,
    name="blast_counters",
    rank=RANK["blast_counters"],
)
def blast_counters(events: list[EventRow]) -> None:
    """Mark the blasts of these messages for a recount (the recount itself runs after the batch)."""
    ids = [e.message_id for e in events if e.message_id is not None]
    if ids:
        with connection.cursor() as cursor:
            cursor.execute(_MARK_SQL, [ids])


_PROGRESS_SQL = """
INSERT INTO postprocessing_blastprogress (blast_id, at)
SELECT DISTINCT m.blast_id, now() FROM messaging_message m
WHERE m.id = ANY(%s::bigint[]) AND m.blast_id IS NOT NULL
ORDER BY 1
ON CONFLICT (blast_id) DO UPDATE SET at = GREATEST(postprocessing_blastprogress.at, EXCLUDED.at)
"""


@processor(
    EventType.MESSAGE_QUEUED,
    EventType.MESSAGE_SENT,
    EventType.MESSAGE_DELIVERED,
    EventType.MESSAGE_FAILED,
    EventType.MESSAGE_BLOCKED,
    name="blast_progress",
    rank=RANK["blast_progress"],
)
def blast_progress(events: list[EventRow]) -> None:
    """Stamp the blasts of these messages as having moved now (one upsert per batch, blast id order;
    the blast row is not touched). Drives the stalled-blast check (docs/operations.md)."""
    ids = [e.message_id for e in events if e.message_id is not None]
    if ids:
        with connection.cursor() as cursor:
            cursor.execute(_PROGRESS_SQL, [ids])
