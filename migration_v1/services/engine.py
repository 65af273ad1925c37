"""Run machinery shared by the table steps: scope, counters, checkpoints, quarantine, temp tables.

Every batch is one transaction on the v2 database holding its rows, its quarantined rows and the
table's checkpoint, so a crash at any point leaves whole batches only and a rerun resumes after the
last committed one (docs/migration_v1.md, "Idempotency").
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections, models
from django.db.models import NOT_PROVIDED
from psycopg.types.json import Jsonb

from ..db import V1_ALIAS
from ..models import V1Account, V1Line
from .errors import ScopeNotFound
from .preflight import V1Schema

CHECKPOINT_TABLE = "migration_v1_migrationcheckpoint"
QUARANTINE_TABLE = "migration_v1_quarantinedrow"
IDMAP_TABLE = "migration_v1_idmap"


class SimulatedCrash(RuntimeError):
    """Raised by the test hook `stop_after` after N committed batches of a table."""


@dataclass(frozen=True)
class Scope:
    kind: str = "all"  # all | account | line
    id: int | None = None

    @property
    def key(self) -> str:
        return "all" if self.kind == "all" else f"{self.kind}:{self.id}"

    @classmethod
    def parse(cls, *, account: int | None = None, line: int | None = None) -> Scope:
        if account is not None and line is not None:
            raise ValueError("--account and --line are exclusive")
        if account is not None:
            return cls("account", account)
        if line is not None:
            return cls("line", line)
        return cls()


@dataclass
class TableStats:
    read: int = 0
    written: int = 0
    merged: int = 0
    quarantined: int = 0
    skipped: int = 0  # already migrated or already quarantined by an earlier run
    seconds: float = 0.0
    extra: dict[str, int] = field(default_factory=dict)

    def bump(self, key: str, n: int = 1) -> None:
        if n:
            self.extra[key] = self.extra.get(key, 0) + n


@dataclass
class Context:
    scope: Scope
    batch_size: int
    dry_run: bool = False
    progress: bool = False
    from_start: bool = False
    stop_after: tuple[str, int] | None = None
    # Skip FK triggers on the message insert (references come from joins; see engine.trust_references).
    trust_references: bool = True
    writers: int = 3  # concurrent message-batch writers (see pipeline.WriterPool, services.DEFAULT_WRITERS)
    # --bulk-load (services.bulk): secondary indexes of messaging_message dropped for the Messages step.
    bulk_load: bool = False
    bulk: dict[str, Any] = field(default_factory=dict)
    parallel: bool = False
    lock: threading.RLock = field(default_factory=threading.RLock)
    _dirty: bool = False
    run_id: int | None = None
    account_ids: list[int] | None = None  # v1 ids in scope; None = all
    line_ids: list[int] | None = None
    stats: dict[str, TableStats] = field(default_factory=dict)
    reasons: Counter = field(default_factory=Counter)
    warnings: Counter = field(default_factory=Counter)
    _batches: Counter = field(default_factory=Counter)
    # Every non-copy decision, named: "<v1 table>: <code>" → v1 ids (docs/migration_v1.md, "Decisions").
    decisions: dict[str, list[int]] = field(default_factory=dict)
    schema: V1Schema | None = None
    # Seconds per statement kind of the Messages step (the report's breakdown).
    timings: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add_timing(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.timings[kind] += seconds

    def table(self, name: str) -> TableStats:
        return self.stats.setdefault(name, TableStats())

    def warn(self, code: str, n: int = 1) -> None:
        if n:
            self.warnings[code] += n

    def decide(self, table: str, code: str, ids) -> None:
        """Record a decision that is not a straight copy, naming the v1 rows it applies to."""
        ids = list(ids)
        if ids:
            with self.lock:
                self.decisions.setdefault(f"{table}: {code}", []).extend(ids)

    # --- checkpoints -------------------------------------------------------------------------
    def checkpoint(self, table: str) -> int:
        if self.from_start:
            return 0
        with connection.cursor() as cur:
            cur.execute(
                f'SELECT last_v1_id FROM {CHECKPOINT_TABLE} WHERE scope = %s AND "table" = %s',  # noqa: S608 — table/column names from model metadata and module constants; values bound
                [self.scope.key, table],
            )
            row = cur.fetchone()
        return row[0] if row else 0

    def set_checkpoint(self, table: str, last_v1_id: int) -> None:
        with connection.cursor() as cur:
            cur.execute(
                f"""INSERT INTO {CHECKPOINT_TABLE} (scope, "table", last_v1_id, updated_at)
                    VALUES (%s, %s, %s, now())
                    ON CONFLICT (scope, "table") DO UPDATE
                    SET last_v1_id = GREATEST({CHECKPOINT_TABLE}.last_v1_id, EXCLUDED.last_v1_id),
                        updated_at = now()""",  # noqa: S608 — table/column names from model metadata and module constants; values bound
                [self.scope.key, table, last_v1_id],
            )

    def mark_dirty(self) -> None:
        """This run changed v2 data: drop the "derived fields are up to date" markers (every scope), in
        the writing batch's transaction, so a crash before the derived step cannot leave them set."""
        if self._dirty:
            return
        with connection.cursor() as cur:
            cur.execute(f"""DELETE FROM {CHECKPOINT_TABLE} WHERE "table" = 'derived'""")  # noqa: S608 — table/column names from model metadata and module constants; values bound
        self._dirty = True

    def derived_current(self) -> bool:
        with connection.cursor() as cur:
            sql = f"""SELECT 1 FROM {CHECKPOINT_TABLE} WHERE scope = %s AND "table" = 'derived'"""  # noqa: S608 — constant table name
            cur.execute(sql, [self.scope.key])
            return cur.fetchone() is not None

    def batch_committed(self, table: str) -> None:
        self._batches[table] += 1
        if self.stop_after and self.stop_after[0] == table and self._batches[table] >= self.stop_after[1]:
            raise SimulatedCrash(f"stopped after {self._batches[table]} batches of {table}")

    # --- quarantine ----------------------------------------------------------------------------
    def quarantine(self, table: str, items: list[tuple[int, str, str, dict]]) -> set[int]:
        """items: (v1_id, reason, detail, row dict with secrets already removed). Returns the ids
        newly quarantined (an id quarantined by an earlier run counts as skipped)."""
        if not items:
            return set()
        with connection.cursor() as cur:
            cur.execute(
                f"""INSERT INTO {QUARANTINE_TABLE} (run_id, v1_table, v1_id, reason, detail, row, created_at)
                    SELECT %s, %s, t.v1_id, t.reason, t.detail, t.row, now()
                    FROM unnest(%s::bigint[], %s::varchar[], %s::varchar[], %s::jsonb[])
                         AS t(v1_id, reason, detail, row)
                    ON CONFLICT (v1_table, v1_id) DO NOTHING RETURNING v1_id""",  # noqa: S608 — table/column names from model metadata and module constants; values bound
                [
                    self.run_id,
                    table,
                    [i[0] for i in items],
                    [i[1] for i in items],
                    [i[2][:300] for i in items],
                    [Jsonb(i[3]) for i in items],
                ],
            )
            new = {r[0] for r in cur.fetchall()}
        # Rows an earlier run already quarantined are counted as skipped, not quarantined again.
        with self.lock:
            stats = self.table(table)
            stats.quarantined += len(new)
            stats.skipped += len(items) - len(new)
            stats.bump("already_quarantined", len(items) - len(new))
            for v1_id, reason, _, _ in items:
                if v1_id in new:
                    self.reasons[f"{table}: {reason}"] += 1
        return new

    def scope_filter(self, *, account_field: str | None, line_field: str | None) -> dict[str, Any]:
        """ORM filter for a v1 model in this scope (the line scope filters by line where it can)."""
        if self.scope.kind == "all":
            return {}
        if self.scope.kind == "line" and line_field:
            return {f"{line_field}__in": self.line_ids}
        if account_field:
            return {f"{account_field}__in": self.account_ids}
        return {f"{line_field}__in": self.line_ids}

    def report(self) -> dict:
        tables = {}
        for name, s in self.stats.items():
            entry = asdict(s)
            if name != "derived":
                # read = written + merged + quarantined + skipped, for every table of every run.
                entry["unaccounted"] = s.read - s.written - s.merged - s.quarantined - s.skipped
            tables[name] = entry
        return {
            "scope": self.scope.key,
            "dry_run": self.dry_run,
            "preflight": self.schema.summary() if self.schema else {},
            "tables": tables,
            "quarantined_by_reason": dict(sorted(self.reasons.items())),
            "decisions": {key: {"count": len(ids), "ids": sorted(ids)} for key, ids in sorted(self.decisions.items())},
            "warnings": dict(sorted(self.warnings.items())),
            "bulk_load": self.bulk,
            "message_step_seconds": {k: round(v, 2) for k, v in sorted(self.timings.items(), key=lambda kv: -kv[1])},
        }


