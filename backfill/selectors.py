"""Reads of the status backfill: stuck messages by keyset, runs, lines due for reconciliation."""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.db.models import QuerySet
from django.db.models.functions import Coalesce

from messaging.models import IN_FLIGHT_STATUSES, Direction, Line, Message, MessageInFlight

from .checks import StuckMessage
from .models import BackfillRun, RunKind


def stuck_messages_qs(
    *,
    line_ids: list[int],
    statuses: list[str],
    since: datetime | None = None,
    until: datetime | None = None,
    handed_before: datetime | None = None,
    handed_after: datetime | None = None,
    after_id: int = 0,
) -> QuerySet:
    """since/until filter by creation time (the command's options); handed_before by the time the
    message was last handed to the carrier (the reconciler's age: a blast created days ago and sent a
    minute ago is not stuck); after_id is a keyset cursor."""
    qs = Message.objects.filter(line_id__in=line_ids, direction=Direction.OUTBOUND, status__in=statuses)
    if after_id:
        qs = qs.filter(id__gt=after_id)
    if set(statuses) <= set(IN_FLIGHT_STATUSES):
        # The work queue's (line, status, id) index finds them; Message has no index on status.
        queue = MessageInFlight.objects.filter(line_id__in=line_ids, status__in=statuses, message_id__gt=after_id)
        qs = qs.filter(id__in=queue.values("message_id"))
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    qs = qs.annotate(handed_at=Coalesce("sending_at", "created_at"))
    if handed_before is not None:
        qs = qs.filter(handed_at__lt=handed_before)
    if handed_after is not None:
        qs = qs.filter(handed_at__gte=handed_after)
    return qs


def stuck_messages_after(
    *,
    line_id: int,
    statuses: list[str],
    after_id: int,
    limit: int,
    since: datetime | None = None,
    until: datetime | None = None,
    handed_before: datetime | None = None,
    handed_after: datetime | None = None,
) -> list[StuckMessage]:
    """The next `limit` stuck messages of a line with id > after_id, in id order (keyset: a rerun or a
    resumed run continues where it stopped, and rows finished meanwhile simply drop out)."""
    rows = (
        stuck_messages_qs(
            line_ids=[line_id],
            statuses=statuses,
            since=since,
            until=until,
            handed_before=handed_before,
            handed_after=handed_after,
            after_id=after_id,
        )
        .order_by("id")
        .values_list(
            "id",
            "status",
            "carrier_batch_id",
            "carrier_recipient",
            "send_batch_ref",
            "client_reference",
            "handed_at",
            "contact__phone_number",
        )[:limit]
    )
    return [
        StuckMessage(
            id=id_,
            status=status,
            batch_id=batch_id,
            recipient=recipient or contact_number,
            # The send step sends its per-call reference as Sinch's client_reference; older rows
            # (and messages sent one by one) carry only the per-message reference.
            client_reference=send_ref or client_ref or "",
            handed_at=handed_at,
        )
        for id_, status, batch_id, recipient, send_ref, client_ref, handed_at, contact_number in rows
    ]


def lines_for_run(*, run: BackfillRun) -> list[Line]:
    """The run's line, or every line of its organization that has a carrier account, in id order."""
    if run.line_id:
        return list(Line.objects.filter(pk=run.line_id).select_related("carrier_account"))
    return list(
        Line.objects.filter(organization_id=run.organization_id, carrier_account__isnull=False)
        .select_related("carrier_account")
        .order_by("id")
    )


def lines_for_line_id(*, line_id: int) -> Line:
    return Line.objects.select_related("carrier_account").get(pk=line_id)


def lines_due_for_reconcile(*, statuses: list[str], handed_before: datetime, limit: int) -> list[int]:
    """Lines holding outbound messages still awaiting the carrier past the cutoff, least recently
    reconciled first (so a line with many messages the carrier never knew cannot starve the others)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT l.id FROM messaging_line l
            WHERE l.carrier_account_id IS NOT NULL AND EXISTS (
                SELECT 1 FROM messaging_message_inflight f JOIN messaging_message m ON m.id = f.message_id
                WHERE f.line_id = l.id AND f.status = ANY(%s) AND m.status = f.status AND m.direction = %s
                  AND COALESCE(m.sending_at, m.created_at) < %s
            )
            ORDER BY (SELECT max(r.id) FROM backfill_backfillrun r WHERE r.line_id = l.id AND r.kind = %s)
                     NULLS FIRST, l.id
            LIMIT %s
            """,
            [statuses, Direction.OUTBOUND.value, handed_before, RunKind.RECONCILE.value, limit],
        )
        return [row[0] for row in cursor.fetchall()]


def last_reconcile_run(*, line_id: int) -> BackfillRun | None:
    return BackfillRun.objects.filter(line_id=line_id, kind=RunKind.RECONCILE).order_by("-id").first()


def lines_with_overdue_reports(
    *, statuses: list[str], now: datetime, not_before: datetime, limit: int
) -> list[tuple[int, datetime]]:
    """Lines holding outbound messages in `statuses` handed to the carrier between `not_before` and
    now minus their carrier account's report delay; (line id, that cutoff), least recently checked
    first. Reads the work queue's (line, status, id) index (messaging_message_inflight)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT l.id, %s::timestamptz - make_interval(secs => a.report_delay_seconds)
            FROM messaging_line l JOIN carriers_carrieraccount a ON a.id = l.carrier_account_id
            WHERE EXISTS (
                SELECT 1 FROM messaging_message_inflight f JOIN messaging_message m ON m.id = f.message_id
                WHERE f.line_id = l.id AND f.status = ANY(%s) AND m.status = f.status AND m.direction = %s
                  AND COALESCE(m.sending_at, m.created_at)
                      < %s::timestamptz - make_interval(secs => a.report_delay_seconds)
                  AND COALESCE(m.sending_at, m.created_at) >= %s
            )
            ORDER BY (SELECT max(r.id) FROM backfill_backfillrun r WHERE r.line_id = l.id AND r.kind = %s)
                     NULLS FIRST, l.id
            LIMIT %s
            """,
            [now, statuses, Direction.OUTBOUND.value, now, not_before, RunKind.OVERDUE.value, limit],
        )
        return [(row[0], row[1]) for row in cursor.fetchall()]


def last_run(*, line_id: int, kind: str) -> BackfillRun | None:
    return BackfillRun.objects.filter(line_id=line_id, kind=kind).order_by("-id").first()
