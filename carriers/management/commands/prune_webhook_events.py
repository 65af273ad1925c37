"""Delete processed carrier webhook events past the retention, as the hourly beat task does (docs/carriers.md)."""

from django.conf import settings
from django.core.management.base import BaseCommand

from carriers.services import PRUNE_BATCH, webhook_events_prune


class Command(BaseCommand):
    help = (
        "Delete processed carrier webhook events received more than --days ago (default "
        "WEBHOOK_EVENT_RETENTION_DAYS), in batches. Pending, failed and invalid events are never deleted."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None, help="Retention in days (default: the setting).")
        parser.add_argument("--batch", type=int, default=PRUNE_BATCH, help="Rows of the table per statement.")
        parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted; delete nothing.")

    def handle(self, *args, **options):
        days = settings.WEBHOOK_EVENT_RETENTION_DAYS if options["days"] is None else options["days"]
        result = webhook_events_prune(older_than_days=days, batch=options["batch"], dry_run=options["dry_run"])
        verb = "would delete" if options["dry_run"] else "deleted"
        rate = result.deleted / result.seconds if result.seconds else 0.0
        self.stdout.write(
            f"{verb} {result.deleted} processed webhook events older than {days} days "
            f"in {result.statements} statements, {result.seconds:.1f} s ({rate:,.0f} rows/s)"
        )
