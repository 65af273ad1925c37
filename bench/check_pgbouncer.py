"""What breaks behind PgBouncer in transaction mode, checked against DATABASE_URL (docs/scaling.md).

Point DATABASE_URL at a PgBouncer with `pool_mode = transaction` (a pool of at least a few server
connections) and run:  .venv/bin/python bench/check_pgbouncer.py
Each session-scoped PostgreSQL feature is used as code would use it in autocommit; between its first
transaction and the next, other clients pin that server connection (as load does at any moment), so
the next one runs elsewhere. "ok" or what went wrong. Direct to PostgreSQL every line reads "ok" (the
pinning clients then have sessions of their own). The last line of output is one JSON object.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import django_setup  # noqa: E402

django_setup()

import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from messaging.models import Line  # noqa: E402


def _scalar(sql: str, params: list | None = None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchone()[0]


def _dsn() -> str:
    s = settings.DATABASES["default"]
    return f"host={s['HOST']} port={s['PORT'] or 5432} dbname={s['NAME']} user={s['USER']}"


@contextmanager
def _pinned(backend_pid: int) -> Iterator[None]:
    """Other clients hold open transactions until one of them holds `backend_pid`'s server connection:
    the checked client's next transaction must then run on another one, as it may any time under load.
    Direct to PostgreSQL no client ever gets another's backend: nothing to pin, the check runs as is."""
    held: list[psycopg.Connection] = []
    try:
        for _ in range(MAX_PINS):
            conn = psycopg.connect(_dsn())  # not autocommit: the SELECT opens a transaction, pinning
            held.append(conn)
            if conn.execute("SELECT pg_backend_pid()").fetchone()[0] == backend_pid:
                break
        yield
    finally:
        for conn in held:
            conn.close()


def _try(check) -> str:
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 - the error is the finding
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"


LOCK_KEY = 0x0BACF1FF
MAX_PINS = 20  # more than the pool's server connections (default_pool_size)


def advisory_lock() -> str:
    """Session lock, then unlock in a later transaction (what backfill and integrations did)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s), pg_backend_pid()", [LOCK_KEY])
        got, pid = cursor.fetchone()
    with _pinned(pid):
        released = _scalar("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
    left = _scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s", [LOCK_KEY])
    if left:  # stranded on a pooled server connection: end that backend so the check leaves nothing behind
        _scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s",
            [LOCK_KEY],
        )
    return "ok" if got and released and not left else f"stranded (locked {got}, unlocked {released}, left held {left})"


def session_set() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('statement_timeout', '1234ms', false), pg_backend_pid()")
        pid = cursor.fetchone()[1]
    with _pinned(pid):
        seen = _scalar("SHOW statement_timeout")
    return (
        "ok"
        if seen == "1234ms"
        else f"lost: the next transaction saw statement_timeout={seen} (and it leaks to others)"
    )


def temp_table() -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE pgb_check (id int) ON COMMIT PRESERVE ROWS")
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    with _pinned(pid):
        _scalar("SELECT count(*) FROM pgb_check")
    return "ok"


def server_side_cursor() -> str:
    rows = Line.objects.order_by("id").values_list("id", flat=True).iterator(chunk_size=1)
    first = next(rows)  # DECLARE … WITH HOLD (autocommit) and the first FETCH
    pid = _scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE %s LIMIT 1",
        ["%FETCH FORWARD%"],
    )
    if pid is None:
        return f"ok ({first} read client-side: no server-side cursor)"
    with _pinned(pid):
        rest = list(rows)
    return f"ok ({1 + len(rest)} rows)"


def prepared_statements() -> str:
    """psycopg's own preparation (prepare_threshold=0) on a plain connection: Django turns it off."""
    with psycopg.connect(_dsn(), autocommit=True, prepare_threshold=0) as conn:
        conn.execute("SELECT %s::int, pg_backend_pid()", [1])
        pid = conn.execute("SELECT %s::int, pg_backend_pid()", [1]).fetchone()[1]
        with _pinned(pid):
            conn.execute("SELECT %s::int, pg_backend_pid()", [1]).fetchone()
    return "ok"


def main() -> None:
    checks = {
        "session_advisory_lock": advisory_lock,
        "session_set": session_set,
        "temp_table_across_transactions": temp_table,
        "queryset_iterator_server_side_cursor": server_side_cursor,
        "psycopg_prepared_statements": prepared_statements,
    }
    s = settings.DATABASES["default"]
    out: dict = {
        "check": "pgbouncer",
        "port": s["PORT"],
        "disable_server_side_cursors": bool(s.get("DISABLE_SERVER_SIDE_CURSORS")),
        "django_prepare_threshold": s.get("OPTIONS", {}).get("prepare_threshold"),
    }
    for name, check in checks.items():
        out[name] = _try(check)
        connection.close()
        print(f"{name}: {out[name]}", flush=True)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
