"""Carrier batches: which messages go to the carrier in one call. Prepare groups the messages it
prepared, the send step the rows it claimed (claims and pacing leftovers), with the same rule.
See docs/send-pipeline.md."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

# One prepare chunk = one carrier batch: Sinch takes at most 1000 recipients per call.
CHUNK_SIZE = 1000


@dataclass(frozen=True, slots=True)
class SendGroup:
    """Messages that go to the carrier in one call (same line, same body or template, distinct recipients)."""

    line_id: int
    message_ids: list[int]
    segments: list[int]
    # A blast's messages: paced in batches of the line's batching window (ratelimit.batch_units) rather
    # than sent as soon as one unit is free, which is what a conversation message does.
    batched: bool = False


class SendRow(NamedTuple):
    """What grouping needs of a message: prepare builds these, the send step reads them with SEND_ROW_COLUMNS."""

    id: int
    line_id: int
    blast_id: int | None
    has_params: bool
    rendered_body: str
    recipient: str
    segments: int


def send_row_columns(alias: str = "") -> str:
    """The SELECT/RETURNING list of a SendRow from messaging_message (optionally qualified by `alias`)."""
    p = f"{alias}." if alias else ""
    return (
        f"{p}id, {p}line_id, {p}blast_id, {p}send_params IS NOT NULL, {p}rendered_body, {p}carrier_recipient,"
        f" {p}segments"
    )


SEND_ROW_COLUMNS = send_row_columns()


def group_for_send(rows: Iterable[SendRow]) -> list[SendGroup]:
    """rows: SendRow (or tuples in its order), in id order.

    Messages with parameters of one blast share its template; the others share a call only with an
    identical body. A recipient appears once per call (Sinch keys parameters by recipient).
    """
    buckets: dict[tuple, list[list]] = {}
    for mid, line_id, blast_id, has_params, rendered, recipient, segs in rows:
        # The last part: a blast's messages are paced in batches (SendGroup.batched), so a conversation
        # message never shares their call, even with the same text, and never waits for a batch.
        key = (line_id, "t", blast_id, True) if has_params and blast_id else (line_id, "r", rendered, bool(blast_id))
        chunks = buckets.setdefault(key, [])
        for chunk in chunks:
            if len(chunk[0]) < CHUNK_SIZE and recipient not in chunk[2]:
                break
        else:
            chunk = [[], [], set()]
            chunks.append(chunk)
        chunk[0].append(mid)
        chunk[1].append(segs)
        chunk[2].add(recipient)
    return [SendGroup(key[0], ids, segs, batched=key[3]) for key, chunks in buckets.items() for ids, segs, _ in chunks]
