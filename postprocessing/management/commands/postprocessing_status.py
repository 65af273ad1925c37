"""Backlog size, lag and dead letters of post-processing. `--json` for scripts and monitoring."""

import json

from django.core.management.base import BaseCommand

from postprocessing.selectors import backlog_stats


class Command(BaseCommand):
    help = "Show the post-processing backlog (pending events), lag (age of the oldest pending) and dead letters."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="One JSON line instead of text.")

    def handle(self, *args, **options):
        stats = backlog_stats()
        if options["json"]:
            self.stdout.write(json.dumps(stats.as_dict()))
            return
        self.stdout.write(f"pending events : {stats.pending}")
        self.stdout.write(f"lag            : {stats.lag_seconds:.1f} s (age of the oldest pending event)")
        self.stdout.write(f"retrying       : {stats.retrying}")
        self.stdout.write(f"dead letters   : {stats.dead}")
        for name, n in sorted(stats.dead_by_processor.items()):
            self.stdout.write(f"  {name}: {n}")
