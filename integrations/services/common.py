"""What both partners' services share: the per-conversation lock and turning a partner reply into an SMS."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.exceptions import ValidationError
from django.db import connection

from messaging.services.sending import MAX_BODY, SendRefused, message_send

log = logging.getLogger(__name__)


@contextmanager
def conversation_lock(partner: str, conversation_id: int) -> Iterator[None]:
    """A session-level advisory lock per (partner, conversation), held across the partner calls of one
    task: two tasks on one conversation would otherwise both see "no chat/team yet" and create two.
    Not a row lock on the conversation: post-processing updates that row on every message, and an
    advisory lock blocks nobody but ourselves. It outlives the statements (session-level) and dies
    with the connection if the worker does."""
    key = f"integrations:{partner}:{conversation_id}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [key])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])


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
