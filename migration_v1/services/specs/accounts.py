"""v1 Accounts → Organization.

Its declared `TableSpec`, run by services/tables.py; column rules in docs/migration_v1.md."""

from __future__ import annotations

from organizations.models import Organization

from ...models import V1Account
from ..convert import (
    iana_zone,
    v1_time,
)
from ..engine import Context, insert_columns
from ..tables import Batch, TableSpec, done_sql_own_v1_id


def _accounts_transform(ctx: Context, batch: Batch) -> None:
    for aid, name, tz, active, created in batch.rows:
        zone, known = iana_zone(tz)
        if not known:
            ctx.warn(f"unknown Windows time zone {tz.strip()!r} → {zone}")
            ctx.decide("Accounts", f"unknown_time_zone_read_as_{zone}", [aid])
        if not (name or "").strip():
            ctx.decide("Accounts", "blank_name_named_v1_account_N", [aid])
        batch.out.append((aid, (name or "").strip() or f"v1 account {aid}", zone, active, v1_time(created)))


def _accounts_write(ctx: Context, cur, batch: Batch) -> None:
    out = batch.out
    cols, exprs, params = insert_columns(
        Organization,
        {
            "name": "t.name",
            "time_zone": "t.tz",
            "is_active": "t.is_active",
            "created_at": "t.created_at",
            "v1_id": "t.v1_id",
        },
    )
    cur.execute(
        f"""INSERT INTO organizations_organization ({cols}) SELECT {exprs} FROM mig_accounts t
                    ORDER BY t.v1_id ON CONFLICT (v1_id) DO NOTHING""",  # noqa: S608 — table/column names from model metadata and module constants; values bound
        params,
    )
    ctx.table("Accounts").written += cur.rowcount
    ctx.table("Accounts").skipped += len(out) - cur.rowcount


ACCOUNTS = TableSpec(
    table="Accounts",
    model=V1Account,
    fields=("account_id", "name", "time_zone", "is_active", "created_on"),
    account_field="account_id",
    line_field=None,
    done_sql=done_sql_own_v1_id("organizations_organization"),
    temp="mig_accounts",
    temp_columns=(
        ("v1_id", "int"),
        ("name", "text"),
        ("tz", "text"),
        ("is_active", "bool"),
        ("created_at", "timestamptz"),
    ),
    transform=_accounts_transform,
    write=_accounts_write,
    requires_account=False,
    skip_done=False,  # ON CONFLICT (v1_id) DO NOTHING counts them
)
