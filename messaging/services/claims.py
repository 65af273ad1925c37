"""The send step's compare-and-set: prepared → sending, set-based, for a list of ids.

A retried, redelivered or duplicated send task claims nothing that another claimed first, so no
message is handed to the carrier twice. The guard is the transition table (`sources_for`), the same
data as messages_apply_statuses; "sending" emits no outbox event, so none is written here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import connection

from ..status import MessageStatus as S
from ..status import sources_for
from . import sql


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    line_id: int
    blast_id: int | None
    recipient: str  # E.164
    rendered_body: str
    send_params: dict | None
    segments: int
    blast_body: str | None


def new_batch_ref() -> str:
    """Our reference of one carrier call, sent as Sinch's client_reference (≤ 128; ours is 34)."""
    return "b:" + uuid.uuid4().hex


# SKIP LOCKED with ORDER BY id: rows are locked in one order (no deadlock between two claims of
# overlapping lists) and a duplicate task running at the same moment skips instead of waiting.
_CLAIM_SQL = """
WITH pick AS (
    SELECT id FROM messaging_message
    WHERE id = ANY(%b::bigint[]) AND status = ANY(%b::text[])
    ORDER BY id FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE messaging_message m SET status = %s, sending_at = now(), status_updated_at = now(),
           send_attempts = m.send_attempts + 1, send_batch_ref = %s
    FROM pick WHERE m.id = pick.id
    RETURNING m.id, m.line_id, m.blast_id, m.carrier_recipient, m.rendered_body, m.send_params, m.segments
)
SELECT claimed.*, b.body FROM claimed LEFT JOIN messaging_blast b ON b.id = claimed.blast_id
ORDER BY claimed.id
"""

_RESUME_SQL = """
SELECT m.id, m.line_id, m.blast_id, m.carrier_recipient, m.rendered_body, m.send_params, m.segments, b.body
FROM messaging_message m LEFT JOIN messaging_blast b ON b.id = m.blast_id
WHERE m.send_batch_ref = %s AND m.status = 'sending' AND m.carrier_batch_id = ''
ORDER BY m.id
"""


def _rows(rows) -> list[Claimed]:
    import json

    out = []
    for mid, line_id, blast_id, recipient, rendered, params, segs, blast_body in rows:
        if isinstance(params, str):
            params = json.loads(params)
        out.append(Claimed(mid, line_id, blast_id, recipient, rendered, params, segs, blast_body))
    return out


def messages_claim_for_send(*, message_ids: list[int], batch_ref: str) -> list[Claimed]:
    """prepared → sending for those of `message_ids` still prepared; one statement. Returns what we own."""
    if not message_ids:
        return []
    return _rows(sql.execute(_CLAIM_SQL, [list(message_ids), list(sources_for(S.SENDING)), S.SENDING, batch_ref]))


def messages_claimed_by(*, batch_ref: str) -> list[Claimed]:
    """Messages a batch reference still holds in 'sending' without a batch id (retry and recovery)."""
    return _rows(sql.execute(_RESUME_SQL, [batch_ref]))


def messages_set_batch_ref(*, message_ids: list[int], batch_ref: str) -> None:
    """Give part of a claim its own reference (a claim that splits into several carrier calls)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE messaging_message SET send_batch_ref = %s WHERE id = ANY(%s::bigint[]) AND status = 'sending'",
            [batch_ref, list(message_ids)],
        )
