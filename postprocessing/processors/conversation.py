"""Conversation last-message time and preview, never moved backwards. See docs/postprocessing.md.

The candidate is the newest message of the batch per conversation (created_at, then id), applied only
if it is newer than what the conversation shows. Applying "max" is order-free, so concurrent drains,
retries and re-runs converge on the newest message whatever order they see events in. A message's
own later event (sent, after queued) refreshes the preview when the same message is still the newest:
the rendered body (per-recipient text, shortened links) is filled after queueing.
"""

from __future__ import annotations

from django.db import connection

from ..events import EventType
from ..registry import EventRow, processor

PREVIEW_CHARS = 160

# The row locks are taken in conversation id order (the `locked` CTE) so that two drains updating
# overlapping conversations wait for each other instead of deadlocking. NO KEY UPDATE (what a plain
# UPDATE takes) does not conflict with the KEY SHARE lock of the send pipeline's message inserts (their
# foreign key to the conversation), so a drain never blocks a blast being prepared, nor waits for it.
_SQL = f"""
WITH src AS (
    SELECT DISTINCT ON (m.conversation_id) m.conversation_id AS cid, m.created_at AS at,
           left(COALESCE(NULLIF(m.rendered_body, ''), m.body), {PREVIEW_CHARS}) AS preview
    FROM messaging_message m WHERE m.id = ANY(%s::bigint[])
    ORDER BY m.conversation_id, m.created_at DESC, m.id DESC
), locked AS (
    SELECT c.id FROM messaging_conversation c JOIN src ON src.cid = c.id
    WHERE c.last_message_at IS NULL OR src.at > c.last_message_at
       OR (src.at = c.last_message_at AND src.preview <> c.last_message_preview)
    ORDER BY c.id FOR NO KEY UPDATE OF c
)
UPDATE messaging_conversation c SET last_message_at = src.at, last_message_preview = src.preview
FROM src JOIN locked ON locked.id = src.cid
WHERE c.id = src.cid
  AND (c.last_message_at IS NULL OR src.at > c.last_message_at
       OR (src.at = c.last_message_at AND src.preview <> c.last_message_preview))
"""


@processor(
    EventType.MESSAGE_QUEUED, EventType.MESSAGE_SENT, EventType.MESSAGE_RECEIVED, name="conversation_last_message"
)
def conversation_last_message(events: list[EventRow]) -> None:
    ids = [e.message_id for e in events if e.message_id is not None]
    if ids:
        with connection.cursor() as cursor:
            cursor.execute(_SQL, [ids])
