"""Benchmark of the webhook store's retention (carriers.services.webhook_events_prune). See docs/carriers.md.

1. Stores --old processed delivery reports received 40 days ago, then --recent ones received a day ago
   (one INSERT … SELECT generate_series each, ~300-byte Sinch bodies, ids in received order as the
   intake writes them), and a few old pending/failed/invalid rows among the old ones.
2. Prints the plan of one prune statement (EXPLAIN ANALYZE, rolled back): both scans must be range
   scans of the primary key, never a sequential scan of the table.
3. Starts a writer thread that stores pending reports as the intake does (--intake-rate rows/s, one
   INSERT per row, autocommit), alone for 5 s, then runs the prune (retention 30 days, --batch rows per
   statement) and prints rows/s deleted, statements, each statement's time (p50/p99/max) and the
   intake's INSERT latency alone and during the prune. The rows are fresh, so in shared buffers: a
   production table's old rows are read from disk, which this does not measure.
4. Checks that only the old processed rows went, then deletes every row it stored (the bench leaves
   nothing behind). Ends with one line of JSON.

Run it under the shared lock, against your own database, and note the load (uptime):
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/parley_x flock /tmp/parley-bench.lock \
    .venv/bin/python bench/bench_retention.py --old 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import django_setup, log, pct  # noqa: E402

django_setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from carriers.models import CarrierAccount, WebhookKind, WebhookState  # noqa: E402
from carriers.services import _PRUNE_SQL, PRUNE_BATCH, webhook_events_prune  # noqa: E402
from organizations.models import Organization  # noqa: E402

BENCH_ORG = "bench-carriers-retention"
RETENTION_DAYS = 30

_FILL_SQL = """
INSERT INTO carriers_webhookevent (account_id, kind, body, received_at, state, attempts, processed_at, error)
SELECT %(account)s, %(kind)s,
       convert_to(json_build_object('type', 'recipient_delivery_report_sms', 'batch_id', 'BENCH' || (g / 1000),
                  'recipient', (17372000000 + g)::text, 'code', 0, 'status', 'Delivered',
                  'at', now() - make_interval(days => %(days)s), 'operator_status_at',
                  now() - make_interval(days => %(days)s), 'client_reference', 'b:' || md5(g::text))::text, 'UTF8'),
       now() - make_interval(days => %(days)s) + g * interval '1 ms',
       CASE WHEN g %% 100000 = 1 THEN %(pending)s WHEN g %% 100000 = 2 THEN %(failed)s
            WHEN g %% 100000 = 3 THEN %(invalid)s ELSE %(processed)s END,
       1, CASE WHEN g %% 100000 = 1 THEN NULL ELSE now() - make_interval(days => %(days)s) END, ''
FROM generate_series(1, %(n)s) g
"""  # noqa: S608 — constants only; values bound


def fill(account_id: int, n: int, days: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            _FILL_SQL,
            {
                "account": account_id,
                "kind": WebhookKind.DELIVERY.value,
                "days": days,
                "n": n,
                **{s.name.lower(): s.value for s in WebhookState},
            },
        )


def counts(account_id: int) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT state, received_at < now() - make_interval(days => %s), count(*) FROM carriers_webhookevent "
            "WHERE account_id = %s GROUP BY 1, 2",
            [RETENTION_DAYS, account_id],
        )
        return {f"{state}{'_old' if old else '_recent'}": n for state, old, n in cursor.fetchall()}


def plan() -> list[str]:
    """EXPLAIN ANALYZE of the first window's statement, rolled back."""
    cutoff = timezone.now() - timedelta(days=RETENTION_DAYS)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + _PRUNE_SQL, [0, PRUNE_BATCH, 0, cutoff, cutoff, cutoff]
        )
        lines = [r[0] for r in cursor.fetchall()]
        transaction.set_rollback(True)
    return lines


