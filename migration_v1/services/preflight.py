"""Preflight: read the v1 schema as it is (information_schema) before any row is read or written.

A real v1 is whatever its owners made of it: the spec types `Messages.Body` as text, our own DDL
as bytea, a copy from SQL Server may carry other widths and nullability. The tool needs every
table and column of the unmanaged V1* models, each with a type it can read; what is missing or
unreadable is reported in one message (V1SchemaError) before anything is written. What it can
read but differs from our DDL (bytea vs text, nullable columns) is recorded in the run report so
the operator sees how the source was read (docs/migration_v1.md, "Preflight").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from django.db import DatabaseError, connections
from django.db import models as dj

from ..db import V1_ALIAS
from ..models import (
    V1Account,
    V1Blast,
    V1Contact,
    V1Conversation,
    V1Line,
    V1Message,
    V1MessageMedia,
    V1User,
)
from .errors import V1SchemaError, V1Unavailable

V1_MODELS = [V1Account, V1User, V1Line, V1Contact, V1Conversation, V1Blast, V1Message, V1MessageMedia]

# information_schema data_type values the tool reads, per kind of column (PostgreSQL names; a SQL
# Server copy arrives as these: nvarchar(n)/nvarchar(max) → character varying with or without a
# length, varbinary → bytea, bit → boolean or a small integer, datetime/datetime2 → timestamp).
INT_TYPES = {"smallint", "integer", "bigint", "numeric"}
TEXT_TYPES = {"text", "character varying", "character", "bytea", "USER-DEFINED:citext"}
BOOL_TYPES = {"boolean", "smallint", "integer", "bigint"}
TIME_TYPES = {"timestamp without time zone"}


def _kind(f: dj.Field) -> str:
    if isinstance(f, dj.BooleanField):
        return "bool"
    if isinstance(f, dj.DateTimeField):
        return "time"
    if isinstance(f, dj.IntegerField):  # Small/Big integer fields subclass it
        return "int"
    return "text"


_ACCEPTED = {"int": INT_TYPES, "text": TEXT_TYPES, "bool": BOOL_TYPES, "time": TIME_TYPES}
_WANTED = {
    "int": "an integer",
    "text": "text, varchar, char or bytea",
    "bool": "boolean (or a 0/1 integer)",
    "time": "timestamp without time zone (v1 wall clock)",
}


@dataclass
class Column:
    table: str
    name: str
    data_type: str
    nullable: bool
    max_length: int | None = None

    @property
    def is_bytea(self) -> bool:
        return self.data_type == "bytea"


@dataclass
class V1Schema:
    """The v1 schema as found: how each column the tool reads is typed there."""

    columns: dict[tuple[str, str], Column] = field(default_factory=dict)

    def column(self, table: str, name: str) -> Column:
        return self.columns[(table, name)]

    def bytea_columns(self, table: str) -> list[str]:
        return [c.name for (t, _), c in self.columns.items() if t == table and c.is_bytea]

    def body_bytes_sql(self, expr: str = '"Body"') -> str:
        """SQL giving the message body as bytea, whatever its v1 type (verify's checksums)."""
        if self.column("Messages", "Body").is_bytea:
            return expr
        return f"convert_to({expr}::text, 'UTF8')"

    def summary(self) -> dict:
        """How the source was read, for the run report."""
        nullable = []
        for model in V1_MODELS:
            for f in model._meta.concrete_fields:
                c = self.columns.get((model._meta.db_table, str(f.column)))
                if c and c.nullable and not f.null and not f.primary_key:
                    nullable.append(f"{c.table}.{c.name}")
        return {
            "messages_body_type": self.column("Messages", "Body").data_type,
            "bytea_text_columns": sorted(f"{c.table}.{c.name}" for c in self.columns.values() if c.is_bytea),
            # Columns our DDL declares NOT NULL that this v1 allows NULL in: each is read by the
            # documented NULL rule (docs/migration_v1.md, "NULLs").
            "nullable_columns_handled": nullable,
        }


def _describe_target() -> str:
    s = connections[V1_ALIAS].settings_dict
    return f"{s.get('HOST') or 'localhost'}:{s.get('PORT') or 5432}/{s.get('NAME')}"


def connection_reason(exc: BaseException) -> str:
    """The server's own reason, without the connection string (which may hold a password)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    # libpq: 'connection to server at "h", port p failed: FATAL:  database "x" does not exist'
    reason = lines[0].rsplit("failed: ", 1)[-1] if lines else type(exc).__name__
    for prefix in ("FATAL:", "ERROR:"):
        reason = reason.removeprefix(prefix).strip()
    return reason[:300]


def _same_as_v2() -> bool:
    a, b = connections[V1_ALIAS].settings_dict, connections["default"].settings_dict
    return all(str(a.get(k) or "") == str(b.get(k) or "") for k in ("HOST", "PORT", "NAME"))


def v1_preflight() -> V1Schema:
    """Connect to v1 and check its schema. Raises V1Unavailable / V1SchemaError with one message."""
    target = _describe_target()
    if _same_as_v2():
        raise V1SchemaError(f"V1_DATABASE_URL points at the v2 database itself ({target}): give the v1 database")
    conn = connections[V1_ALIAS]
    try:
        conn.ensure_connection()
        with conn.cursor() as cur:
            cur.execute(
                """SELECT table_name, column_name,
                          CASE WHEN data_type = 'USER-DEFINED' THEN data_type || ':' || udt_name ELSE data_type END,
                          is_nullable = 'YES', character_maximum_length, coalesce(numeric_scale, 0)
                   FROM information_schema.columns WHERE table_schema = ANY(current_schemas(false))"""
            )
            rows = cur.fetchall()
    except (DatabaseError, psycopg.Error) as exc:
        conn.close()
        raise V1Unavailable(f"cannot read the v1 database ({target}): {connection_reason(exc)}") from None
    found: dict[tuple[str, str], tuple] = {(t, c): (dt, n, ml, sc) for t, c, dt, n, ml, sc in rows}
    tables = {t for t, _ in found}
    if not tables & {m._meta.db_table for m in V1_MODELS}:
        hint = ""
        if "django_migrations" in tables or "organizations_organization" in tables:
            hint = " — it looks like a Parley v2 database: check V1_DATABASE_URL"
        raise V1SchemaError(f"v1 database {target} has none of the v1 tables (Accounts, Messages, …){hint}")
    lower_tables = {t.lower(): t for t in tables}
    problems: list[str] = []
    schema = V1Schema()
    for model in V1_MODELS:
        table = model._meta.db_table
        if table not in tables:
            other = lower_tables.get(table.lower())
            problems.append(
                f'missing table "{table}"' + (f' (found "{other}": identifiers must keep their case)' if other else "")
            )
            continue
        for f in model._meta.concrete_fields:
            col = str(f.column)
            info = found.get((table, col))
            if info is None:
                problems.append(f'missing column "{table}"."{col}"')
                continue
            data_type, nullable, max_length, scale = info
            kind = _kind(f)
            if data_type not in _ACCEPTED[kind] or (data_type == "numeric" and scale):
                problems.append(f'"{table}"."{col}" is {data_type}; the tool reads {_WANTED[kind]}')
                continue
            if f.primary_key and nullable:
                problems.append(f'"{table}"."{col}" is nullable but is the key the tool pages by')
                continue
            schema.columns[(table, col)] = Column(table, col, data_type, nullable, max_length)
    if problems:
        raise V1SchemaError(f"v1 database {target} cannot be migrated: " + "; ".join(problems))
    return schema
