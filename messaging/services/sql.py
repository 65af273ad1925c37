"""Executing the send pipeline's array statements with server-side, binary parameter binding.

Django's psycopg cursors bind client-side: every execute re-quotes 1000-element arrays into the SQL
text in Python (~0.1 s of a 1000-message send step, measured with cProfile). A plain psycopg
cursor on the same connection (so inside the same transaction) binds them as binary parameters.
Statements still appear in connection.queries when Django logs them, so the query-count tests and
the benchmark's counts see them.
"""

from __future__ import annotations

import time

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
    # wrap_database_errors: psycopg's errors surface as django.db's (DatabaseError, OperationalError...),
    # as through a Django cursor, so callers catch one family.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=prepare)
        rows = cursor.fetchall() if cursor.description else []
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - start:.3f}"})
    return rows
