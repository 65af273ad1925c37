"""The web app's reports, per blast and per organization: tables drawn as SVG charts and exported as CSV.

A report is a list of `Table`s (title, columns, rows) built from the selectors' aggregates
(messaging.reports, shortener.selectors, messaging.selectors); each table carries the chart drawn from the
same rows (webapp/svg.py), and the CSV export writes the same rows, so the picture, the table under it and
the file always agree. Nothing here reads a message row by row: each figure comes from one aggregate
query whose answer is small (pinned query counts: tests/webapp/test_reports.py; the 100,000-recipient
figure: bench/bench_webapp_reports.py).
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.core.cache import cache
from django.utils import timezone
from django.utils.safestring import SafeString

from messaging import reports as message_reports
from messaging.models import Blast, BlastStatus, Direction
from messaging.selectors import blast_quiet_hours_deferrals, lines_for
from messaging.status import CARRIER_ACCEPTED, S
from organizations.models import Organization
from shortener import selectors as link_selectors

from . import svg

STATUS_COLORS = {
    S.QUEUED: "#8c959f",
    S.SCHEDULED: "#bf8700",
    S.PREPARED: "#6e7781",
    S.SENDING: "#54aeff",
    S.SENT: "#0969da",
    S.DELIVERED: "#1a7f37",
    S.UNDELIVERED: "#e16f24",
    S.FAILED: "#a40e26",
    S.BLOCKED: "#8250df",
    S.CANCELED: "#57606a",
    S.UNKNOWN: "#afb8c1",
    S.RECEIVED: "#0b5cad",
}
STATUS_ORDER = list(STATUS_COLORS)
NOT_PREPARED = "not prepared yet"  # recipients of a launched blast without their message yet
NOT_SENT_CANCELED = "not sent: blast canceled"  # the same recipients once the blast is canceled: none will be
# Time buckets a chart may use, smallest first: the first that keeps a span within MAX_BUCKETS wins.
BUCKET_SECONDS = (10, 30, 60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400)
MAX_BUCKETS = 60
ORG_REPORT_DAYS = 30
TOP_LINKS = 10
# A report's aggregates are read at most this often per blast (or organization), however many tabs poll
# it. A blast's message figures come from its rollup (a few hundred rows at any size); its click figures
# still read the blast's links, and the organization's report its 30 days of messages
# (bench/bench_webapp_reports.py: 100,000 recipients).
REPORT_CACHE_SECONDS = 10


@dataclass
class Table:
    key: str
    title: str
    columns: list[str]
    rows: list[list]
    chart: SafeString | None = None
    note: str = ""


@dataclass
class Report:
    title: str
    summary: list[tuple[str, str]]
    tables: list[Table] = field(default_factory=list)
    as_of: datetime | None = None  # when the figures were read

    def table(self, key: str) -> Table | None:
        return next((t for t in self.tables if t.key == key), None)


def bucket_for(span_seconds: float) -> int:
    for seconds in BUCKET_SECONDS:
        if span_seconds / seconds <= MAX_BUCKETS:
            return seconds
    return math.ceil(span_seconds / MAX_BUCKETS / 86400) * 86400


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "—"


def _bucket_labels(start: datetime, bucket: int, count: int, zone: ZoneInfo) -> list[str]:
    fmt = "%H:%M:%S" if bucket < 60 else "%H:%M" if bucket < 3600 * 3 else "%b %d %H:%M" if bucket < 86400 else "%b %d"
    return [(start + timedelta(seconds=bucket * i)).astimezone(zone).strftime(fmt) for i in range(count)]


def _series_length(span_seconds: float, bucket: int, used: list[int]) -> int:
    # The span's buckets, and any bucket a late report landed in (bounded: a chart stays readable).
    return min(max([math.floor(span_seconds / bucket), *used], default=0) + 1, 4 * MAX_BUCKETS)


# ------------------------------------------------------------------------------------------------- blast
def blast_report(*, blast: Blast, organization: Organization) -> Report:
    """The report of one blast (already looked up in the organization): four aggregate queries, the built
    report kept REPORT_CACHE_SECONDS (the page says as of when)."""
    now = timezone.now()
    launched = blast.launched_at or blast.created_at
    end = blast.completed_at or blast.canceled_at or now
    bucket = bucket_for(max((end - launched).total_seconds(), 1))
    click_bucket = bucket_for(max((now - launched).total_seconds(), 1))
    key = (
        f"webapp:blast-report:{blast.pk}:{blast.created_at.timestamp()}:{launched.timestamp()}:{bucket}:{click_bucket}"
    )
    report = cache.get(key)
    if report is None:
        report = _blast_report(blast, organization, now=now, launched=launched, end=end)
        cache.set(key, report, REPORT_CACHE_SECONDS)
    return report


def _blast_report(blast: Blast, organization: Organization, *, now: datetime, launched: datetime, end: datetime):
    zone = ZoneInfo(organization.time_zone)
    # Bucket sizes from the launch; the buckets themselves from the launch rounded down to the rollup's
    # 10 s slots, so each slot falls in one bucket (messaging.reports.blast_message_rows).
    span = max((end - launched).total_seconds(), 1)
    bucket = bucket_for(span)
    click_span = max((now - launched).total_seconds(), 1)
    click_bucket = bucket_for(click_span)
    start = message_reports.slot_start(launched)
    rows = message_reports.blast_message_rows(blast_id=blast.pk, start=start, bucket_seconds=bucket)
    clicks = link_selectors.blast_click_totals(blast=blast)
    click_buckets = link_selectors.blast_click_buckets(blast_id=blast.pk, start=start, bucket_seconds=click_bucket)
    top_links = link_selectors.blast_top_links(blast_id=blast.pk, limit=TOP_LINKS)
    as_of = now

    by_status: dict[str, int] = defaultdict(int)
    by_code: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    delivered_at: dict[int, int] = defaultdict(int)
    failed_at: dict[int, int] = defaultdict(int)
    for row in rows:
        by_status[row.status] += row.count
        if row.status in message_reports.FAILURES:
            by_code[row.error_code or "(no code)"][row.status] += row.count
        if row.bucket is not None and row.status == S.DELIVERED:
            delivered_at[max(row.bucket, 0)] += row.count
        elif row.bucket is not None and row.status in message_reports.FAILURES:
            failed_at[max(row.bucket, 0)] += row.count
    created = sum(by_status.values())
    accepted = sum(by_status[s] for s in CARRIER_ACCEPTED)
    delivered = by_status[S.DELIVERED]
    deferred, resume_at = blast_quiet_hours_deferrals(blast=blast)

    status_rows: list[tuple[str, int]] = [(str(S(s).label), by_status[s]) for s in STATUS_ORDER if by_status.get(s)]
    if blast.launched_at and blast.recipient_count > created:
        unprepared = NOT_SENT_CANCELED if blast.status == BlastStatus.CANCELED else NOT_PREPARED
        status_rows.append((unprepared, blast.recipient_count - created))
    colors = {str(S(s).label): c for s, c in STATUS_COLORS.items()} | {
        NOT_PREPARED: "#d0d7de",
        NOT_SENT_CANCELED: STATUS_COLORS[S.CANCELED],
    }
    status_table = Table(
        "status",
        "Messages by status",
        ["Status", "Messages"],
        [list(r) for r in status_rows],
        chart=svg.hbars(status_rows, title="Messages by status", colors=colors),
    )

    n = _series_length(span, bucket, [*delivered_at, *failed_at])
    labels = _bucket_labels(start, bucket, n, zone)
    cumulative_delivered, cumulative_failed, d_total, f_total = [], [], 0, 0
    for i in range(n):
        d_total += delivered_at.get(i, 0)
        f_total += failed_at.get(i, 0)
        cumulative_delivered.append(d_total)
        cumulative_failed.append(f_total)
    over_time = Table(
        "delivered",
        "Delivered over time",
        ["Time", "Delivered", "Failed", "Delivered (total)", "Failed (total)"],
        [
            [labels[i], delivered_at.get(i, 0), failed_at.get(i, 0), cumulative_delivered[i], cumulative_failed[i]]
            for i in range(n)
        ],
        chart=svg.line(
            labels,
            [
                svg.Series("Delivered", cumulative_delivered, STATUS_COLORS[S.DELIVERED]),
                svg.Series("Failed or undelivered", cumulative_failed, STATUS_COLORS[S.FAILED]),
            ],
            title="Delivered over time (running total)",
        ),
        note=f"Buckets of {_duration(bucket)} from the launch, times in {organization.time_zone}.",
    )

    codes = sorted(by_code.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    failures = Table(
        "failures",
        "Failures by carrier error code",
        ["Error code", "Failed", "Undelivered"],
        [[code, c.get(S.FAILED, 0), c.get(S.UNDELIVERED, 0)] for code, c in codes],
        chart=svg.hbars(
            [(code, sum(c.values())) for code, c in codes],
            title="Failures by error code",
            color=STATUS_COLORS[S.FAILED],
        ),
    )

    cn = _series_length(click_span, click_bucket, list(click_buckets))
    click_labels = _bucket_labels(start, click_bucket, cn, zone)
    human = [click_buckets.get(i, (0, 0))[0] for i in range(cn)]
    clicks_table = Table(
        "clicks",
        "Clicks over time",
        ["Time", "Clicks", "Bot clicks (excluded)"],
        [[click_labels[i], human[i], click_buckets.get(i, (0, 0))[1]] for i in range(cn) if i in click_buckets],
        chart=svg.columns(click_labels, [svg.Series("Clicks", human)], title="Clicks over time (bots excluded)"),
        note=f"Buckets of {_duration(click_bucket)} from the launch; bots are counted apart, never in clicks.",
    )

    links = Table(
        "links",
        "Top links",
        ["Link", "Recipients' links", "Clicks", "Unique clicks", "Bot clicks"],
        [[r["target_url"], r["links"], r["clicks"], r["unique_clicks"], r["bot_clicks"]] for r in top_links],
        chart=svg.hbars([(r["target_url"], r["clicks"]) for r in top_links], title="Top links by clicks"),
    )

    ctr = clicks["click_through_rate"]
    summary = [
        ("Recipients", f"{blast.recipient_count:,}"),
        ("Sent to the carrier", f"{accepted:,}"),
        ("Delivered", f"{delivered:,} ({_percent(delivered, accepted)} of sent)"),
        ("Failed or undelivered", f"{by_status[S.FAILED] + by_status[S.UNDELIVERED]:,}"),
        ("Blocked (opted out, invalid)", f"{by_status[S.BLOCKED]:,}"),
        ("Deferred by quiet hours", _deferred(deferred, resume_at, zone)),
        ("Clicks", f"{clicks['clicks']:,}"),
        ("Unique clicks", f"{clicks['unique_clickers']:,}"),
        ("Click-through rate", f"{100 * ctr:.1f} %" if ctr is not None else "—"),
        ("Bot clicks (excluded)", f"{clicks['bot_clicks']:,}"),
    ]
    return Report(str(blast), summary, [status_table, over_time, failures, clicks_table, links], as_of)


def _deferred(count: int, resume_at: datetime | None, zone: ZoneInfo) -> str:
    if not count:
        return "0"
    when = resume_at.astimezone(zone).strftime("%b %d %H:%M") if resume_at else "?"
    return f"{count:,} until {when}"


def _duration(seconds: int) -> str:
    for unit, name in ((7 * 86400, "week"), (86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds % unit == 0:
            n = seconds // unit
            return f"{n} {name}{'s' if n > 1 else ''}"
    return f"{seconds} seconds"


# ---------------------------------------------------------------------------------------------- organization
def organization_report(*, organization: Organization, days: int = ORG_REPORT_DAYS) -> Report:
    """The organization's last `days` days (today included, days in its time zone): four queries, the built
    report kept REPORT_CACHE_SECONDS."""
    key = f"webapp:org-report:{organization.pk}:{organization.created_at.timestamp()}:{days}"
    report = cache.get(key)
    if report is None:
        report = _organization_report(organization, days)
        cache.set(key, report, REPORT_CACHE_SECONDS)
    return report


def _organization_report(organization: Organization, days: int) -> Report:
    zone = ZoneInfo(organization.time_zone)
    today = timezone.now().astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, time(0), tzinfo=zone)
    day_list = [first + timedelta(days=i) for i in range(days)]
    labels = [d.strftime("%b %d") for d in day_list]
    as_of = timezone.now()
    rows = message_reports.organization_message_days(organization=organization, since=since)
    opt_outs = message_reports.organization_opt_out_days(organization=organization, since=since)
    clicks = link_selectors.organization_click_days(
        organization_id=organization.pk, time_zone=organization.time_zone, since=since
    )
    line_names = {line.pk: str(line) for line in lines_for(organization=organization)}

    per_day: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    per_line: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        per_day[r.status][r.day] += r.count
        if r.direction == Direction.OUTBOUND:
            per_line[r.line_id][r.status] += r.count
    statuses = [s for s in STATUS_ORDER if s in per_day]
    series = [svg.Series(str(S(s).label), [per_day[s].get(d, 0) for d in day_list], STATUS_COLORS[s]) for s in statuses]
    days_table = Table(
        "messages",
        "Messages per day by status",
        ["Day", *[str(S(s).label) for s in statuses]],
        [[d.isoformat(), *[per_day[s].get(d, 0) for s in statuses]] for d in day_list],
        chart=svg.columns(labels, series, title="Messages per day by status"),
        note="Sent and received, by the day they were created; statuses as they are now.",
    )

    line_rows: list[list] = []
    rates: list[tuple[str, float]] = []
    total_accepted = total_delivered = 0
    for line_id, counts in sorted(per_line.items(), key=lambda kv: line_names.get(kv[0], "")):
        accepted = sum(counts.get(s, 0) for s in CARRIER_ACCEPTED)
        delivered = counts.get(S.DELIVERED, 0)
        total_accepted, total_delivered = total_accepted + accepted, total_delivered + delivered
        failed = counts.get(S.FAILED, 0) + counts.get(S.UNDELIVERED, 0)
        rate = round(100 * delivered / accepted, 1) if accepted else None
        name = line_names.get(line_id, f"Line {line_id}")
        line_rows.append([name, accepted, delivered, failed, rate])
        if rate is not None:
            rates.append((name, rate))
    lines_table = Table(
        "lines",
        "Delivery rate per line",
        ["Line", "Sent to the carrier", "Delivered", "Failed or undelivered", "Delivery rate (%)"],
        line_rows,
        chart=svg.hbars(
            rates,
            title="Delivery rate per line",
            color=STATUS_COLORS[S.DELIVERED],
            suffix=" %",
        ),
        note="Delivered ÷ accepted by the carrier, outbound messages created in the period.",
    )

    opt_table = Table(
        "opt_outs",
        "Opt-outs per day",
        ["Day", "Opt-outs"],
        [[d.isoformat(), opt_outs.get(d, 0)] for d in day_list],
        chart=svg.columns(
            labels, [svg.Series("Opt-outs", [opt_outs.get(d, 0) for d in day_list], "#8250df")], title="Opt-outs"
        ),
    )
    clicks_table = Table(
        "clicks",
        "Clicks per day",
        ["Day", "Clicks", "Bot clicks (excluded)"],
        [[d.isoformat(), *clicks.get(d, (0, 0))] for d in day_list],
        chart=svg.columns(
            labels, [svg.Series("Clicks", [clicks.get(d, (0, 0))[0] for d in day_list])], title="Clicks per day"
        ),
    )
    sent = sum(c for s, by in per_day.items() if s != S.RECEIVED for c in by.values())
    summary = [
        ("Period", f"{first:%b %d} – {today:%b %d} ({organization.time_zone})"),
        ("Messages sent", f"{sent:,}"),
        ("Messages received", f"{sum(per_day[S.RECEIVED].values()) if S.RECEIVED in per_day else 0:,}"),
        ("Delivery rate", _percent(total_delivered, total_accepted)),
        ("Opt-outs", f"{sum(opt_outs.values()):,}"),
        ("Clicks", f"{sum(h for h, _ in clicks.values()):,}"),
    ]
    tables = [days_table, lines_table, opt_table, clicks_table]
    return Report(f"{organization.name}: last {days} days", summary, tables, as_of)


# ----------------------------------------------------------------------------------------------------- CSV
def _cell(value):
    """A text cell that a spreadsheet would run as a formula (=, +, -, @ first: a link target, a line name
    are data) is written with a leading apostrophe (OWASP's CSV injection advice); numbers stay numbers."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


class _Writer:
    def __init__(self, out):
        self._writer = csv.writer(out)

    def writerow(self, row):
        self._writer.writerow([_cell(v) for v in row])

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


def report_csv(report: Report, table_key: str | None = None) -> str:
    """One table (its columns and rows), or the whole report: the summary then each table, titled."""
    out = io.StringIO()
    writer = _Writer(out)
    if table_key is not None:
        table = report.table(table_key)
        if table is None:
            raise KeyError(table_key)
        writer.writerow(table.columns)
        writer.writerows(table.rows)
        return out.getvalue()
    writer.writerow([report.title])
    writer.writerows(report.summary)
    for table in report.tables:
        writer.writerow([])
        writer.writerow([table.title])
        writer.writerow(table.columns)
        writer.writerows(table.rows)
    return out.getvalue()