def resolve_scope(ctx: Context) -> None:
    """v1 account and line ids of the scope (the line scope also brings its account's shared rows)."""
    if ctx.scope.kind == "all":
        return
    lines = V1Line.objects.all()
    assert ctx.scope.id is not None
    if ctx.scope.kind == "account":
        if not V1Account.objects.filter(account_id=ctx.scope.id).exists():
            raise ScopeNotFound(f"--account {ctx.scope.id}: v1 has no account with AccountId {ctx.scope.id}")
        ctx.account_ids = [ctx.scope.id]
        ctx.line_ids = list(lines.filter(account_id=ctx.scope.id).values_list("line_id", flat=True))
    else:
        line = lines.filter(line_id=ctx.scope.id).values_list("account_id", flat=True).first()
        if line is None:
            raise ScopeNotFound(f"--line {ctx.scope.id}: v1 has no line with LineId {ctx.scope.id}")
        ctx.account_ids = [line]
        ctx.line_ids = [ctx.scope.id]


def trust_references(cur) -> None:
    """Skip the foreign-key triggers for this batch's transaction, when the role may.

    Every reference the migration writes comes from a join to the referenced row inside the same
    transaction (e.g. a message's conversation → organization, line, contact; blast and sender only
    when found),
    so the deferred FK checks would re-verify exactly what the joins established — at ~6 index probes
    per row, measured as ~40% of the batch time. Needs superuser (or GRANT SET ON PARAMETER
    session_replication_role); without it the checks simply run. --verify still counts everything.
    """
    cur.execute("SAVEPOINT mig_replica")
    try:
        cur.execute("SET LOCAL session_replication_role = replica")
    except Exception:  # noqa: BLE001 - insufficient privilege: keep the checks
        cur.execute("ROLLBACK TO SAVEPOINT mig_replica")
    cur.execute("RELEASE SAVEPOINT mig_replica")


