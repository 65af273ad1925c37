"""v1 Lines → Line (+ CarrierAccount).

Its declared `TableSpec`, run by services/tables.py; column rules in docs/migration_v1.md."""

from __future__ import annotations

import json
import secrets

from carriers.models import CarrierAccount
from messaging.models import Line
from messaging.phone import try_normalize

from ...models import V1Line
from ..convert import (
    config_is_unparseable,
    phone_extension,
    provider_key,
    sinch_config,
    v1_time,
)
from ..engine import Context, insert_columns
from ..tables import Batch, TableSpec, done_sql_own_v1_id


def _lines_transform(ctx: Context, batch: Batch) -> None:
    for lid, account_id, phone, name, provider, config_raw, deleted, created in batch.rows:
        e164 = try_normalize(phone)
        if e164 is None:
            batch.refuse(lid, "junk_phone")
            continue
        if config_is_unparseable(config_raw):
            batch.refuse(lid, "unparseable_provider_config", "ProviderConfig is not JSON")
            continue
        if phone_extension(phone):
            ctx.decide("Lines", "phone_extension_dropped", [lid])
        key = provider_key(provider)
        supported = key == "sinch"
        config = sinch_config(config_raw) if supported else None
        if not supported:
            ctx.warn(f"line on unsupported provider {key!r}: migrated archived, no carrier account")
            ctx.decide("Lines", f"unsupported_provider_{key}_archived_no_carrier_account", [lid])
        elif config is None:
            ctx.warn("Sinch line without a usable ProviderConfig: migrated without carrier account")
            ctx.decide("Lines", "provider_config_unusable_no_carrier_account", [lid])
        batch.out.append(
            (
                lid,
                account_id,
                e164,
                (name or "").strip()[:100],
                supported,
                deleted,
                config and config["service_plan_id"],
                config and config["region"],
                json.dumps(config) if config else None,
                secrets.token_urlsafe(24),
                v1_time(created),
            )
        )


def _lines_write(ctx: Context, cur, batch: Batch) -> None:
    stats = ctx.table("Lines")
    # One carrier account per (organization, service plan, region): lines sharing a plan share it.
    cols, exprs, params = insert_columns(
        CarrierAccount,
        {
            "organization_id": "o.id",
            "name": "'Sinch ' || t.plan",
            "provider": "'sinch'",
            "config": "t.config",
            "webhook_secret": "t.secret",
            "created_at": "t.created_at",
            "updated_at": "now()",
        },
    )
    cur.execute(
        f"""INSERT INTO carriers_carrieraccount ({cols})
        SELECT DISTINCT ON (o.id, t.plan, t.region) {exprs} FROM mig_lines t
        JOIN organizations_organization o ON o.v1_id = t.v1_account_id
        WHERE t.plan IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM carriers_carrieraccount ca WHERE ca.organization_id = o.id AND ca.provider = 'sinch'
            AND ca.config->>'service_plan_id' = t.plan AND coalesce(ca.config->>'region', 'us') = t.region)
        ORDER BY o.id, t.plan, t.region, t.v1_id""",  # noqa: S608 — table/column names from model metadata and module constants; values bound
        params,
    )
    stats.bump("carrier_accounts_created", cur.rowcount)
    # Active only if v1 had it live on a supported provider and the number is not live elsewhere
    # (v2 allows one active line per number).
    cols, exprs, params = insert_columns(
        Line,
        {
            "organization_id": "t.org_id",
            "phone_number": "t.phone",
            "name": "t.name",
            "carrier_account_id": "t.ca_id",
            "is_active": "t.want_active AND t.rn = 1 AND NOT t.taken",
            "created_at": "t.created_at",
            "updated_at": "now()",
            "v1_id": "t.v1_id",
        },
    )
    cur.execute(
        f"""INSERT INTO messaging_line ({cols})
        SELECT {exprs} FROM (
            SELECT m.*, o.id AS org_id, ca.id AS ca_id, (m.supported AND NOT m.is_deleted) AS want_active,
                row_number() OVER (PARTITION BY m.phone
                                   ORDER BY (m.supported AND NOT m.is_deleted) DESC, m.v1_id) AS rn,
                EXISTS (SELECT 1 FROM messaging_line l2 WHERE l2.phone_number = m.phone AND l2.is_active) AS taken
            FROM mig_lines m JOIN organizations_organization o ON o.v1_id = m.v1_account_id
            LEFT JOIN LATERAL (
                SELECT ca.id FROM carriers_carrieraccount ca
                WHERE ca.organization_id = o.id AND ca.provider = 'sinch'
                AND ca.config->>'service_plan_id' = m.plan AND coalesce(ca.config->>'region', 'us') = m.region
                ORDER BY ca.id LIMIT 1) ca ON true
        ) t ORDER BY t.v1_id
        ON CONFLICT (v1_id) DO NOTHING
        """,  # noqa: S608 — table/column names from model metadata and module constants; values bound
        params,
    )
    stats.written += cur.rowcount
    cur.execute("""SELECT m.v1_id, m.is_deleted, NOT m.supported,
                          m.supported AND NOT m.is_deleted AND NOT l.is_active
                   FROM mig_lines m JOIN messaging_line l ON l.v1_id = m.v1_id ORDER BY m.v1_id""")
    result = cur.fetchall()
    deleted, demoted = [r[0] for r in result if r[1]], [r[0] for r in result if r[3]]
    stats.bump("archived_deleted", len(deleted))
    stats.bump("archived_unsupported_provider", sum(1 for r in result if r[2]))
    stats.bump("archived_number_live_elsewhere", len(demoted))
    ctx.warn("line number already live on another line: migrated archived", len(demoted))
    ctx.decide("Lines", "deleted_line_archived", deleted)
    ctx.decide("Lines", "number_live_on_another_line_archived", demoted)


LINES = TableSpec(
    table="Lines",
    model=V1Line,
    fields=("line_id", "account_id", "phone_number", "name", "provider", "provider_config", "is_deleted", "created_on"),
    account_field="account_id",
    line_field="line_id",
    done_sql=done_sql_own_v1_id("messaging_line"),
    temp="mig_lines",
    temp_columns=(
        ("v1_id", "int"),
        ("v1_account_id", "int"),
        ("phone", "text"),
        ("name", "text"),
        ("supported", "bool"),
        ("is_deleted", "bool"),
        ("plan", "text"),
        ("region", "text"),
        ("config", "jsonb"),
        ("secret", "text"),
        ("created_at", "timestamptz"),
    ),
    transform=_lines_transform,
    write=_lines_write,
)
