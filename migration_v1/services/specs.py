"""The small v1 tables declared: accounts, users, lines (+ carrier accounts), contacts (+ opt-outs),
blasts, conversations. One `TableSpec` each — what is read, the temp table, the Python pass
(`transform`) and the set-based statements (`write`) — run by the one mechanism of services/tables.py.
Column rules: docs/migration_v1.md.
"""

from __future__ import annotations

import json
import secrets

from django.contrib.auth import get_user_model

from carriers.models import CarrierAccount
from messaging.models import Blast, BlastStatus, Contact, Conversation, ConversationStatus, Line
from messaging.phone import try_normalize
from messaging.status import sql_literals
from organizations.models import Membership, Organization

from ..models import V1Account, V1Blast, V1Contact, V1Conversation, V1Line, V1User
from .convert import (
    ROLE_MAP,
    config_is_unparseable,
    iana_zone,
    is_plausible_email,
    normalize_email,
    phone_extension,
    provider_key,
    sinch_config,
    v1_time,
)
from .engine import IDMAP_TABLE, QUARANTINE_TABLE, Context, insert_columns
from .tables import Batch, TableSpec, quarantine_unresolved


def _mapped(table: str) -> str:
    """done_sql of a table whose rows the id map records (merges map several v1 rows to one v2 row)."""
    return f"SELECT v1_id FROM {IDMAP_TABLE} WHERE v1_table = '{table}' AND v1_id BETWEEN %s AND %s"  # noqa: S608 — table/column names from model metadata and module constants; values bound


def _own_v1_id(v2_table: str) -> str:
    """done_sql of a table whose v2 rows carry their v1 id."""
    return f"SELECT v1_id FROM {v2_table} WHERE v1_id BETWEEN %s AND %s"  # noqa: S608 — table/column names from model metadata and module constants; values bound


# --- Accounts → Organization -----------------------------------------------------------------------
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
    done_sql=_own_v1_id("organizations_organization"),
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


# --- Users → User (by normalized email) + Membership -----------------------------------------------
def _users_transform(ctx: Context, batch: Batch) -> None:
    for uid, account_id, email, first, last, role, deleted, created in batch.rows:
        norm = normalize_email(email)
        if not is_plausible_email(norm):
            batch.refuse(uid, "junk_email")
        elif role not in ROLE_MAP:
            batch.refuse(uid, "unknown_role", f"Role={role}")
        else:
            batch.out.append(
                (
                    uid,
                    account_id,
                    norm,
                    (first or "").strip()[:150],
                    (last or "").strip()[:150],
                    ROLE_MAP[role],
                    deleted,
                    v1_time(created),
                )
            )


