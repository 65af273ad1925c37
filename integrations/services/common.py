"""What both partners' services share: the per-conversation lock and turning a partner reply into an SMS."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.exceptions import ValidationError

from config.redisconn import redis_lock, redis_unlock
from messaging.services.sending import MAX_BODY, SendRefused, message_send

log = logging.getLogger(__name__)


# Longer than any holder's partner calls (a handful per hold, each ≤ 15 s: integrations/clients.py):
# a worker that dies holding the lock blocks the conversation's tasks this long at most.
CONVERSATION_LOCK_TTL_S = 300.0


@contextmanager
def conversation_lock(partner: str, conversation_id: int) -> Iterator[None]:
    """A lock per (partner, conversation), held across the partner calls of one task: two tasks on one
    conversation would otherwise both see "no chat/team yet" and create two. Not a row lock on the
    conversation: post-processing updates that row on every message, and this lock blocks nobody but
    ourselves. In Redis, not a PostgreSQL session advisory lock: it spans several transactions, which
    PgBouncer in transaction mode runs on different server connections (docs/scaling.md)."""
    lock = redis_lock(f"integrations:{partner}:{conversation_id}", ttl=CONVERSATION_LOCK_TTL_S)
    lock.acquire()  # waits, as pg_advisory_lock did
    try:
        yield
    finally:
        redis_unlock(lock)


def reply_as_sms(*, organization_id: int, conversation_id: int, body: str, sent_by=None) -> tuple[int | None, str]:
    """Send a partner reply to the contact through the send pipeline (message_send: queued, prepared,
    sent after the caller's commit). Returns (message id, "") or (None, why it was not sent)."""
    body = (body or "").strip()
    if not body:
        return None, "empty text"
    try:
        message = message_send(
            organization=organization_id, conversation_id=conversation_id, body=body[:MAX_BODY], sent_by=sent_by
        )
    except SendRefused as exc:  # opted out, archived line: the partner's agent cannot override either
        return None, exc.message[:200]
    except ValidationError as exc:
        return None, "; ".join(exc.messages)[:200]
    return message.pk, ""
