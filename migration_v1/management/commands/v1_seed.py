"""Create and fill a synthetic v1 database (all known problems of the spec included)."""

from __future__ import annotations

import json
import time

import psycopg
from django.core.management.base import BaseCommand, CommandError

from migration_v1.db import v1_dsn
from migration_v1.seed import NotASeedDatabase, SeedSizes, v1_seed
from migration_v1.services.preflight import connection_reason


class Command(BaseCommand):
    help = "Create a v1 database (V1_DATABASE_URL, else parley_v1 on the v2 server) with synthetic data."

    def add_arguments(self, parser):
        parser.add_argument("--messages", type=int, default=100_000)
        parser.add_argument("--accounts", type=int, default=None, help="default: messages / 50,000 (min 2)")
        parser.add_argument("--contacts", type=int, default=None, help="default: messages / 10")
        parser.add_argument("--blasts", type=int, default=None, help="default: messages / 20,000")
        parser.add_argument("--lines-per-account", type=int, default=3)
        parser.add_argument("--users-per-account", type=int, default=5)
        parser.add_argument("--database-url", default=None, help="default: V1_DATABASE_URL")
        parser.add_argument("--keep", action="store_true", help="do not drop an existing database first")
        parser.add_argument("--force", action="store_true", help="drop the database even if v1_seed did not make it")
        parser.add_argument(
            "--schema",
            choices=["project", "spec"],
            default="project",
            help="project: our DDL (Messages.Body bytea); spec: the spec's types exactly (Body text, no NOT NULL)",
        )
        parser.add_argument("--body-type", choices=["bytea", "text"], default=None, help="type of Messages.Body")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, **o):
        sizes = SeedSizes.for_messages(
            o["messages"],
            accounts=o["accounts"],
            contacts=o["contacts"],
            blasts=o["blasts"],
            lines_per_account=o["lines_per_account"],
            users_per_account=o["users_per_account"],
        )
        started = time.perf_counter()
        dsn = o["database_url"] or v1_dsn()
        try:
            result = v1_seed(
                dsn=dsn,
                sizes=sizes,
                reset=not o["keep"],
                force=o["force"],
                schema=o["schema"],
                body_type=o["body_type"],
            )
        except NotASeedDatabase as exc:
            raise CommandError(str(exc), returncode=2) from None
        except psycopg.OperationalError as exc:
            raise CommandError(f"cannot reach the v1 server: {connection_reason(exc)}", returncode=2) from None
        result["seconds"] = round(time.perf_counter() - started, 2)
        result["database"] = psycopg.conninfo.conninfo_to_dict(dsn).get("dbname")
        if o["json"]:
            self.stdout.write(json.dumps(result))
            return
        w = self.stdout.write
        w(
            f"Seeded v1 database {result['database']} in {result['seconds']} s "
            f"({result['schema']} schema, Messages.Body {result['body_type']})"
        )
        for table, n in result["counts"].items():
            w(f"  {table:<14}{n:>12,}")
        w('Every known problem of the spec is included (docs/migration_v1.md, "Synthetic v1 data").')
        w("Next: V1_DATABASE_URL=<this database> python manage.py migrate_v1")