def v1_raw():
    """The psycopg connection behind the v1 alias (COPY needs it)."""
    conn = connections[V1_ALIAS]
    conn.ensure_connection()
    return conn.connection


def temp_table(cur, name: str, columns: str) -> None:
    """A session temp table, emptied. TRUNCATE (not ON COMMIT DROP) because in a dry run or a test
    the batch transaction is a savepoint and never commits."""
    cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} ({columns})")
    cur.execute(f"TRUNCATE {name}")


def copy_rows(cur, name: str, columns: list[str], rows) -> None:
    with cur.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as cp:
        for row in rows:
            cp.write_row(row)


def insert_columns(model: type[models.Model], explicit: dict[str, str]) -> tuple[str, str, list]:
    """(column list, SELECT expression list, params) for an INSERT ... SELECT into `model`'s table.

    Columns not given explicitly get the model field's default as a parameter, so fields that other
    areas add later (with a default) do not break the migration's raw SQL.
    """
    cols: list[str] = []
    exprs: list[str] = []
    params: list = []
    for f in model._meta.concrete_fields:
        col = str(f.column)
        if col in explicit:
            cols.append(col)
            exprs.append(explicit[col])
            continue
        if f.primary_key:
            continue
        if f.db_default is not NOT_PROVIDED:
            continue
        if f.has_default():
            exprs.append("%s")
            params.append(f.get_db_prep_save(f.get_default(), connection))
        elif f.null:
            exprs.append("NULL")
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            exprs.append("now()")
        elif f.empty_strings_allowed and not isinstance(f, models.DateTimeField):
            exprs.append("''")
        else:
            raise ImproperlyConfigured(f"migration_v1: no value for {model.__name__}.{f.name}")
        cols.append(col)
    missing = set(explicit) - set(cols)
    if missing:
        raise ImproperlyConfigured(f"migration_v1: {model.__name__} has no column(s) {sorted(missing)}")
    return ", ".join(cols), ", ".join(exprs), params


class _LineProgress:
    """Progress for output that is not a terminal (a log, a pipe): no cursor escapes, no redraws —
    one line per bar when it closes."""

    def __init__(self, desc: str, total: int):
        self.desc, self.total, self.n = desc, total, 0
        self.started = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.n += n

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        seconds = time.perf_counter() - self.started
        sys.stderr.write(f"{self.desc} {self.n}/{self.total} rows in {seconds:.1f} s\n")
        sys.stderr.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Quiet(_LineProgress):
    def close(self) -> None:
        pass


def progress_bar(ctx: Context, table: str, total: int):
    """A tqdm bar on a terminal; one plain line per table when stderr is not a terminal."""
    desc = f"{table:<14}"
    if not ctx.progress:
        return _Quiet(desc, total)
    if not sys.stderr.isatty():
        return _LineProgress(desc, total)
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="rows", file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
