"""Benchmark of the v1 → v2 migration (make bench-migrate). See docs/migration_v1.md, "Benchmark".

Seeds a v1 database (default 1,000,000 messages, proportionate accounts/lines/contacts/conversations),
migrates it into a fresh v2 database, then:
  - rows/s per table and overall (first run),
  - the limit: a plain binary COPY of the v1 Messages table into a scratch table of the v2 server
    (same run, same machine),
  - a rerun over the migrated data from the start (checkpoints ignored: every row read again, each
    skipped by its v1_id) and a rerun with checkpoints; both must write nothing (counted with
    pg_stat_user_tables inserts/updates/deletes over the v2 data tables),
  - verify time,
  - peak memory: ru_maxrss of this process and of its children (getrusage; Linux reports KiB).
The last line of output is one JSON object with every figure.

Runs under `flock /tmp/parley-bench.lock` (re-executes itself under it), so benchmarks never overlap on
the shared 2-core machine. Databases: the v2 server of DATABASE_URL (else the embedded one); the v2
data goes to a scratch database "<name>_migbench" (dropped and recreated), v1 to V1_DATABASE_URL or
"parley_v1" on the same server.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

LOCK = "/tmp/parley-bench.lock"  # noqa: S108 (the team-wide benchmark lock)

if os.environ.get("PARLEY_BENCH_LOCKED") != "1":
    os.environ["PARLEY_BENCH_LOCKED"] = "1"
    # flock(1) from PATH, as in every benchmark's documented command line.
    os.execvp("flock", ["flock", LOCK, sys.executable, *sys.argv])  # noqa: S606, S607

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Benchmarks run with DEBUG off: bench.common supplies a benchmark-only SECRET_KEY when none is set.
import django  # noqa: E402

import bench.common  # noqa: E402,F401

django.setup()

import psycopg  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402

from migration_v1.db import dsn_for, ensure_v1_alias, v1_dsn  # noqa: E402
from migration_v1.seed import SeedSizes, create_database, v1_seed  # noqa: E402
from migration_v1.services import DEFAULT_BATCH_SIZE, DEFAULT_WRITERS, v1_migrate, v1_verify  # noqa: E402

DATA_TABLES_SQL = """
SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables
WHERE schemaname = 'public' AND (relname LIKE 'messaging\\_%%' OR relname LIKE 'organizations\\_%%'
      OR relname LIKE 'carriers\\_%%' OR relname IN ('auth_user', 'migration_v1_idmap', 'migration_v1_quarantinedrow'))
