"""The one mechanism behind the small v1 tables: a declared `TableSpec` per table (services/specs/)
drives it. Keyset batches are read through the unmanaged models, cleaned value by value, turned into
temp-table rows by the spec's `transform`, copied into a temp table, and written set-based by the
spec's `write` (INSERT ... SELECT per target). Column rules: docs/migration_v1.md.

Per batch, in one transaction with the table's checkpoint:
1. the ids of the range already migrated (`done_sql`) or quarantined are dropped before any Python
   work (phone parsing is most of a contact batch), so a rerun only reads and probes;
2. every value is cleaned (`_clean_rows`: bytea text decoded, booleans, lengths, required values);
3. `transform` turns the rows into temp-table rows, naming what it refuses (quarantined here);
4. the rows are copied into the spec's temp table; with `requires_account`, rows whose v1 account
   did not migrate are quarantined and dropped; with `skip_done`, rows already migrated too;
5. `write` runs the table's statements on the temp table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connection, models, transaction

from .convert import clean_text, row_json
from .engine import IDMAP_TABLE, QUARANTINE_TABLE, Context, copy_rows, progress_bar, temp_table, trust_references

Rows = list[tuple]

ORG_MISSING = "broken_reference_account"


class LazyRows:
    """v1 rows of a batch by id, turned into quarantine JSON only for the few rows that need it."""

    def __init__(self, columns: list[str], rows: Rows):
        self.columns = columns
        self.rows = {row[0]: row for row in rows}

    def __getitem__(self, v1_id: int) -> dict:
        return row_json(self.columns, self.rows[v1_id], secret_columns=SECRET_COLUMNS)


@dataclass
class Batch:
    """One batch on its way through the mechanism."""

    rows: Rows  # cleaned v1 rows (in `fields` order), not yet migrated
    out: Rows  # the temp-table rows `transform` made of them
    by_id: LazyRows  # v1 rows as quarantine JSON, by v1 id
    refused: list[tuple[int, str, str]] = field(default_factory=list)  # (v1_id, reason, detail)

    def refuse(self, v1_id: int, reason: str, detail: str = "") -> None:
        self.refused.append((v1_id, reason, detail))


def done_sql_idmap(table: str) -> str:
    """done_sql of a table whose rows the id map records (merges map several v1 rows to one v2 row)."""
    return f"SELECT v1_id FROM {IDMAP_TABLE} WHERE v1_table = '{table}' AND v1_id BETWEEN %s AND %s"  # noqa: S608 — table/column names from model metadata and module constants; values bound


def done_sql_own_v1_id(v2_table: str) -> str:
    """done_sql of a table whose v2 rows carry their v1 id."""
    return f"SELECT v1_id FROM {v2_table} WHERE v1_id BETWEEN %s AND %s"  # noqa: S608 — table/column names from model metadata and module constants; values bound


Transform = Callable[[Context, Batch], None]
Write = Callable[[Context, object, Batch], None]


@dataclass(frozen=True)
class TableSpec:
    """Everything that differs between the small tables; `spec(ctx)` migrates the table."""

    table: str  # v1 table name: counters, checkpoints, quarantine and decisions are keyed by it
    model: type[models.Model]  # the unmanaged v1 model it is read through
    fields: tuple[str, ...]  # v1 model fields read, primary key first
    account_field: str | None  # v1 field naming the account (scoped runs), if any
    line_field: str | None  # v1 field naming the line (scoped runs), if any
    # v1 ids of a range (params lo, hi) already migrated: dropped from a batch before any work.
    done_sql: str
    temp: str  # the batch's temp table
    temp_columns: tuple[tuple[str, str], ...]  # (name, type) in the order `transform` fills batch.out
    transform: Transform  # batch.rows → batch.out (+ batch.refuse(...) for rows v2 cannot take)
    write: Write  # the statements that write the temp table into v2
    requires_account: bool = True  # rows whose v1_account_id has no organization are quarantined
    # Drop rows migrated meanwhile (done_sql) from the temp table before write; off where the write's
    # ON CONFLICT counts them itself.
    skip_done: bool = True

    def __call__(self, ctx: Context) -> None:
        run_table(ctx, self)


def run_table(ctx: Context, spec: TableSpec) -> None:
    """Keyset batches of a v1 table (ORM, values_list), each processed and checkpointed atomically."""
    table, model = spec.table, spec.model
    stats = ctx.table(table)
    started = time.perf_counter()
    pk = model._meta.pk.attname
    fields = list(spec.fields)
    columns = [str(model._meta.get_field(f).column) for f in fields]  # type: ignore[union-attr]
    last = ctx.checkpoint(table)
    qs = model._default_manager.filter(**ctx.scope_filter(account_field=spec.account_field, line_field=spec.line_field))
    qs = qs.order_by(pk)
    total = qs.filter(**{f"{pk}__gt": last}).count()
    with progress_bar(ctx, table, total) as bar:
        while True:
            rows = list(qs.filter(**{f"{pk}__gt": last}).values_list(*fields)[: ctx.batch_size])
            if not rows:
                break
            with transaction.atomic():
                with connection.cursor() as cur:
                    cur.execute(
                        f"""SELECT v1_id, true FROM ({spec.done_sql}) d UNION ALL SELECT v1_id, false
                            FROM {QUARANTINE_TABLE} WHERE v1_table = %s AND v1_id BETWEEN %s AND %s""",  # noqa: S608 — table/column names from model metadata and module constants; values bound
                        [rows[0][0], rows[-1][0], table, rows[0][0], rows[-1][0]],
                    )
                    done = {v1_id: migrated for v1_id, migrated in cur.fetchall()}
                    if done:
                        ids = {row[0] for row in rows}
                        stats.skipped += sum(1 for i in done if i in ids)
                        stats.bump("already_quarantined", sum(1 for i, m in done.items() if not m and i in ids))
                    if ctx.trust_references:
                        trust_references(cur)
                todo = [row for row in rows if row[0] not in done] if done else rows
                todo = _clean_rows(ctx, table, model, fields, columns, todo)
                before = (stats.written, stats.merged, sum(stats.extra.values()))
                if todo:
                    _write_batch(ctx, spec, todo, columns)
                if (stats.written, stats.merged, sum(stats.extra.values())) != before:
                    ctx.mark_dirty()
                last = rows[-1][0]
                ctx.set_checkpoint(table, last)
            stats.read += len(rows)
            bar.update(len(rows))
            ctx.batch_committed(table)
    stats.seconds += time.perf_counter() - started


def _write_batch(ctx: Context, spec: TableSpec, rows: Rows, columns: list[str]) -> None:
    batch = Batch(rows=rows, out=[], by_id=LazyRows(columns, rows))
    spec.transform(ctx, batch)
    ctx.quarantine(spec.table, [(v1_id, reason, detail, batch.by_id[v1_id]) for v1_id, reason, detail in batch.refused])
    with connection.cursor() as cur:
        temp_table(cur, spec.temp, ", ".join(f"{name} {kind}" for name, kind in spec.temp_columns))
        copy_rows(cur, spec.temp, [name for name, _ in spec.temp_columns], batch.out)
        if spec.requires_account:
            missing = f"""FROM {spec.temp} t WHERE NOT EXISTS
                (SELECT 1 FROM organizations_organization o WHERE o.v1_id = t.v1_account_id)"""  # noqa: S608 — table/column names from model metadata and module constants; values bound
            quarantine_unresolved(ctx, spec.table, cur, f"SELECT t.v1_id, '{ORG_MISSING}' {missing}", batch.by_id)
            cur.execute(f"DELETE {missing}")
        if spec.skip_done:
            # Rows an earlier run migrated (the probe above saw them not yet): a rerun writes nothing.
            cur.execute(
                f"DELETE FROM {spec.temp} t USING ({spec.done_sql}) d WHERE d.v1_id = t.v1_id",  # noqa: S608 — table/column names from model metadata and module constants; values bound
                [rows[0][0], rows[-1][0]],
            )
            ctx.table(spec.table).skipped += cur.rowcount
        spec.write(ctx, cur, batch)


def quarantine_unresolved(ctx: Context, table: str, cur, sql: str, by_id: LazyRows) -> None:
    """Rows of the batch the SQL step could not resolve (query returns v1_id, reason)."""
    cur.execute(sql)
    items = [(v1_id, reason, "", by_id[v1_id]) for v1_id, reason in cur.fetchall()]
    ctx.quarantine(table, items)


# v2 column lengths a v1 text value must fit (longer → quarantined `too_long`, never cut).
TEXT_LIMITS = {
    ("Accounts", "Name"): 200,
    ("Users", "FirstName"): 150,
    ("Users", "LastName"): 150,
    ("Lines", "Name"): 100,
    ("Contacts", "FirstName"): 100,
    ("Contacts", "LastName"): 100,
    ("Contacts", "Email"): 254,
    ("Blasts", "Name"): 200,
}
# A NULL in a boolean column is read as the default the v1 DDL declares (reported per row).
BOOL_DEFAULTS = {"IsActive": True, "IsDeleted": False, "IsOptedOut": False, "IsClosed": False}
# Columns v2 needs a value for and that have no documented default: NULL → quarantined `missing_value`.
REQUIRED = {"CreatedOn"}
SECRET_COLUMNS = ("ProviderConfig",)


def _clean_rows(ctx: Context, table: str, model, fields: list[str], columns: list[str], rows: Rows) -> Rows:
    """Per value: bytes from bytea text columns decoded, booleans from 0/1 integers, NULL booleans
    read as their v1 default; a value v2 cannot hold (NUL, bad bytes, too long, a required NULL)
    sends the row to quarantine with the column named. One pass, no query."""
    kinds = []
    for f, col in zip(fields, columns, strict=True):
        internal = model._meta.get_field(f).get_internal_type()
        kinds.append((col, internal, TEXT_LIMITS.get((table, col))))
    out: Rows = []
    bad: list = []
    nulls: dict[str, list[int]] = {}
    for row in rows:
        values = list(row)
        problem = None
        for i, (col, internal, limit) in enumerate(kinds):
            v = values[i]
            if internal in ("CharField", "TextField", "BinaryField"):
                values[i], why = clean_text(v, limit)
                if why:
                    problem = (why, f"{col}")
                    break
            elif internal == "BooleanField":
                if v is None:
                    values[i] = BOOL_DEFAULTS.get(col, False)
                    nulls.setdefault(f"null_{col}_read_as_{str(values[i]).lower()}", []).append(row[0])
                elif not isinstance(v, bool):
                    values[i] = bool(v)
            elif col in REQUIRED and v is None:
                problem = ("missing_value", f"{col} is NULL")
                break
        if problem:
            bad.append((row[0], problem[0], problem[1], row_json(columns, row, secret_columns=SECRET_COLUMNS)))
        else:
            out.append(tuple(values))
    for code, ids in nulls.items():
        ctx.decide(table, code, ids)
    ctx.quarantine(table, bad)
    return out
