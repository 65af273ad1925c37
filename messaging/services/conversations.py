"""Conversation writes: closing. (An inbound message reopens a closed conversation: services/inbound.py.)"""

from __future__ import annotations

from django.db import connection, transaction

from ..models import ConversationStatus
from ..signals import conversations_closed, send_on_commit

_CLOSE_SQL = """
UPDATE messaging_conversation SET status = %s
WHERE id = ANY(%s::bigint[]) AND status <> %s AND (%s::bigint IS NULL OR organization_id = %s)
RETURNING id
"""


def conversations_close(*, conversation_ids: list[int], organization_id: int | None) -> list[int]:
    """Close conversations (of one organization; None = any, for staff in the admin). Returns the ids
    that were open. Partners are told after commit (a NICE chat of the conversation is ended)."""
    ids = [int(i) for i in conversation_ids]
    if not ids:
        return []
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                _CLOSE_SQL,
                [ConversationStatus.CLOSED, ids, ConversationStatus.CLOSED, organization_id, organization_id],
            )
            closed = [r[0] for r in cursor.fetchall()]
        if closed:
            send_on_commit(conversations_closed, conversation_ids=closed)
    return closed
