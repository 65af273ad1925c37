"""Reads of the integrations app. The message query is set-based: one statement per batch (the
dispatcher's, which also writes the pending markers, is services/forwards.py)."""

from __future__ import annotations

from django.db import connection
from django.db.models import F

from messaging.status import S, sql_literals
from organizations.models import Role

from .models import NiceConnection, RingCentralConnection

# The RingCentral connection of a message's line: the line's own one wins over the organization-wide
# one (line empty), even when the line's own is switched off (that is how a line opts out).
RC_CONNECTION_SQL = """
    CASE WHEN lc.id IS NOT NULL THEN CASE WHEN lc.is_active THEN lc.id END
         WHEN oc.is_active THEN oc.id END
"""
RC_JOINS_SQL = """
LEFT JOIN integrations_ringcentralconnection lc ON lc.line_id = m.line_id
LEFT JOIN integrations_ringcentralconnection oc ON oc.organization_id = m.organization_id AND oc.line_id IS NULL
"""

# Messages to post into RingCentral: on a connected line, not posted yet, and not outbound messages
# that a support user caused (the release item) or that a RingCentral post caused (already in the team).
# Who caused an outbound message is its sent_by: the author of a conversation message, of a scheduled
# send, and of a blast (prepare copies Blast.created_by into every message of the blast). Blast messages
# prepared before that was recorded fall back to their blast's author (one primary-key probe each).
_RC_MIRRORABLE_SQL = f"""
SELECT m.id, m.conversation_id, {RC_CONNECTION_SQL} AS rc
FROM messaging_message m
{RC_JOINS_SQL}
WHERE m.id = ANY(%s::bigint[])
  AND {RC_CONNECTION_SQL} IS NOT NULL
  AND m.status NOT IN ({sql_literals(S.BLOCKED, S.CANCELED)})
  AND NOT EXISTS (SELECT 1 FROM integrations_forwardedmessage f WHERE f.message_id = m.id AND f.partner = 'ringcentral')
  AND NOT (m.direction = 'out' AND EXISTS (
      SELECT 1 FROM organizations_membership mb
      WHERE mb.organization_id = m.organization_id AND mb.role = %s
        AND mb.user_id = COALESCE(
            m.sent_by_id, (SELECT b.created_by_id FROM messaging_blast b WHERE b.id = m.blast_id))))
  AND NOT (m.direction = 'out' AND EXISTS (
      SELECT 1 FROM integrations_partnerreply r WHERE r.message_id = m.id AND r.partner = 'ringcentral'))
ORDER BY m.conversation_id, m.id
"""  # noqa: S608 — fragments are module constants; values bound


def ringcentral_mirrorable(*, message_ids: list[int]) -> list[tuple[int, int, int]]:
    if not message_ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_RC_MIRRORABLE_SQL, [list(message_ids), Role.SUPPORT])
        return cursor.fetchall()


def nice_connection_for_webhook(secret: str) -> NiceConnection | None:
    return NiceConnection.objects.filter(webhook_secret=secret, is_active=True).only("id").first() if secret else None


def ringcentral_connection_for_webhook(secret: str) -> RingCentralConnection | None:
    if not secret:
        return None
    return (
        RingCentralConnection.objects.filter(webhook_secret=secret, is_active=True)
        .only("id", "organization_id", "bot_creator_id")
        .first()
    )


def ringcentral_connections_for(*, organization_id: int) -> list[RingCentralConnection]:
    """The organization's RingCentral connections, organization-wide first, with their lines (one query)."""
    return list(
        RingCentralConnection.objects.filter(organization_id=organization_id)
        .select_related("line")
        .defer("bot_token")
        .order_by(F("line_id").asc(nulls_first=True), "id")
    )
