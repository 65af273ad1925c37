"""Conversation last-message time and preview, never moved backwards. See docs/postprocessing.md.

Only a message that has gone out (the carrier accepted it: sent_at is set) or come in moves the
conversation: a queued message, one scheduled for later (its own send_at or the recipient's quiet
hours), one blocked or canceled before sending is not what the contact has seen. Its time is when it
went out or came in (`LAST_MESSAGE_AT`), not when it was written: a message scheduled yesterday and
sent today is today's last message. The preview is `rendered_body`, the text as the phone saw it.

The candidate is the newest such message of the batch per conversation (that time, then id), applied
only if it is newer than what the conversation shows. Applying "max" is order-free, so concurrent
drains, retries and re-runs converge on the newest message whatever order they see events in.
"""

from __future__ import annotations

from django.db import connection

from postprocessing.events import EventType
from postprocessing.registry import EventRow, processor

from . import RANK

PREVIEW_CHARS = 160
# SQL over messaging_message m, shared with the recompute (messaging/services/recompute.py) so the
# processor and the repair tool agree on which message is the last and when it was.
HAS_GONE_OUT = "(m.direction = 'in' OR m.sent_at IS NOT NULL)"
LAST_MESSAGE_AT = "COALESCE(m.sent_at, m.received_at, m.created_at)"

# The row locks are taken in conversation id order (the `locked` CTE) so that two drains updating
# overlapping conversations wait for each other instead of deadlocking. NO KEY UPDATE (what a plain
# UPDATE takes) does not conflict with the KEY SHARE lock of the send pipeline's message inserts (their
# foreign key to the conversation), so a drain never blocks a blast being prepared, nor waits for it.
_SQL = f"""
WITH src AS (
    SELECT DISTINCT ON (m.conversation_id) m.conversation_id AS cid, {LAST_MESSAGE_AT} AS at,
           left(m.rendered_body, {PREVIEW_CHARS}) AS preview
    FROM messaging_message m WHERE m.id = ANY(%s::bigint[]) AND {HAS_GONE_OUT}
    ORDER BY m.conversation_id, {LAST_MESSAGE_AT} DESC, m.id DESC
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
"""  # noqa: S608 — statuses and states via sql_literals, fragments are module constants; values bound


# sent_at is set by the first of sent / delivered / undelivered (a report may beat our own send call's
# return), so those events, and received, are the ones that can make a message the last one.
@processor(
    EventType.MESSAGE_SENT,
    EventType.MESSAGE_DELIVERED,
    EventType.MESSAGE_FAILED,
    EventType.MESSAGE_RECEIVED,
    name="conversation_last_message",
    rank=RANK["conversation_last_message"],
)
def conversation_last_message(events: list[EventRow]) -> None:
    ids = [e.message_id for e in events if e.message_id is not None]
    if ids:
        with connection.cursor() as cursor:
            cursor.execute(_SQL, [ids])
