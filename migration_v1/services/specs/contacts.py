"""v1 Contacts → Contact (+ OptOut); duplicates by normalized number merge.

Its declared `TableSpec`, run by services/tables.py; column rules in docs/migration_v1.md."""

from __future__ import annotations

from messaging.models import Contact
from messaging.phone import try_normalize

from ...models import V1Contact
from ..convert import (
    phone_extension,
    v1_time,
)
from ..engine import IDMAP_TABLE, Context, insert_columns
from ..tables import Batch, TableSpec, done_sql_idmap


def _contacts_transform(ctx: Context, batch: Batch) -> None:
    for cid, account_id, phone, first, last, email, opted_out, opted_out_on, created in batch.rows:
        e164 = try_normalize(phone)
        if e164 is None:
            batch.refuse(cid, "junk_phone")
            continue
        if phone_extension(phone):
            ctx.decide("Contacts", "phone_extension_dropped", [cid])
        batch.out.append(
            (
                cid,
                account_id,
                e164,
                (first or "").strip()[:100],
                (last or "").strip()[:100],
                (email or "").strip()[:254],
                opted_out,
                v1_time(opted_out_on),
                v1_time(created),
            )
        )


def _contacts_write(ctx: Context, cur, batch: Batch) -> None:
    stats = ctx.table("Contacts")
    cols, exprs, params = insert_columns(
        Contact,
        {
            "organization_id": "t.org_id",
            "phone_number": "t.phone",
            "first_name": "t.first_name",
            "last_name": "t.last_name",
            "email": "t.email",
            "created_at": "t.created_at",
            "updated_at": "now()",
            "v1_id": "t.v1_id",
        },
    )
    # Twins (same organization and normalized number) merge into the contact of the lowest
    # ContactId; each blank field takes the first non-blank value of its twins in ContactId
    # order. Rows arrive in ContactId order, so aggregating the batch's twins first and then
    # filling only blanks of a contact an earlier batch made gives the same result for any
    # batch size (tests/migration_v1/test_merges.py).
    cur.execute(
        f"""INSERT INTO messaging_contact AS c ({cols})
        SELECT {exprs} FROM (
            SELECT o.id AS org_id, t.phone, min(t.v1_id) AS v1_id,
                coalesce((array_agg(t.first_name ORDER BY t.v1_id) FILTER (WHERE t.first_name <> ''))[1], '')
                    AS first_name,
                coalesce((array_agg(t.last_name ORDER BY t.v1_id) FILTER (WHERE t.last_name <> ''))[1], '')
                    AS last_name,
                coalesce((array_agg(t.email ORDER BY t.v1_id) FILTER (WHERE t.email <> ''))[1], '') AS email,
                (array_agg(t.created_at ORDER BY t.v1_id))[1] AS created_at
            FROM mig_contacts t JOIN organizations_organization o ON o.v1_id = t.v1_account_id
            GROUP BY o.id, t.phone
        ) t
        ORDER BY t.org_id, t.phone
        ON CONFLICT (organization_id, phone_number) DO UPDATE SET
            first_name = CASE WHEN c.first_name = '' THEN EXCLUDED.first_name ELSE c.first_name END,
            last_name = CASE WHEN c.last_name = '' THEN EXCLUDED.last_name ELSE c.last_name END,
            email = CASE WHEN c.email = '' THEN EXCLUDED.email ELSE c.email END,
            v1_id = coalesce(c.v1_id, EXCLUDED.v1_id), updated_at = now()
        WHERE (c.first_name = '' AND EXCLUDED.first_name <> '') OR (c.last_name = '' AND EXCLUDED.last_name <> '')
           OR (c.email = '' AND EXCLUDED.email <> '') OR c.v1_id IS NULL""",  # noqa: S608 — table/column names from model metadata and module constants; values bound
        params,
    )
    cur.execute(f"""INSERT INTO {IDMAP_TABLE} (v1_table, v1_id, v2_id, merged)
        SELECT 'Contacts', t.v1_id, c.id, c.v1_id IS DISTINCT FROM t.v1_id FROM mig_contacts t
        JOIN organizations_organization o ON o.v1_id = t.v1_account_id
        JOIN messaging_contact c ON c.organization_id = o.id AND c.phone_number = t.phone
        ON CONFLICT (v1_table, v1_id) DO NOTHING RETURNING v1_id, merged""")  # noqa: S608 — table/column names from model metadata and module constants; values bound
    mapped = cur.fetchall()
    merged = sorted(v1_id for v1_id, m in mapped if m)
    stats.merged += len(merged)
    stats.written += len(mapped) - len(merged)
    ctx.decide("Contacts", "merged_into_twin_with_lower_contact_id", merged)
    # An opt-out on any of the merged duplicates opts the number out.
    cur.execute("""INSERT INTO messaging_optout (organization_id, phone_number, source, reason, created_at)
        SELECT DISTINCT ON (o.id, t.phone) o.id, t.phone, 'import', 'v1 ContactId ' || t.v1_id,
               coalesce(t.opted_out_at, t.created_at)
        FROM mig_contacts t JOIN organizations_organization o ON o.v1_id = t.v1_account_id
        WHERE t.opted_out ORDER BY o.id, t.phone, t.v1_id
        ON CONFLICT DO NOTHING""")
    stats.bump("opt_outs_created", cur.rowcount)


CONTACTS = TableSpec(
    table="Contacts",
    model=V1Contact,
    fields=(
        "contact_id",
        "account_id",
        "phone_number",
        "first_name",
        "last_name",
        "email",
        "is_opted_out",
        "opted_out_on",
        "created_on",
    ),
    account_field="account_id",
    line_field=None,
    done_sql=done_sql_idmap("Contacts"),
    temp="mig_contacts",
    temp_columns=(
        ("v1_id", "int"),
        ("v1_account_id", "int"),
        ("phone", "text"),
        ("first_name", "text"),
        ("last_name", "text"),
        ("email", "text"),
        ("opted_out", "bool"),
        ("opted_out_at", "timestamptz"),
        ("created_at", "timestamptz"),
    ),
    transform=_contacts_transform,
    write=_contacts_write,
)
