"""v1 Users → User (by normalized email) + Membership.

Its declared `TableSpec`, run by services/tables.py; column rules in docs/migration_v1.md."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from organizations.models import Membership

from ...models import V1User
from ..convert import (
    ROLE_MAP,
    is_plausible_email,
    normalize_email,
    v1_time,
)
from ..engine import IDMAP_TABLE, Context, insert_columns
from ..tables import Batch, TableSpec, done_sql_idmap


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
    done_sql=done_sql_idmap("Users"),
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
