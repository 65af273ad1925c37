"""Conversation writes: get-or-create for a send (set-based), closing, reopening, assigning. (An inbound
message reopens a closed conversation: services/inbound.py.)"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import connection, transaction

from config import sql
from config.sql import sql_literals
from organizations.models import Membership

from ..models import Conversation, ConversationStatus
from ..signals import conversations_closed, send_on_commit

_CONVERSATIONS_SQL = f"""
WITH input AS (SELECT DISTINCT unnest(%b::bigint[]) AS contact_id),
ins AS (
    INSERT INTO messaging_conversation
        (organization_id, line_id, contact_id, status, created_at, last_message_preview)
    SELECT %s, %s, input.contact_id, {sql_literals(ConversationStatus.OPEN)}, now(), '' FROM input
    ON CONFLICT (line_id, contact_id) DO NOTHING
    RETURNING id, contact_id
)
SELECT id, contact_id FROM ins
UNION ALL
SELECT c.id, c.contact_id FROM messaging_conversation c JOIN input ON input.contact_id = c.contact_id
WHERE c.line_id = %s
"""  # noqa: S608 — statuses via sql_literals, fragments and table names are module constants; values bound


def conversations_get_or_create(*, organization_id: int, line_id: int, contact_ids: list[int]) -> dict[int, int]:
    """{contact_id: conversation_id} for one line, creating what is missing — one statement.

    The UNION's second half reads the snapshot before the INSERT, so a row is returned exactly once.
    """
    if not contact_ids:
        return {}
    rows = sql.execute(_CONVERSATIONS_SQL, [contact_ids, organization_id, line_id, line_id])
    return {contact_id: conv_id for conv_id, contact_id in rows}


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


def conversation_reopen(*, conversation: Conversation) -> Conversation:
    """Open a closed conversation again (idempotent). Partners are not told: a NICE chat ended at close
    stays ended, and the contact's next text starts a new one, as it would after any close."""
    Conversation.objects.filter(pk=conversation.pk, status=ConversationStatus.CLOSED).update(
        status=ConversationStatus.OPEN
    )
    conversation.status = ConversationStatus.OPEN
    return conversation


def conversation_assign(*, conversation: Conversation, assignee_id: int | None) -> Conversation:
    """Assign to a member of the conversation's organization, or unassign (None). Anyone else — another
    organization's user, an unknown id — is refused naming `assignee`, the same message for both."""
    if (
        assignee_id is not None
        and not Membership.objects.filter(organization_id=conversation.organization_id, user_id=assignee_id).exists()
    ):
        raise ValidationError({"assignee": ["Not a member of this organization."]})
    Conversation.objects.filter(pk=conversation.pk).update(assignee_id=assignee_id)
    conversation.assignee_id = assignee_id
    return conversation
