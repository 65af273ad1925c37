"""manage.py backfill_statuses: ask the carrier for the real status of stuck messages (docs/backfill.md).

Parses arguments, creates a BackfillRun and calls the same service the Celery task calls.
"""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.timezone import get_default_timezone, is_naive, make_aware

from messaging.models import Line
from messaging.phone import try_normalize
from messaging.status import AWAITING_CARRIER
from organizations.models import Organization

from ...models import RunState
from ...services import BackfillOptions, backfill_run_create, statuses_backfill


def _moment(value: str, field: str):
    parsed = parse_datetime(value)
    if parsed is None and parse_date(value) is not None:
        parsed = parse_datetime(value + "T00:00:00")
    if parsed is None:
        raise CommandError(f"--{field}: {value!r} is not an ISO date or date-time.")
    return make_aware(parsed, get_default_timezone()) if is_naive(parsed) else parsed


class Command(BaseCommand):
    help = "Ask the carrier for the real status of messages stuck in sending/sent and correct our records."

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--line", help="Line id or phone number.")
        target.add_argument("--all-lines", action="store_true", help="Every line of --organization.")
        parser.add_argument("--organization", type=int, help="Organization id (with --all-lines).")
        parser.add_argument("--since", help="Messages created at or after (ISO date/time).")
        parser.add_argument("--until", help="Messages created before (ISO date/time).")
        parser.add_argument(
            "--status",
            action="append",
            help=f"Status to check (repeatable; default: {', '.join(sorted(AWAITING_CARRIER))}).",
        )
        parser.add_argument("--limit", type=int, help="Check at most this many messages.")
        parser.add_argument("--dry-run", action="store_true", help="Report what would change; change nothing.")
        parser.add_argument("--rate", type=float, help="Carrier requests per second (default: the account's).")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")
        parser.add_argument("--json", action="store_true", help="Print the summary as JSON.")

    def handle(self, *args, **opts):
        line, organization = self._target(opts)
        try:
            options = BackfillOptions(
                since=_moment(opts["since"], "since") if opts["since"] else None,
                until=_moment(opts["until"], "until") if opts["until"] else None,
                statuses=tuple(opts["status"] or sorted(AWAITING_CARRIER)),
                limit=opts["limit"],
                dry_run=opts["dry_run"],
                rate=opts["rate"],
            )
            run = backfill_run_create(
                organization_id=organization.id, line_id=line.id if line else None, options=options
            )
        except ValidationError as exc:
            raise CommandError("; ".join(f"--{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc

        bar = None
        if not opts["no_progress"]:
            from tqdm import tqdm

            bar = tqdm(total=None, unit="msg", desc=f"backfill run {run.id}", file=self.stderr._out)

        def progress(n: int, counts: dict) -> None:
            assert bar is not None  # passed to the backfill only with a bar
            if bar.total is None:
                bar.total = run_total()
            bar.update(n)
            bar.set_postfix(
                updated=sum(counts["updated"].values()),
                not_found=counts["not_found"],
                errors=counts["errors"],
                refresh=False,
            )

        def run_total():
            from ...models import BackfillRun

            return BackfillRun.objects.filter(pk=run.id).values_list("total", flat=True).first()

        try:
            run = statuses_backfill(run_id=run.id, progress=progress if bar is not None else None)
        except KeyboardInterrupt:
            raise CommandError(f"Interrupted: run {run.id} saved its progress; run the command again.") from None
        finally:
            if bar is not None:
                bar.close()
        self._summary(run, as_json=opts["json"])
        if run.state == RunState.FAILED:
            raise CommandError(f"Backfill run {run.id} failed: {run.error}")

    def _target(self, opts):
        if opts["all_lines"]:
            if not opts["organization"]:
                raise CommandError("--all-lines needs --organization <id>.")
            organization = Organization.objects.filter(pk=opts["organization"]).first()
            if organization is None:
                raise CommandError(f"--organization: no organization {opts['organization']}.")
            return None, organization
        raw = opts["line"].strip()
        line = None
        if raw.isdigit() and len(raw) < 10:
            line = Line.objects.filter(pk=int(raw)).first()
        else:
            number = try_normalize(raw)
            if number is None:
                raise CommandError(f"--line: {raw!r} is neither a line id nor a valid phone number.")
            # A number is live on one line at a time; archived lines may repeat it.
            candidates = list(Line.objects.filter(phone_number=number).order_by("-is_active", "-id")[:2])
            if len(candidates) == 2 and candidates[0].is_active == candidates[1].is_active:
                raise CommandError(f"--line: {number} is on several archived lines; give the line id.")
            line = candidates[0] if candidates else None
        if line is None:
            raise CommandError(f"--line: no line {raw!r}.")
        if opts["organization"] and line.organization_id != opts["organization"]:
            raise CommandError(f"--line: line {line.id} is not in organization {opts['organization']}.")
        if line.carrier_account_id is None:
            raise CommandError(f"--line: line {line.id} has no carrier account to ask.")
        return line, line.organization

    def _summary(self, run, *, as_json: bool) -> None:
        c = run.counts
        summary = {
            "run": run.id,
            "state": run.state,
            "dry_run": run.options.get("dry_run", False),
            "checked": c["checked"],
            "updated": c["updated"],
            "unchanged": c["unchanged"],
            "not_found": c["not_found"],
            "errors": c["errors"],
        }
        if as_json:
            self.stdout.write(json.dumps(summary))
            return
        verb = "would update" if summary["dry_run"] else "updated"
        by_status = ", ".join(f"{k} {v}" for k, v in c["updated"].items()) or "none"
        self.stdout.write(
            f"Backfill run {run.id} {run.state}{' (dry run)' if summary['dry_run'] else ''}: "
            f"checked {c['checked']}, {verb} {sum(c['updated'].values())} ({by_status}), "
            f"unchanged {c['unchanged']}, not found at the carrier {c['not_found']}, errors {c['errors']}"
        )
        for sample in run.error_samples[:5]:
            self.stdout.write(f"  message {sample['message_id']}: {sample['error']}")
