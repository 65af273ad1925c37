"""v1 Conversations → Conversation; duplicates per (line, merged contact) merge.

Its declared `TableSpec`, run by services/tables.py; column rules in docs/migration_v1.md."""

from __future__ import annotations

from messaging.models import Conversation, ConversationStatus
from messaging.status import sql_literals

from ...models import V1Conversation
from ..convert import (
    v1_time,
)
from ..engine import IDMAP_TABLE, QUARANTINE_TABLE, Context, insert_columns
from ..tables import Batch, TableSpec, done_sql_idmap, quarantine_unresolved

_CONV_RESOLVE = f"""
    SELECT t.*, l.id AS line_id, l.organization_id AS org_id, cm.v2_id AS contact_id
    FROM mig_convs t
    JOIN messaging_line l ON l.v1_id = t.v1_line_id
    JOIN {IDMAP_TABLE} cm ON cm.v1_table = 'Contacts' AND cm.v1_id = t.v1_contact_id
    JOIN messaging_contact c ON c.id = cm.v2_id AND c.organization_id = l.organization_id
"""  # noqa: S608 — table/column names from model metadata and module constants; values bound


_OPEN, _CLOSED = ConversationStatus.OPEN.value, ConversationStatus.CLOSED.value
_OPEN_SQL, _CLOSED_SQL = sql_literals(ConversationStatus.OPEN), sql_literals(ConversationStatus.CLOSED)


def _conversations_transform(ctx: Context, batch: Batch) -> None:
    # Deleted v1 conversations still own messages: they arrive closed.
    batch.out.extend(
        (cid, line, contact, _CLOSED if (closed or deleted) else _OPEN, assignee, deleted, v1_time(created))
        for cid, line, contact, closed, assignee, deleted, created in batch.rows
    )
    ctx.table("Conversations").bump("deleted_migrated_closed", sum(1 for r in batch.out if r[5]))


