"""Carrier batches: which messages go to the carrier in one call. Prepare groups the messages it
prepared, the send step the rows it claimed (claims and pacing leftovers), with the same rule.
See docs/send-pipeline.md."""

from __future__ import annotations

from dataclasses import dataclass

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


def group_for_send(rows: list[tuple[int, int, int | None, bool, str, str, int]]) -> list[SendGroup]:
    """rows: (id, line_id, blast_id, has_params, rendered_body, recipient, segments), in id order.

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
