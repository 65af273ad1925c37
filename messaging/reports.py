"""Reads for reports (selectors by topic): a blast's messages and an organization's days, aggregated in SQL.

Each function is one query whose answer is small (statuses × error codes × time buckets, or days × lines ×
statuses), whatever the number of messages: the web app's reports (webapp/reports.py) draw and export from
these rows. Cost with a 100,000-recipient blast: one pass over the blast's messages through msg_blast_status
(bench/bench_webapp_reports.py measures the whole page).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count
from django.db.models.functions import TruncDate

from organizations.models import Organization

from .models import OptOut
from .status import MessageStatus as S


@dataclass(frozen=True)
class BlastMessageRow:
    status: str
    error_code: str  # failed / undelivered only ("" for the others)
    bucket: int | None  # time bucket of the final report (delivered_at / failed_at), from `start`
    count: int


# One pass over the blast's messages; the error code and the time bucket only where a report gave them.
_BLAST_SQL = """
SELECT m.status,
       CASE WHEN m.status = ANY(%(failures)s) THEN m.error_code ELSE '' END,
       floor(extract(epoch FROM COALESCE(m.delivered_at, m.failed_at) - %(start)s) / %(bucket)s)::int,
       count(*)
FROM messaging_message m
WHERE m.blast_id = %(blast)s
GROUP BY 1, 2, 3
"""

FAILURES = (S.FAILED, S.UNDELIVERED)


def blast_message_rows(*, blast_id: int, start: datetime, bucket_seconds: int) -> list[BlastMessageRow]:
    """The blast's messages counted by status, carrier error code (failures) and time bucket of their
    final report (delivered or failed), bucket n covering [start + n·bucket, start + (n+1)·bucket)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _BLAST_SQL,
            {"blast": blast_id, "start": start, "bucket": bucket_seconds, "failures": [str(s) for s in FAILURES]},
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