class Intake(threading.Thread):
    """Stores pending reports at `rate` rows/s, one autocommit INSERT each, as the webhook view does."""

    def __init__(self, account_id: int, rate: float):
        super().__init__(daemon=True)
        self.account_id, self.rate = account_id, rate
        self.latencies: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        try:
            with connection.cursor() as cursor:
                while not self.done.is_set():
                    started = time.perf_counter()
                    cursor.execute(
                        "INSERT INTO carriers_webhookevent (account_id, kind, body, received_at, state, attempts, "
                        "error, account_inactive) VALUES (%s, %s, %s, now(), %s, 0, '', false)",
                        [self.account_id, WebhookKind.DELIVERY.value, b'{"type":"bench"}', WebhookState.PENDING.value],
                    )
                    self.latencies.append((time.perf_counter() - started) * 1000)
                    time.sleep(max(0.0, 1 / self.rate - (time.perf_counter() - started)))
        finally:
            connections.close_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", type=int, default=1_000_000, help="processed reports past the retention")
    parser.add_argument("--recent", type=int, default=200_000, help="processed reports within it")
    parser.add_argument("--intake-rate", type=float, default=200.0, help="pending reports/s stored meanwhile")
    parser.add_argument("--batch", type=int, default=PRUNE_BATCH)
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    org, _ = Organization.objects.get_or_create(name=BENCH_ORG)
    account = CarrierAccount.objects.filter(organization=org).first() or CarrierAccount.objects.create(
        organization=org, name="bench retention", provider="sandbox"
    )
    figures: dict = {"bench": "retention", "old": args.old, "recent": args.recent, "batch": args.batch}
    try:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM carriers_webhookevent WHERE account_id = %s", [account.id])
        started = time.perf_counter()
        fill(account.id, args.old, 40)
        fill(account.id, args.recent, 1)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE) carriers_webhookevent")
            cursor.execute(
                "SELECT pg_total_relation_size('carriers_webhookevent'), (SELECT count(*) FROM carriers_webhookevent)"
            )
            size, total = cursor.fetchone()
        before = counts(account.id)
        log(f"stored in {time.perf_counter() - started:.1f} s: {before}; table {size / 2**20:.0f} MB, {total} rows")
        figures["table_mb_before"] = round(size / 2**20)

        lines = plan()
        log("plan of one statement:\n  " + "\n  ".join(lines))
        figures["seq_scan"] = any("Seq Scan" in line for line in lines)

        intake = Intake(account.id, args.intake_rate)
        intake.start()
        time.sleep(5)  # the intake alone first: its latency without the prune, on this machine now
        alone = list(intake.latencies)
        load_before = os.getloadavg()[0]
        with CaptureQueriesContext(connection) as queries:
            result = webhook_events_prune(older_than_days=RETENTION_DAYS, batch=args.batch)
        intake.done.set()
        intake.join()
        during = intake.latencies[len(alone) :]
        times = [float(q["time"]) * 1000 for q in queries]
        after = counts(account.id)
        figures.update(
            {
                "deleted": result.deleted,
                "seconds": round(result.seconds, 1),
                "rows_per_s": round(result.deleted / result.seconds),
                "statements": result.statements,
                "statement_ms_p50": round(pct(times, 50)),
                "statement_ms_p99": round(pct(times, 99)),
                "statement_ms_max": round(max(times)),
                "intake_rows": len(intake.latencies),
                "intake_alone_insert_ms_p50_p99_max": [round(pct(alone, p), 1) for p in (50, 99, 100)],
                "intake_during_insert_ms_p50_p99_max": [round(pct(during, p), 1) for p in (50, 99, 100)],
                "load_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)],
            }
        )
        log(f"after: {after}")
        # Only the old processed rows went (the prune covers the whole table: run it on a database of your
        # own); the old pending/failed/invalid ones and the recent ones stayed, plus what the intake stored.
        assert "processed_old" not in after and result.deleted >= before["processed_old"], (before, after)
        expected = {k: v for k, v in before.items() if k != "processed_old"}
        expected["pending_recent"] = expected.get("pending_recent", 0) + len(intake.latencies)
        assert after == expected, (expected, after)
        log(
            f"deleted {result.deleted} rows in {result.seconds:.1f} s = {figures['rows_per_s']} rows/s, "
            f"{result.statements} statements (p50 {figures['statement_ms_p50']} ms, max "
            f"{figures['statement_ms_max']} ms); intake INSERT p50/p99/max alone "
            f"{figures['intake_alone_insert_ms_p50_p99_max']} ms, "
            f"during {figures['intake_during_insert_ms_p50_p99_max']} ms"
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM carriers_webhookevent WHERE account_id = %s", [account.id])
            cursor.execute("VACUUM carriers_webhookevent")
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