"""


def data_writes() -> int:
    """Rows inserted/updated/deleted so far in the v2 data tables (our own backend's stats flushed)."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_stat_force_next_flush()")
    time.sleep(1.2)  # the stats collector publishes at most once a second
    with connection.cursor() as cur:
        cur.execute("SELECT pg_stat_clear_snapshot()")
        cur.execute(DATA_TABLES_SQL)
        return int(cur.fetchone()[0])


def fresh_v2_database() -> str:
    settings_dict = connections["default"].settings_dict
    name = f"{settings_dict['NAME']}_migbench"
    connection.close()
    settings_dict["NAME"] = name
    create_database(dsn_for(settings_dict), reset=True, force=True)  # our own scratch database
    call_command("migrate", verbosity=0)
    return name


def _timed_copy(src_dsn: str, source_table: str, scratch: str, create_sql: str) -> tuple[int, float]:
    """Create `scratch` in the v2 database, stream a binary COPY of `source_table` into it through
    Python, and return (rows, seconds); the scratch table is dropped again."""
    connection.ensure_connection()
    v2 = connection.connection
    with v2.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {scratch}")
        cur.execute(create_sql)
    v2.commit()
    started = time.perf_counter()
    with (
        psycopg.connect(src_dsn) as src_conn,
        src_conn.cursor() as src_cur,
        v2.cursor() as dst_cur,
        src_cur.copy(f"COPY {source_table} TO STDOUT (FORMAT BINARY)") as src,
        dst_cur.copy(f"COPY {scratch} FROM STDIN (FORMAT BINARY)") as dst,
    ):
        for chunk in src:
            dst.write(chunk)
    v2.commit()
    seconds = time.perf_counter() - started
    with v2.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {scratch}")  # noqa: S608 — table names and fragments are constants of the benchmark; values bound
        rows = cur.fetchone()[0]
        cur.execute(f"DROP TABLE {scratch}")
    v2.commit()
    return rows, seconds


def plain_copy_rate(v1: str) -> tuple[int, float]:
    """The limit: v1 Messages → scratch table in the v2 database, binary COPY streamed through Python."""
    return _timed_copy(
        v1,
        '"Messages"',
        "bench_scratch_messages",
        """CREATE TABLE bench_scratch_messages (
            "MessageId" bigint, "ConversationId" integer, "LineId" integer, "ContactPhone" varchar(20),
            "Direction" char(1), "Body" bytea, "Status" smallint, "ProviderMessageId" varchar(100),
            "ErrorCode" varchar(20), "SentByUserId" integer, "BlastId" integer, "CreatedOn" timestamp,
            "StatusUpdatedOn" timestamp)""",
    )


def indexed_copy_rate() -> tuple[int, float]:
    """The floor of any approach: COPY the migrated messages into an empty clone of messaging_message
    with all its indexes (LIKE ... INCLUDING ALL), no joins, no FK triggers."""
    return _timed_copy(
        dsn_for(connections["default"].settings_dict),
        "messaging_message",
        "bench_scratch_indexed",
        "CREATE TABLE bench_scratch_indexed (LIKE messaging_message INCLUDING ALL)",
    )


def message_indexes() -> list[tuple[str, str]]:
    with connection.cursor() as cur:
        cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'messaging_message' ORDER BY 1")
        return cur.fetchall()


def peak_mib() -> dict:
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"self": round(me, 1), "children": round(kids, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--skip-seed", action="store_true", help="reuse the v1 database as it is")
    parser.add_argument("--writers", type=int, default=DEFAULT_WRITERS, help="concurrent message-batch writers")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument(
        "--no-bulk-load",
        dest="bulk_load",
        action="store_false",
        help="first run without --bulk-load (messages written through every index of messaging_message)",
    )
    args = parser.parse_args()

    v2_name = fresh_v2_database()
    v1 = v1_dsn()
    ensure_v1_alias(v1)
    figures: dict = {
        "messages": args.messages,
        "batch_size": args.batch_size,
        "writers": args.writers,
        "bulk_load": args.bulk_load,
        "v2_database": v2_name,
        "v1_database": psycopg.conninfo.conninfo_to_dict(v1)["dbname"],
    }

    if not args.skip_seed:
        started = time.perf_counter()
        seeded = v1_seed(dsn=v1, sizes=SeedSizes.for_messages(args.messages))
        figures["seed_seconds"] = round(time.perf_counter() - started, 2)
        figures["v1_rows"] = seeded["counts"]
        print(f"seeded v1 in {figures['seed_seconds']} s: {seeded['counts']}", flush=True)

    rows, seconds = plain_copy_rate(v1)
    figures["plain_copy"] = {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": int(rows / seconds)}
    print(f"plain COPY of v1 Messages: {rows} rows in {seconds:.2f} s = {int(rows / seconds)} rows/s", flush=True)

    indexes_before = message_indexes()
    before = data_writes()
    started = time.perf_counter()
    report = v1_migrate(
        batch_size=args.batch_size, progress=args.progress, writers=args.writers, bulk_load=args.bulk_load
    )
    first_seconds = time.perf_counter() - started
    after_first = data_writes()
    tables = {}
    for name, s in report["tables"].items():
        tables[name] = {
            "read": s["read"],
            "written": s["written"],
            "merged": s["merged"],
            "quarantined": s["quarantined"],
            "seconds": round(s["seconds"], 2),
            "rows_per_s": int(s["read"] / s["seconds"]) if s["seconds"] else None,
        }
    total_read = sum(s["read"] for n, s in report["tables"].items() if n not in ("derived", "MessageMedia"))
    figures["first_run"] = {
        "seconds": round(first_seconds, 2),
        "rows_read": total_read,
        "overall_rows_per_s": int(total_read / first_seconds),
        "tables": tables,
        "data_rows_written": after_first - before,
        "message_step_seconds": report["message_step_seconds"],
        "bulk_load": report["bulk_load"],
        "indexes_identical_after": message_indexes() == indexes_before,
    }
    msg_rate = tables["Messages"]["rows_per_s"] or 0
    figures["messages_vs_plain_copy"] = round(msg_rate / figures["plain_copy"]["rows_per_s"], 3)
    print(
        f"first run: {first_seconds:.1f} s, Messages {msg_rate} rows/s "
        f"= {figures['messages_vs_plain_copy']:.0%} of plain COPY",
        flush=True,
    )

    rows, seconds = indexed_copy_rate()
    figures["indexed_copy_floor"] = {
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": int(rows / seconds),
        "what": "COPY of the migrated rows into an empty clone of messaging_message with its indexes",
    }
    figures["messages_vs_indexed_copy"] = round(msg_rate / figures["indexed_copy_floor"]["rows_per_s"], 3)
    print(
        f"floor: COPY into an indexed clone of messaging_message: {int(rows / seconds)} rows/s; migration "
        f"reaches {figures['messages_vs_indexed_copy']:.0%} of it",
        flush=True,
    )

    started = time.perf_counter()
    rerun = v1_migrate(batch_size=args.batch_size, progress=args.progress, from_start=True)
    rerun_seconds = time.perf_counter() - started
    after_rerun = data_writes()
    figures["rerun_from_start"] = {
        "seconds": round(rerun_seconds, 2),
        "speedup": round(first_seconds / rerun_seconds, 2),
        "data_rows_written": after_rerun - after_first,
        "written_reported": sum(s["written"] for s in rerun["tables"].values()),
    }
    started = time.perf_counter()
    v1_migrate(batch_size=args.batch_size)
    checkpointed_seconds = time.perf_counter() - started
    figures["rerun_with_checkpoints"] = {
        "seconds": round(checkpointed_seconds, 2),
        "data_rows_written": data_writes() - after_rerun,
    }
    print(
        f"rerun from start: {rerun_seconds:.1f} s ({figures['rerun_from_start']['speedup']}x faster), "
        f"data rows written {figures['rerun_from_start']['data_rows_written']}; "
        f"rerun with checkpoints: {checkpointed_seconds:.1f} s",
        flush=True,
    )

    started = time.perf_counter()
    verified = v1_verify()
    figures["verify"] = {
        "seconds": round(time.perf_counter() - started, 2),
        "ok": verified["ok"],
        "differences": len(verified["differences"]),
    }
    figures["quarantined_by_reason"] = report["quarantined_by_reason"]
    figures["peak_rss_mib"] = peak_mib()
    figures["peak_rss_method"] = "getrusage ru_maxrss (RUSAGE_SELF, RUSAGE_CHILDREN), whole process incl. seeding"
    figures["targets"] = {
        "messages_ge_25pct_of_copy": figures["messages_vs_plain_copy"] >= 0.25,
        "peak_below_1GiB": max(figures["peak_rss_mib"].values()) < 1024,
        "indexes_identical_after_bulk_load": figures["first_run"]["indexes_identical_after"],
        "rerun_2x_faster": figures["rerun_from_start"]["speedup"] >= 2,
        "rerun_writes_nothing": figures["rerun_from_start"]["data_rows_written"] == 0
        and figures["rerun_with_checkpoints"]["data_rows_written"] == 0,
    }
    print(f"verify: {figures['verify']}; peak RSS {figures['peak_rss_mib']} MiB", flush=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
