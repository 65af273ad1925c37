"""--bulk-load: the first migration into a v2 that is not live yet, without per-row index maintenance.

At the start of the Messages step the non-unique secondary indexes of messaging_message are dropped
(the primary key and every unique index stay: ON CONFLICT (v1_id) and the uniqueness rules need
them), the rows are loaded, and the indexes are recreated from the exact definitions captured
beforehand (pg_get_indexdef, what pg_indexes shows). A sorted rebuild of each index costs a fraction
of updating it row by row.

Safety:
- Refused when messaging_message holds messages that did not come from v1 (v2 is live: its queries
  and work-queue sweeps need those indexes).
- The definitions are stored in the run record (MigrationRun.options["bulk_load_indexes"]) and
  committed *before* anything is dropped; the rebuild runs in a `finally`; and every later
  (non-dry) run first recreates whatever a crashed bulk run left dropped (`bulk_recover`).
- A session advisory lock marks a bulk load in progress, so a concurrent run does not "recover"
  indexes another live run has just dropped.
"""

from __future__ import annotations

import time

from django.db import connection

from messaging.models import Message

from ..models import MigrationRun
from .errors import V1InputError

MESSAGE_TABLE = Message._meta.db_table
ADVISORY_KEY = 0x6D6967763162  # "migv1b": a bulk load holds it for its Messages step
PENDING = "bulk_load_indexes"  # run.options key: definitions of indexes dropped, not yet restored
RESTORED = "bulk_load_restored"

# Non-unique, non-primary indexes that back no constraint: the ones a bulk load may drop.
_DROPPABLE_SQL = """
SELECT c.relname, pg_get_indexdef(x.indexrelid)
FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
WHERE x.indrelid = %s::regclass AND NOT x.indisunique AND NOT x.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)
ORDER BY c.relname
"""


class BulkLoadRefused(V1InputError):
    """--bulk-load asked for on a v2 database that already serves its own messages."""


def droppable_indexes() -> list[tuple[str, str]]:
    """(name, CREATE INDEX definition) of the indexes a bulk load drops, by name."""
    with connection.cursor() as cur:
        cur.execute(_DROPPABLE_SQL, [MESSAGE_TABLE])
        return [(name, definition) for name, definition in cur.fetchall()]


def _existing(names: list[str]) -> set[str]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ANY(%s)",
            [names],
        )
        return {r[0] for r in cur.fetchall()}


def _create(cur, name: str, definition: str) -> None:
    """An index declared in Message.Meta.indexes is recreated through Django's schema editor — the very
    SQL its migration ran, so pg_indexes shows the same text (PostgreSQL re-parsing its own deparsed
    predicate, e.g. `status IN (...)`, would store an equivalent but differently written expression);
    other indexes (the single-column FK ones) from the captured definition, which round-trips exactly."""
    declared = {index.name: index for index in Message._meta.indexes}.get(name)
    if declared is None:
        cur.execute(definition)
        return
    with connection.schema_editor(atomic=False) as editor:
        editor.add_index(Message, declared)


def _recreate(definitions: list[tuple[str, str]]) -> list[str]:
    """Create the indexes of `definitions` that do not exist; returns the names created."""
    missing = _existing([n for n, _ in definitions])
    todo = [(n, d) for n, d in definitions if n not in missing]
    if not todo:
        return []
    with connection.cursor() as cur:
        if connection.in_atomic_block:
            # Inside one transaction (dry-run-like test runs) deferred FK checks may still be pending,
            # and CREATE INDEX refuses a table with pending trigger events: run them now.
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        # Each index is built by one sort of the table: give it memory (session setting, reset below).
        cur.execute("SET maintenance_work_mem = '256MB'")
        try:
            for name, definition in todo:
                _create(cur, name, definition)
        finally:
            cur.execute("RESET maintenance_work_mem")
    return [n for n, _ in todo]


def bulk_recover() -> list[str]:
    """Recreate indexes a crashed bulk load left dropped (definitions from its run record).

    Skipped while another session holds the bulk-load lock (a live bulk run). Returns the names
    recreated."""
    pending = [
        run
        for run in MigrationRun.objects.filter(**{f"options__{PENDING}__isnull": False})
        if run.options.get(RESTORED) is not True
    ]
    if not pending:
        return []
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_KEY])
        if not cur.fetchone()[0]:
            return []
    try:
        created: list[str] = []
        for run in pending:
            created += _recreate([tuple(d) for d in run.options[PENDING]])  # type: ignore[misc]
            _mark_restored(run.pk)
        return created
    finally:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_KEY])


def _mark_restored(run_id: int) -> None:
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE migration_v1_migrationrun SET options = options || %s::jsonb WHERE id = %s",
            [f'{{"{RESTORED}": true}}', run_id],
        )


def bulk_begin(run_id: int | None) -> list[tuple[str, str]]:
    """Record the definitions in the run record, then drop the indexes. Call outside a transaction
    (or in the test's): the record must be committed before the drop."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT EXISTS (SELECT 1 FROM {MESSAGE_TABLE} WHERE v1_id IS NULL)")  # noqa: S608 — table/column names from model metadata and module constants; values bound
        if cur.fetchone()[0]:
            raise BulkLoadRefused(
                "--bulk-load: messaging_message holds messages that did not come from v1 (v2 is live); "
                "run without --bulk-load"
            )
        cur.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_KEY])
    definitions = droppable_indexes()
    if run_id is not None:
        with connection.cursor() as cur:
            cur.execute(
                "UPDATE migration_v1_migrationrun SET options = options || jsonb_build_object(%s, %s::jsonb) "
                "WHERE id = %s",
                [PENDING, _json(definitions), run_id],
            )
    with connection.cursor() as cur:
        for name, _ in definitions:
            cur.execute(f'DROP INDEX IF EXISTS "{name}"')
    return definitions


def bulk_end(run_id: int | None, definitions: list[tuple[str, str]]) -> float:
    """Recreate the dropped indexes (exact definitions), mark the run record restored, release the
    lock. Returns the rebuild seconds."""
    started = time.perf_counter()
    try:
        _recreate(definitions)
        if run_id is not None:
            _mark_restored(run_id)
    finally:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_KEY])
    return time.perf_counter() - started


def _json(definitions: list[tuple[str, str]]) -> str:
    import json

    return json.dumps([list(d) for d in definitions])
