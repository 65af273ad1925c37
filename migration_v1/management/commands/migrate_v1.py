"""Migrate (or verify) v1 data into v2. Thin: parses arguments, calls migration_v1.services."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from migration_v1.services import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_WRITERS,
    Scope,
    V1InputError,
    v1_migrate,
    v1_verify,
)
from migration_v1.services.runs import safe_error

# Bad input (arguments, an unreachable or unreadable v1): one line, exit status 2, no traceback.
BAD_INPUT = 2
# Decisions listed in the terminal per kind; --json and the run record (admin) hold all of them.
SAMPLE = 10


def _bad(message: str) -> CommandError:
    return CommandError(message, returncode=BAD_INPUT)


class Command(BaseCommand):
    help = "Migrate the v1 database (V1_DATABASE_URL) into v2: everything, one --account or one --line."

    def add_arguments(self, parser):
        parser.add_argument("--account", type=int, help="v1 AccountId")
        parser.add_argument("--line", type=int, help="v1 LineId")
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
        parser.add_argument("--writers", type=int, default=DEFAULT_WRITERS, help="concurrent message writers")
        parser.add_argument("--dry-run", action="store_true", help="read and map everything, write nothing")
        parser.add_argument("--verify", action="store_true", help="compare v1 and v2 only")
        parser.add_argument(
            "--from-start", action="store_true", help="ignore checkpoints (rows already migrated are still skipped)"
        )
        parser.add_argument(
            "--bulk-load",
            action="store_true",
            help="first migration into a v2 that is not live yet: drop the secondary indexes of "
            "messaging_message for the message load and rebuild them after (refused if v2 has its own messages)",
        )
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument("--no-progress", action="store_true")
        # Test hook: simulate a crash after N committed batches of a table (e.g. Messages:3).
        parser.add_argument("--stop-after", default=None, help="TABLE:N (testing resumption)")

    def handle(self, *args, **o):
        from django.db import connections

        if "v1" not in connections.settings:
            raise _bad("V1_DATABASE_URL is not set: there is no v1 database to read")
        try:
            scope = Scope.parse(account=o["account"], line=o["line"])
        except ValueError as exc:
            raise _bad(str(exc)) from None
        if o["batch_size"] < 1:
            raise _bad("--batch-size must be at least 1")
        if o["writers"] < 1:
            raise _bad("--writers must be at least 1")
        stop_after = None
        if o["stop_after"]:
            table, _, n = o["stop_after"].partition(":")
            if not table or not n.isdigit() or int(n) < 1:
                raise _bad(f"--stop-after must be TABLE:N with N ≥ 1 (e.g. Messages:3), not {o['stop_after']!r}")
            stop_after = (table, int(n))
        try:
            report = v1_verify(scope=scope) if o["verify"] else self._migrate(scope, o, stop_after)
        except V1InputError as exc:
            raise _bad(str(exc)) from None
        except Exception as exc:
            if o.get("traceback"):
                raise
            # The run record holds the same reason (first line only: no row data, no secrets).
            raise CommandError(f"migration failed: {safe_error(exc)} — a rerun resumes after the last batch") from None
        if o["verify"]:
            self._print_verify(report, as_json=o["json"])
            if not report["ok"]:
                raise CommandError(f"{len(report['differences'])} difference(s) between v1 and v2")
            return
        if o["json"]:
            self.stdout.write(json.dumps(report, default=str))
        else:
            self._print_migrate(report)

    def _migrate(self, scope, o, stop_after) -> dict:
        return v1_migrate(
            scope=scope,
            batch_size=o["batch_size"],
            dry_run=o["dry_run"],
            progress=not o["no_progress"],
            from_start=o["from_start"],
            stop_after=stop_after,
            writers=o["writers"],
            bulk_load=o["bulk_load"],
        )

    def _print_migrate(self, report: dict) -> None:
        w = self.stdout.write
        title = "DRY RUN — nothing was written; a real run would write:" if report["dry_run"] else "Migration report"
        w(f"{title} (scope {report['scope']}, {report['seconds']} s)")
        w(f"{'table':<16}{'read':>10}{'written':>10}{'merged':>9}{'quarant.':>10}{'skipped':>10}{'rows/s':>10}")
        for name, s in report["tables"].items():
            rate = int(s["read"] / s["seconds"]) if s["seconds"] else 0
            w(
                f"{name:<16}{s['read']:>10}{s['written']:>10}{s['merged']:>9}{s['quarantined']:>10}"
                f"{s['skipped']:>10}{rate:>10}"
            )
            for key, value in sorted(s["extra"].items()):
                w(f"{'':<18}{key}: {value}")
        if report["quarantined_by_reason"]:
            w("Quarantined rows by reason (see QuarantinedRow in the admin):")
            for reason, n in report["quarantined_by_reason"].items():
                w(f"  {reason}: {n}")
        if report.get("decisions"):
            w(f"Decisions that were not a straight copy (first {SAMPLE} v1 ids each; all in --json and the admin):")
            for key, entry in report["decisions"].items():
                ids = entry["ids"][:SAMPLE]
                more = " …" if entry["count"] > SAMPLE else ""
                w(f"  {key}: {entry['count']} — {', '.join(map(str, ids))}{more}")
        if report["warnings"]:
            w("Warnings:")
            for text, n in report["warnings"].items():
                w(f"  {text}: {n}")
        bad_sums = {n: s["unaccounted"] for n, s in report["tables"].items() if s.get("unaccounted")}
        if bad_sums:
            w(f"Rows unaccounted for (read ≠ written + merged + quarantined + skipped): {bad_sums}")
        bulk = report.get("bulk_load") or {}
        if bulk.get("dropped_indexes"):
            seconds = bulk.get("index_rebuild_seconds")
            w(f"Bulk load: {len(bulk['dropped_indexes'])} index(es) dropped, rebuilt in {seconds} s")
        if bulk.get("recovered_indexes"):
            w(f"Recreated indexes a crashed bulk load left dropped: {', '.join(bulk['recovered_indexes'])}")
        if report.get("run_id"):
            w(f"Stored as MigrationRun #{report['run_id']}")

    def _print_verify(self, report: dict, *, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(report, default=str))
            return
        w = self.stdout.write
        w(f"Verify (scope {report['scope']}): {len(report['accounts'])} account(s), {len(report['lines'])} line(s)")
        for aid, entry in report["accounts"].items():
            parts = [f"{t} {e['v2']}/{e['expected']}" for t, e in entry.items() if isinstance(e, dict)]
            w(f"  account {aid}: " + ", ".join(parts))
        for lid, entry in report["lines"].items():
            m = entry["Messages"]
            w(
                f"  line {lid}: Conversations {entry['Conversations']['v2']}/{entry['Conversations']['expected']}, "
                f"Messages {m['v2']}/{m['expected']} md5 {'ok' if m['checksum_ok'] else 'DIFFERS'}"
            )
        if report["differences"]:
            w("Differences:")
            for d in report["differences"]:
                w(f"  {d}")
        else:
            w("No differences.")
