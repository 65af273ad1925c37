"""`manage.py lines_check_numbers [--archive]`: ask each live line's carrier whether its account holds the
line's number (docs/security.md, "Lines: a number is checked with its carrier")."""

from django.core.management.base import BaseCommand

from messaging.services.lines import HELD, lines_verify_numbers


class Command(BaseCommand):
    help = "Check every live line's number with its carrier account; --archive archives the ones it does not hold."

    def add_arguments(self, parser):
        parser.add_argument(
            "--archive", action="store_true", help="archive lines whose carrier does not hold the number"
        )

    def handle(self, *args, archive: bool, **options):
        verdicts = lines_verify_numbers(archive=archive)
        for v in verdicts:
            if v.verdict != HELD:
                note = " (archived)" if v.archived else ""
                self.stdout.write(f"line {v.line_id} org {v.organization_id} {v.phone_number}: {v.verdict}{note}")
        counts: dict[str, int] = {}
        for v in verdicts:
            counts[v.verdict] = counts.get(v.verdict, 0) + 1
        summary = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items())) or "no live lines"
        self.stdout.write(f"{len(verdicts)} live lines checked: {summary}")
