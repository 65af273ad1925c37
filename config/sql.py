"""The one way raw SQL runs outside the ORM: server-side, binary parameter binding on Django's connection.

Django's psycopg 3 cursors bind client-side: every execute quotes each element of an array parameter
into the SQL text in Python (~0.1 s of a 1000-message send step; ~40 % of a 20,000-link INSERT,
measured with cProfile). A plain psycopg cursor on the same connection (so inside the same
transaction) sends the parameters bound, and with `%b` placeholders in binary (5 arrays of 20,000
strings dump in 0.11 s instead of 0.32 s as text). Both entry points surface psycopg's errors as
django.db's (DatabaseError, OperationalError...) and log their statements to `connection.queries`
when Django logs queries, so `django_assert_num_queries` and the benchmarks' counts see them:

- `execute(sql, params)` runs one statement and returns its rows (the send pipeline, report apply);
- `binding_cursor()` is a Django cursor wrapper over such a cursor, for several statements in a row
  (the shortener's link inserts and click batches);
- `TimedCursor` adds each statement's time to a per-kind total (the v1 migration's step breakdown);
- `sql_literals(...)` writes declared enum values into statement text where a parameter cannot go.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from django.db import connection


def execute(sql: str, params: list, *, prepare: bool | None = None) -> list[tuple]:
    """Run one statement (use %b for array parameters); returns its rows ([] when it returns none).

    prepare=True: a server-side prepared statement, parsed and planned once per connection (Django
    turns psycopg's automatic preparation off). For small fixed-shape statements only: after five
    runs PostgreSQL may switch a prepared statement to a generic plan, which for the array
    statements would not know the arrays' sizes."""
    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    start = time.monotonic()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=prepare)
        rows = cursor.fetchall() if cursor.description else []
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - start:.3f}"})
    return rows


def binding_cursor():
    """A Django cursor (use it as a context manager) whose statements bind server-side (%b: binary)."""
    connection.ensure_connection()
    # Any: django-stubs type make_cursor's argument as Django's own wrapper; it takes a DB-API cursor.
    raw: Any = psycopg.Cursor(connection.connection)
    return connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)


def statement_kind(sql: str) -> str:
    """A statement's first four words (at most 40 characters): the key of TimedCursor's totals."""
    return " ".join(sql.split()[:4])[:40]


class TimedCursor:
    """A cursor proxy handing each statement's duration to `record(kind, seconds)`."""

    def __init__(self, cursor, record: Callable[[str, float], None]):
        self._cursor, self._record = cursor, record

    def execute(self, sql: str, params: Any = None):
        started = time.perf_counter()
        self._cursor.execute(sql, params)
        self._record(statement_kind(sql), time.perf_counter() - started)

    def __getattr__(self, name: str):
        return getattr(self._cursor, name)


def sql_literals(*values: enum.Enum | Iterable[enum.Enum]) -> str:
    """Declared names as a SQL literal list: `sql_literals(S.SENT, S.DELIVERED)` → `'sent', 'delivered'`.

    For statements whose text must name a status, a state or an event type (CASE arms, FILTER clauses,
    guards the planner matches against a partial index): the names come from their one definition
    (a TextChoices of the app that owns the column), never typed into the SQL (tests/test_architecture.py
    fails on a typed one). Only enum members pass (a plain string is refused), sets are accepted and
    sorted so the statement text is stable. The values are our own constants, so quoting them is safe.
    """
    members: list[enum.Enum] = []
    for v in values:
        if isinstance(v, enum.Enum):
            members.append(v)
        elif isinstance(v, str):
            raise TypeError(f"sql_literals takes declared enum members, not {v!r}")
        else:
            members.extend(sorted(v, key=str))
    if not members:
        raise ValueError("sql_literals needs at least one name")
    for m in members:
        if not isinstance(m, enum.Enum) or "'" in m.value:
            raise TypeError(f"sql_literals takes declared enum members, not {m!r}")
    return ", ".join(f"'{m.value}'" for m in members)
