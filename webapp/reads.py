"""Writes of the read state (webapp/models.py): one upsert, never moving a marker backwards."""

from __future__ import annotations

from datetime import datetime

from django.db import connection

_MARK_SQL = """
INSERT INTO webapp_conversationread (user_id, conversation_id, read_at) VALUES (%s, %s, %s)
ON CONFLICT (user_id, conversation_id)
DO UPDATE SET read_at = GREATEST(webapp_conversationread.read_at, EXCLUDED.read_at)
"""


def conversation_mark_read(*, user_id: int, conversation_id: int, at: datetime) -> None:
    """The person has seen the conversation as it was at `at` (one statement; two tabs may race)."""
    with connection.cursor() as cursor:
        cursor.execute(_MARK_SQL, [user_id, conversation_id, at])
