"""v1 Blasts → Blast.

Its declared `TableSpec`, run by services/tables.py; column rules in docs/migration_v1.md."""

from __future__ import annotations

from messaging.models import Blast, BlastStatus
from messaging.status import sql_literals

from ...models import V1Blast
from ..convert import (
    v1_time,
)
from ..engine import IDMAP_TABLE, QUARANTINE_TABLE, Context, insert_columns
from ..tables import Batch, TableSpec, done_sql_own_v1_id, quarantine_unresolved


def _blasts_transform(ctx: Context, batch: Batch) -> None:
    batch.out.extend(
        (bid, acc, line, (name or "").strip()[:200], body or "", creator, v1_time(created), v1_time(sent))
        for bid, acc, line, name, body, creator, created, sent in batch.rows
    )
    ctx.decide("Blasts", "null_body_read_as_empty", [r[0] for r in batch.rows if r[4] is None])


def _blasts_write(ctx: Context, cur, batch: Batch) -> None:
    stats = ctx.table("Blasts")
    out, by_id = batch.out, batch.by_id
    # SentOn set → completed; never sent → canceled (final: history is not relaunched by accident).
    cols, exprs, params = insert_columns(
        Blast,
        {
            "organization_id": "o.id",
            "line_id": "l.id",
            "name": "t.name",
            "body": "t.body",
            "status": f"CASE WHEN t.sent_at IS NULL THEN {sql_literals(BlastStatus.CANCELED)}"
            f" ELSE {sql_literals(BlastStatus.COMPLETED)} END",
            "created_by_id": "au.id",
            "created_at": "t.created_at",
            "launched_at": "t.sent_at",
            "completed_at": "t.sent_at",
            "canceled_at": "CASE WHEN t.sent_at IS NULL THEN t.created_at END",
            "v1_id": "t.v1_id",
        },
    )
    cur.execute(
        f"""INSERT INTO messaging_blast ({cols}) SELECT {exprs} FROM mig_blasts t
        JOIN organizations_organization o ON o.v1_id = t.v1_account_id
        JOIN messaging_line l ON l.v1_id = t.v1_line_id AND l.organization_id = o.id
        LEFT JOIN {IDMAP_TABLE} um ON um.v1_table = 'Users' AND um.v1_id = t.v1_created_by
        LEFT JOIN auth_user au ON au.id = um.v2_id
        ORDER BY t.v1_id ON CONFLICT (v1_id) DO NOTHING RETURNING v1_id, status, created_by_id""",  # noqa: S608 — table/column names from model metadata and module constants; values bound
        params,
    )
    written = cur.fetchall()
    stats.written += len(written)
    creators = {r[0]: r[5] for r in out}
    ctx.decide("Blasts", "never_sent_migrated_canceled", sorted(r[0] for r in written if r[1] == "canceled"))
    ctx.decide(
        "Blasts",
        "unknown_creator_dropped",
        sorted(r[0] for r in written if r[2] is None and creators.get(r[0]) is not None),
    )
    quarantine_unresolved(
        ctx,
        "Blasts",
        cur,
        f"""
        SELECT t.v1_id, CASE
            WHEN EXISTS (SELECT 1 FROM {QUARANTINE_TABLE} q WHERE q.v1_table = 'Lines' AND q.v1_id = t.v1_line_id)
                THEN 'line_quarantined'
            WHEN EXISTS (SELECT 1 FROM messaging_line l WHERE l.v1_id = t.v1_line_id) THEN 'line_in_other_account'
            ELSE 'broken_reference_line' END
        FROM mig_blasts t WHERE NOT EXISTS (SELECT 1 FROM messaging_blast b WHERE b.v1_id = t.v1_id)""",  # noqa: S608 — table/column names from model metadata and module constants; values bound
        by_id,
    )


BLASTS = TableSpec(
    table="Blasts",
    model=V1Blast,
    fields=("blast_id", "account_id", "line_id", "name", "body", "created_by_user_id", "created_on", "sent_on"),
    account_field="account_id",
    line_field="line_id",
    done_sql=done_sql_own_v1_id("messaging_blast"),
    temp="mig_blasts",
    temp_columns=(
        ("v1_id", "int"),
        ("v1_account_id", "int"),
        ("v1_line_id", "int"),
        ("name", "text"),
        ("body", "text"),
        ("v1_created_by", "int"),
        ("created_at", "timestamptz"),
        ("sent_at", "timestamptz"),
    ),
    transform=_blasts_transform,
    write=_blasts_write,
)