def _conversations_write(ctx: Context, cur, batch: Batch) -> None:
    stats = ctx.table("Conversations")
    by_id = batch.by_id
    deleted = {r[0] for r in batch.out if r[5]}
    cols, exprs, params = insert_columns(
        Conversation,
        {
            "organization_id": "r.org_id",
            "line_id": "r.line_id",
            "contact_id": "r.contact_id",
            "status": "r.status",
            "assignee_id": "r.assignee_id",
            "created_at": "r.created_at",
            "v1_id": "r.v1_id",
        },
    )
    # Twins (same line and merged contact) merge into the lowest ConversationId: open if any twin
    # is open, the assignee of the first twin (ConversationId order) that has one. The batch's
    # twins are aggregated first, then an existing conversation (from an earlier batch, lower
    # ids) only gains "open" and a missing assignee: the same result for any batch size.
    cur.execute(
        f"""INSERT INTO messaging_conversation AS cv ({cols})
        SELECT {exprs} FROM (
            SELECT r.line_id, r.contact_id, min(r.org_id) AS org_id, min(r.v1_id) AS v1_id,
                CASE WHEN bool_or(r.status = {_OPEN_SQL}) THEN {_OPEN_SQL} ELSE {_CLOSED_SQL} END AS status,
                (array_agg(au.id ORDER BY r.v1_id) FILTER (WHERE au.id IS NOT NULL))[1] AS assignee_id,
                (array_agg(r.created_at ORDER BY r.v1_id))[1] AS created_at
            FROM ({_CONV_RESOLVE}) r
            LEFT JOIN {IDMAP_TABLE} um ON um.v1_table = 'Users' AND um.v1_id = r.v1_assignee
            LEFT JOIN auth_user au ON au.id = um.v2_id
            GROUP BY r.line_id, r.contact_id
        ) r
        ORDER BY r.line_id, r.contact_id
        ON CONFLICT (line_id, contact_id) DO UPDATE SET
            status = CASE WHEN EXCLUDED.status = {_OPEN_SQL} THEN {_OPEN_SQL} ELSE cv.status END,
            assignee_id = coalesce(cv.assignee_id, EXCLUDED.assignee_id),
            v1_id = coalesce(cv.v1_id, EXCLUDED.v1_id)
        WHERE (cv.status = {_CLOSED_SQL} AND EXCLUDED.status = {_OPEN_SQL}) OR cv.v1_id IS NULL
           OR (cv.assignee_id IS NULL AND EXCLUDED.assignee_id IS NOT NULL)""",  # noqa: S608 — table/column names from model metadata and module constants; values bound
        params,
    )
    cur.execute(f"""INSERT INTO {IDMAP_TABLE} (v1_table, v1_id, v2_id, merged)
        SELECT 'Conversations', r.v1_id, cv.id, cv.v1_id IS DISTINCT FROM r.v1_id FROM ({_CONV_RESOLVE}) r
        JOIN messaging_conversation cv ON cv.line_id = r.line_id AND cv.contact_id = r.contact_id
        ON CONFLICT (v1_table, v1_id) DO NOTHING RETURNING v1_id, merged""")  # noqa: S608 — table/column names from model metadata and module constants; values bound
    mapped = cur.fetchall()
    merged = sorted(v1_id for v1_id, m in mapped if m)
    stats.merged += len(merged)
    stats.written += len(mapped) - len(merged)
    ctx.decide("Conversations", "merged_into_twin_with_lower_conversation_id", merged)
    ctx.decide("Conversations", "deleted_migrated_closed", sorted(v1_id for v1_id, _ in mapped if v1_id in deleted))
    cur.execute(f"""SELECT t.v1_id FROM mig_convs t
        WHERE t.v1_assignee IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM {IDMAP_TABLE} um JOIN auth_user au ON au.id = um.v2_id
            WHERE um.v1_table = 'Users' AND um.v1_id = t.v1_assignee)
        AND EXISTS (SELECT 1 FROM {IDMAP_TABLE} m WHERE m.v1_table = 'Conversations' AND m.v1_id = t.v1_id)""")  # noqa: S608 — table/column names from model metadata and module constants; values bound
    ctx.decide("Conversations", "unknown_assignee_dropped", [r[0] for r in cur.fetchall()])
    quarantine_unresolved(
        ctx,
        "Conversations",
        cur,
        f"""
        SELECT t.v1_id, CASE
            WHEN l.id IS NULL AND EXISTS (SELECT 1 FROM {QUARANTINE_TABLE} q
                                         WHERE q.v1_table = 'Lines' AND q.v1_id = t.v1_line_id)
                THEN 'line_quarantined'
            WHEN l.id IS NULL THEN 'broken_reference_line'
            WHEN EXISTS (SELECT 1 FROM {QUARANTINE_TABLE} q
                         WHERE q.v1_table = 'Contacts' AND q.v1_id = t.v1_contact_id) THEN 'contact_quarantined'
            WHEN NOT EXISTS (SELECT 1 FROM {IDMAP_TABLE} cm
                             WHERE cm.v1_table = 'Contacts' AND cm.v1_id = t.v1_contact_id)
                THEN 'broken_reference_contact'
            ELSE 'contact_in_other_account' END
        FROM mig_convs t LEFT JOIN messaging_line l ON l.v1_id = t.v1_line_id
        WHERE NOT EXISTS (SELECT 1 FROM {IDMAP_TABLE} m
                          WHERE m.v1_table = 'Conversations' AND m.v1_id = t.v1_id)""",  # noqa: S608 — table/column names from model metadata and module constants; values bound
        by_id,
    )


CONVERSATIONS = TableSpec(
    table="Conversations",
    model=V1Conversation,
    fields=("conversation_id", "line_id", "contact_id", "is_closed", "assigned_user_id", "is_deleted", "created_on"),
    account_field=None,
    line_field="line_id",
    done_sql=done_sql_idmap("Conversations"),
    temp="mig_convs",
    temp_columns=(
        ("v1_id", "int"),
        ("v1_line_id", "int"),
        ("v1_contact_id", "int"),
        ("status", "text"),
        ("v1_assignee", "int"),
        ("is_deleted", "bool"),
        ("created_at", "timestamptz"),
    ),
    transform=_conversations_transform,
    write=_conversations_write,
    requires_account=False,  # through its line and contact: the write names what is missing
)

# In the order they run: each table resolves its references through the rows of those before it.
