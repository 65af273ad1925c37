"""Opt-out hygiene: carrier results meaning "the subscriber is gone or opted out", kept for review.

Recorded as a `messaging.NumberFlag` (one per organization and number, refreshed by later
reports), NOT as a `messaging.OptOut`. Why: an opt-out is the subscriber's own legal act (STOP) and
silently suppresses all traffic; Sinch's "Deleted" only *can* mean an opt-out (it also covers
operator-side deletion), and an "unknown subscriber" number may be ported or recycled next month.
The organization reviews the flags in the admin and opts numbers out (source "carrier") or
dismisses them; a dismissed flag reopens only on a report newer than the dismissal.

The table below is ours to judge (docs/postprocessing.md lists the sources):
"""

from __future__ import annotations

from django.db import connection

from config.sql import sql_literals
from postprocessing.events import EventType
from postprocessing.registry import EventRow, processor

from ..models import NumberFlagKind, NumberFlagReview
from . import RANK

# Sinch delivery-report status → flag kind. "Deleted: can mean the subscriber opted out" (Sinch spec).
CARRIER_STATUS_KINDS: dict[str, str] = {"Deleted": NumberFlagKind.DELETED}
# Error codes → flag kind. 257: Sinch "User opted out (STOP)" (toll-free network-enforced STOP).
# 1 and 5: SMPP/MAP "unknown subscriber" / "unidentified subscriber" (the number is not in service),
# which Sinch forwards from operators as permanent errors.
ERROR_CODE_KINDS: dict[str, str] = {
    "257": NumberFlagKind.OPTED_OUT,
    "1": NumberFlagKind.UNKNOWN_SUBSCRIBER,
    "5": NumberFlagKind.UNKNOWN_SUBSCRIBER,
}

# One INSERT ... ON CONFLICT per batch. DISTINCT ON keeps the newest report per number (ON CONFLICT
# may not touch a row twice in one statement); the ORDER BY fixes the insert (and so lock) order.
# Re-applying the same events changes nothing: times are GREATEST/LEAST and the rest follows the newest.
_PENDING, _DISMISSED = sql_literals(NumberFlagReview.PENDING), sql_literals(NumberFlagReview.DISMISSED)
_SQL = f"""
WITH kinds AS (
    SELECT * FROM unnest(%(keys)s::text[], %(kinds)s::text[], %(is_code)s::boolean[]) AS k(key, kind, is_code)
), hits AS (
    SELECT DISTINCT ON (m.organization_id, ct.phone_number)
           m.organization_id, ct.phone_number, m.contact_id, m.id AS message_id,
           COALESCE(kc.kind, ks.kind) AS kind, m.carrier_status, m.error_code, m.error_reason,
           COALESCE(m.status_updated_at, m.failed_at, now()) AS at
    FROM messaging_message m
    JOIN messaging_contact ct ON ct.id = m.contact_id
    LEFT JOIN kinds kc ON kc.is_code AND kc.key = m.error_code
    LEFT JOIN kinds ks ON NOT ks.is_code AND ks.key = m.carrier_status
    WHERE m.id = ANY(%(ids)s::bigint[]) AND m.direction = 'out' AND (kc.kind IS NOT NULL OR ks.kind IS NOT NULL)
    ORDER BY m.organization_id, ct.phone_number, at DESC, m.id DESC
)
INSERT INTO postprocessing_numberflag AS f
    (organization_id, phone_number, contact_id, kind, carrier_status, error_code, error_reason, message_id,
     first_seen_at, last_seen_at, review)
SELECT organization_id, phone_number, contact_id, kind, carrier_status, error_code, error_reason, message_id,
       at, at, {_PENDING}
FROM hits ORDER BY organization_id, phone_number
ON CONFLICT (organization_id, phone_number) DO UPDATE SET
    first_seen_at = LEAST(f.first_seen_at, EXCLUDED.first_seen_at),
    last_seen_at = GREATEST(f.last_seen_at, EXCLUDED.last_seen_at),
    kind = CASE WHEN EXCLUDED.last_seen_at > f.last_seen_at THEN EXCLUDED.kind ELSE f.kind END,
    carrier_status = CASE WHEN EXCLUDED.last_seen_at > f.last_seen_at THEN EXCLUDED.carrier_status
                          ELSE f.carrier_status END,
    error_code = CASE WHEN EXCLUDED.last_seen_at > f.last_seen_at THEN EXCLUDED.error_code ELSE f.error_code END,
    error_reason = CASE WHEN EXCLUDED.last_seen_at > f.last_seen_at THEN EXCLUDED.error_reason
                        ELSE f.error_reason END,
    message_id = CASE WHEN EXCLUDED.last_seen_at > f.last_seen_at THEN EXCLUDED.message_id ELSE f.message_id END,
    contact_id = COALESCE(f.contact_id, EXCLUDED.contact_id),
    review = CASE WHEN f.review = {_DISMISSED} AND EXCLUDED.last_seen_at > f.reviewed_at THEN {_PENDING}
                  ELSE f.review END
"""  # noqa: S608 — statuses and states via sql_literals, fragments are module constants; values bound


@processor(EventType.MESSAGE_FAILED, name="optout_hygiene", rank=RANK["optout_hygiene"])
def optout_hygiene(events: list[EventRow]) -> None:
    ids = [e.message_id for e in events if e.message_id is not None]
    if not ids:
        return
    keys = [*ERROR_CODE_KINDS, *CARRIER_STATUS_KINDS]
    kinds = [str(k) for k in (*ERROR_CODE_KINDS.values(), *CARRIER_STATUS_KINDS.values())]
    is_code = [True] * len(ERROR_CODE_KINDS) + [False] * len(CARRIER_STATUS_KINDS)
    with connection.cursor() as cursor:
        cursor.execute(_SQL, {"ids": ids, "keys": keys, "kinds": kinds, "is_code": is_code})
