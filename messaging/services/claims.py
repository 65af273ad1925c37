"""The send step's compare-and-set: prepared → sending, set-based, for a list of ids.

A retried, redelivered or duplicated send task claims nothing that another claimed first, so no
message is handed to the carrier twice. The guard is the transition table (`sources_for`), the same
data as messages_apply_statuses; "sending" emits no outbox event, so none is written here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import connection

from config import sql

from ..status import MessageStatus as S
from ..status import sources_for, sql_literals


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

# The retry's hold on a reference: row locks for the length of the caller's transaction (SKIP LOCKED:
# a duplicate retry task or the recovery sweep holding them gets nothing, so only one of them may ask
# the carrier and send again) and a renewed lease (sending_at), so the sweep leaves a reference alone
# while its retries are alive, however long the carrier is down.
_RESUME_SQL = """
WITH held AS (
    SELECT id FROM messaging_message
    WHERE send_batch_ref = %s AND status = %s AND carrier_batch_id = ''
    ORDER BY id FOR UPDATE SKIP LOCKED
), renewed AS (
    UPDATE messaging_message m SET sending_at = now() FROM held WHERE m.id = held.id
    RETURNING m.id, m.line_id, m.blast_id, m.carrier_recipient, m.rendered_body, m.send_params, m.segments
)
SELECT renewed.*, b.body FROM renewed LEFT JOIN messaging_blast b ON b.id = renewed.blast_id
ORDER BY renewed.id
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


def messages_hold_for_resume(*, batch_ref: str) -> list[Claimed]:
    """Messages a batch reference still holds in 'sending' without a batch id, locked (skipping rows
    another transaction holds) and their lease renewed. Call inside transaction.atomic()."""
    return _rows(sql.execute(_RESUME_SQL, [batch_ref, S.SENDING]))


def messages_extend_lease(*, batch_ref: str, seconds: float) -> int:
    """A retry is scheduled `seconds` from now: the lease must outlast the wait, or recovery would take
    the reference over while its owner is merely backing off. Returns the rows still held."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE messaging_message SET sending_at = now() + make_interval(secs => %s)
               WHERE send_batch_ref = %s AND status = {sql_literals(S.SENDING)} AND carrier_batch_id = ''""",  # noqa: S608 — statuses via sql_literals, fragments and table names are module constants; values bound
            [float(seconds), batch_ref],
        )
        return cursor.rowcount


def messages_set_batch_ref(*, message_ids: list[int], batch_ref: str) -> None:
    """Give part of a claim its own reference (a claim that splits into several carrier calls)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE messaging_message SET send_batch_ref = %s WHERE id = ANY(%s::bigint[])"  # noqa: S608 — statuses via sql_literals, fragments and table names are module constants; values bound
            f" AND status = {sql_literals(S.SENDING)}",
            [batch_ref, list(message_ids)],
        )
