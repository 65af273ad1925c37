"""Recovery of lost wake-ups: pending work found from the database alone (docs/recovery.md).

The broker only wakes workers up; every piece of pending work is a row. This module finds the send
pipeline's rows whose task may have been lost (a flushed broker, a publish that failed, a worker that
died holding it) and hands them back to be enqueued. Every re-kick is safe to run twice: the work it
wakes claims its rows with a compare-and-set (a prepared chunk is keyed by its unique client_reference,
a send by prepared → sending), so a duplicate wake-up does nothing.

- Blast chunks not yet prepared (`blasts_rekick_chunks`): a `sending` blast whose message count has not
  moved for CHUNK_LEASE gets the chunks of its recipients that still have no message enqueued again.
- Sends a dead worker left in `sending` without a batch id, prepared messages whose send task was
  lost, and queued conversation messages whose prepare task was lost: `carrier_send.sends_recover`
  (next to the send step whose claims and breaker it shares).

Each kind of row carries its own lease, a time the sweep compares with now and moves on when it acts:
Blast.prepare_kicked_at, Message.sending_at (the send lease), Message.prepared_at (for prepared rows the
send wake-up, for queued rows the prepare wake-up).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from ..models import BlastStatus
from .grouping import CHUNK_SIZE

log = logging.getLogger(__name__)

# A sending blast whose message count has not moved for this long has lost (some of) its prepare
# tasks. Short: a live chunk finishes in well under a second, and a re-kick that races a chunk still in
# the queue costs one recipients query (the duplicate finds every recipient prepared).
CHUNK_LEASE = timedelta(seconds=20)
REKICK_BLASTS = 50


@dataclass(frozen=True, slots=True)
class Chunk:
    blast_id: int
    first_recipient_id: int
    last_recipient_id: int


# Recipients without their message, found by the unique client_reference (the prepare step's own
# idempotency key), in id order.
_MISSING_SQL = """
SELECT br.id FROM messaging_blastrecipient br
WHERE br.blast_id = %s
  AND NOT EXISTS (
      SELECT 1 FROM messaging_message m WHERE m.client_reference = 'bl:' || br.blast_id || ':' || br.contact_id
  )
ORDER BY br.id
"""


def blast_missing_chunks(*, blast_id: int) -> list[Chunk]:
    """Ranges of ≤ CHUNK_SIZE recipients that still have no message (prepared rows inside a range are
    skipped by the chunk itself)."""
    with connection.cursor() as cursor:
        cursor.execute(_MISSING_SQL, [blast_id])
        ids = [r[0] for r in cursor.fetchall()]
    return [Chunk(blast_id, ids[i], ids[min(i + CHUNK_SIZE, len(ids)) - 1]) for i in range(0, len(ids), CHUNK_SIZE)]


def blasts_rekick_chunks(*, lease: timedelta = CHUNK_LEASE) -> list[Chunk]:
    """The sweeper's pass over sending blasts that are not fully prepared. Returns the chunks to enqueue.

    Per blast one count of its messages (index msg_blast). Progress since the last pass moves the
    lease on; no progress for `lease` re-kicks the missing chunks, under a compare-and-set on
    prepare_kicked_at so that two sweepers at once re-kick once."""
    now = timezone.now()
    chunks: list[Chunk] = []
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT b.id, b.recipient_count, b.prepare_seen, b.prepare_kicked_at,
                      (SELECT count(*) FROM messaging_message m WHERE m.blast_id = b.id)
               FROM messaging_blast b
               WHERE b.status = %s AND b.prepare_kicked_at IS NOT NULL
               ORDER BY b.prepare_kicked_at LIMIT %s""",
            [BlastStatus.SENDING, REKICK_BLASTS],
        )
        blasts = cursor.fetchall()
    for blast_id, recipient_count, seen, kicked_at, count in blasts:
        with transaction.atomic(), connection.cursor() as cursor:
            if count >= recipient_count:  # every recipient has its message: nothing left to lose
                cursor.execute(
                    "UPDATE messaging_blast SET prepare_kicked_at = NULL, prepare_seen = %s WHERE id = %s",
                    [count, blast_id],
                )
                continue
            if count != seen or kicked_at > now - lease:
                if count != seen:  # progress: the chunks are being prepared; the lease starts again
                    cursor.execute(
                        "UPDATE messaging_blast SET prepare_kicked_at = %s, prepare_seen = %s "
                        "WHERE id = %s AND prepare_kicked_at = %s",
                        [now, count, blast_id, kicked_at],
                    )
                continue
            cursor.execute(
                "UPDATE messaging_blast SET prepare_kicked_at = %s WHERE id = %s AND prepare_kicked_at = %s",
                [now, blast_id, kicked_at],
            )
            if cursor.rowcount != 1:  # another sweeper took it
                continue
            missing = blast_missing_chunks(blast_id=blast_id)
            if not missing:  # recipients deleted since launch: fully prepared after all
                cursor.execute("UPDATE messaging_blast SET prepare_kicked_at = NULL WHERE id = %s", [blast_id])
                continue
            log.warning(
                "blast %s: no prepare progress for %ss; re-kicking %s chunk(s)",
                blast_id,
                int(lease.total_seconds()),
                len(missing),
            )
            chunks.extend(missing)
    return chunks