def _users_write(ctx: Context, cur, batch: Batch) -> None:
    stats = ctx.table("Users")
    User = get_user_model()
    # One User per normalized email; an existing v2 user with that email is reused. No password:
    # migrated people set one through the reset flow.
    cols, exprs, params = insert_columns(
        User,
        {
            "password": "'!' || md5(random()::text)",
            "username": "t.email",
            "email": "t.email",
            "first_name": "t.first_name",
            "last_name": "t.last_name",
            "is_active": "t.any_active",
            "is_staff": "false",
            "is_superuser": "false",
            "date_joined": "t.created_at",
        },
    )
    cur.execute(
        f"""INSERT INTO {User._meta.db_table} ({cols})
        SELECT {exprs} FROM (
            SELECT DISTINCT ON (email) *, bool_or(NOT is_deleted) OVER (PARTITION BY email) AS any_active
            FROM mig_users ORDER BY email, v1_id) t
        ORDER BY t.v1_id ON CONFLICT (username) DO NOTHING""",  # noqa: S608 — table/column names from model metadata and module constants; values bound
        params,
    )
    stats.bump("users_created", cur.rowcount)
    cur.execute(f"""INSERT INTO {IDMAP_TABLE} (v1_table, v1_id, v2_id, merged)
        SELECT 'Users', t.v1_id, u.id, false FROM mig_users t JOIN {User._meta.db_table} u ON u.username = t.email
        ON CONFLICT (v1_table, v1_id) DO NOTHING""")  # noqa: S608 — table/column names from model metadata and module constants; values bound
    cols, exprs, params = insert_columns(
        Membership,
        {
            "user_id": "u.id",
            "organization_id": "o.id",
            "role": "t.role",
            "created_at": "t.created_at",
            "v1_id": "t.v1_id",
        },
    )
    # Deleted v1 users keep their User (history references them) but get no membership.
    cur.execute(
        f"""INSERT INTO organizations_membership ({cols})
        SELECT DISTINCT ON (u.id, o.id) {exprs} FROM mig_users t
        JOIN organizations_organization o ON o.v1_id = t.v1_account_id
        JOIN {User._meta.db_table} u ON u.username = t.email
        WHERE NOT t.is_deleted ORDER BY u.id, o.id, t.v1_id
        ON CONFLICT DO NOTHING""",  # noqa: S608 — table/column names from model metadata and module constants; values bound
        params,
    )
    stats.bump("memberships_created", cur.rowcount)
    # Every remaining row is written (a membership, or for a deleted user the User alone) or
    # merged (the same person twice in one account: one membership).
    cur.execute(f"""SELECT t.v1_id, t.is_deleted,
               NOT t.is_deleted AND NOT EXISTS (SELECT 1 FROM organizations_membership m WHERE m.v1_id = t.v1_id),
               EXISTS (SELECT 1 FROM {IDMAP_TABLE} e JOIN {IDMAP_TABLE} me ON me.v1_table = 'Users'
                       AND me.v1_id = t.v1_id AND e.v2_id = me.v2_id
                       WHERE e.v1_table = 'Users' AND e.v1_id < t.v1_id)
        FROM mig_users t ORDER BY t.v1_id""")  # noqa: S608 — table/column names from model metadata and module constants; values bound
    result = cur.fetchall()
    merged = [r[0] for r in result if r[2]]
    stats.merged += len(merged)
    stats.written += len(result) - len(merged)
    ctx.decide("Users", "same_person_twice_in_account_one_membership", merged)
    ctx.decide("Users", "deleted_user_without_membership", [r[0] for r in result if r[1]])
    ctx.decide("Users", "same_email_as_earlier_user_one_login", [r[0] for r in result if r[3]])
    stats.bump("deleted_user_without_membership", sum(1 for r in result if r[1]))


USERS = TableSpec(
    table="Users",
    model=V1User,
    fields=("user_id", "account_id", "email", "first_name", "last_name", "role", "is_deleted", "created_on"),
    account_field="account_id",
    line_field=None,
    done_sql=_mapped("Users"),
    temp="mig_users",
    temp_columns=(
        ("v1_id", "int"),
        ("v1_account_id", "int"),
        ("email", "text"),
        ("first_name", "text"),
        ("last_name", "text"),
        ("role", "text"),
        ("is_deleted", "bool"),
        ("created_at", "timestamptz"),
    ),
    transform=_users_transform,
    write=_users_write,
)


# --- Lines → Line (+ CarrierAccount) -----------------------------------------------------------------
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
    done_sql=_own_v1_id("messaging_line"),
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


# --- Contacts → Contact (+ OptOut); duplicates by normalized number merge --------------------------
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
    done_sql=_mapped("Contacts"),
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


# --- Blasts → Blast ---------------------------------------------------------------------------------
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
    done_sql=_own_v1_id("messaging_blast"),
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


# --- Conversations → Conversation; duplicates per (line, merged contact) merge -----------------------
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
    done_sql=_mapped("Conversations"),
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
TABLE_SPECS = (ACCOUNTS, USERS, LINES, CONTACTS, BLASTS, CONVERSATIONS)
