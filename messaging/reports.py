"""Reads for reports (selectors by topic): a blast's messages and an organization's days, aggregated in SQL.

Each function is one query whose answer is small (statuses × error codes × time buckets, or days × lines ×
statuses), whatever the number of messages: the web app's reports (webapp/reports.py) draw and export from
these rows. A blast's figures come from its rollup (BlastRollup), not its messages, so they cost the same
for any blast size (bench/bench_webapp_reports.py measures the whole page with 100,000 recipients).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count
from django.db.models.functions import TruncDate

from organizations.models import Organization

from .models import BlastRollup, OptOut
from .status import MessageStatus as S


@dataclass(frozen=True)
class BlastMessageRow:
    status: str
    error_code: str  # failed / undelivered only ("" for the others)
    bucket: int | None  # time bucket of the final report (delivered_at / failed_at), from `start`
    count: int


# The blast's rollup (BlastRollup, kept by the blast recount), not its messages: a few rows per 10 s slot
# of delivery reports, whatever the blast's size. The error code only for failures (the rollup also keeps
# the blocked ones', for the opt-out counter).
_BLAST_SQL = """
SELECT r.status,
       CASE WHEN r.status = ANY(%(failures)s) THEN r.error_code ELSE '' END,
       floor((r.slot * %(slot)s - extract(epoch FROM %(start)s::timestamptz)) / %(bucket)s)::int,
       sum(r.count)::int
FROM messaging_blastrollup r
WHERE r.blast_id = %(blast)s
GROUP BY 1, 2, 3
"""

FAILURES = (S.FAILED, S.UNDELIVERED)


def slot_start(at: datetime) -> datetime:
    """`at` down to a slot boundary: buckets from there hold whole slots, so the rollup's counts per bucket
    are the messages' own."""
    seconds = int(at.timestamp())
    return datetime.fromtimestamp(seconds - seconds % BlastRollup.SLOT_SECONDS, tz=UTC)


def blast_message_rows(*, blast_id: int, start: datetime, bucket_seconds: int) -> list[BlastMessageRow]:
    """The blast's messages counted by status, carrier error code (failures) and time bucket of their
    final report (delivered or failed), bucket n covering [start + n·bucket, start + (n+1)·bucket); `start`
    on a slot boundary (slot_start) and `bucket_seconds` a multiple of BlastRollup.SLOT_SECONDS. One query
    on the blast's rollup: as of the blast's last recount (at most a drain pass behind its messages)."""
    assert start.timestamp() % BlastRollup.SLOT_SECONDS == 0 and bucket_seconds % BlastRollup.SLOT_SECONDS == 0
    with connection.cursor() as cursor:
        cursor.execute(
            _BLAST_SQL,
            {
                "blast": blast_id,
                "start": start,
                "bucket": bucket_seconds,
                "slot": BlastRollup.SLOT_SECONDS,
                "failures": [str(s) for s in FAILURES],
            },
        )
        return [BlastMessageRow(status, code or "", bucket, n) for status, code, bucket, n in cursor.fetchall()]


@dataclass(frozen=True)
class DayRow:
    day: date
    line_id: int
    direction: str
    status: str
    count: int


_ORG_DAYS_SQL = """
SELECT (m.created_at AT TIME ZONE %(zone)s)::date, m.line_id, m.direction, m.status, count(*)
FROM messaging_message m
WHERE m.organization_id = %(org)s AND m.created_at >= %(since)s
GROUP BY 1, 2, 3, 4
"""


def organization_message_days(*, organization: Organization, since: datetime) -> list[DayRow]:
    """The organization's messages since `since`, counted per day (in its time zone), line, direction and
    status: one query over msg_org_recent (organization, -created_at)."""
    with connection.cursor() as cursor:
        cursor.execute(_ORG_DAYS_SQL, {"zone": organization.time_zone, "org": organization.pk, "since": since})
        return [DayRow(*row) for row in cursor.fetchall()]


def organization_opt_out_days(*, organization: Organization, since: datetime) -> dict[date, int]:
    """Opt-outs recorded per day (organization's time zone) since `since`: one query."""
    rows = (
        OptOut.objects.filter(organization=organization, created_at__gte=since)
        .annotate(day=TruncDate("created_at", tzinfo=ZoneInfo(organization.time_zone)))
        .order_by()
        .values("day")
        .annotate(n=Count("id"))
    )
    return {r["day"]: r["n"] for r in rows}
