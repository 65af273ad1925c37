"""The reads behind /metrics (operations/metrics.py). Each says what it costs; none scans the message
table. See docs/operations.md."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.utils import timezone
from kombu import Connection

from carriers.health import webhook_refusals
from carriers.models import CarrierAccount, WebhookEvent, WebhookState
from config.queues import Queue
from messaging.counters import sends_per_line as _sends_per_line
from messaging.models import IN_FLIGHT_STATUSES, Blast, BlastStatus
from messaging.selectors import blasts_stalled
from postprocessing.models import EventState

# The in-flight statuses: exactly the rows of the work queue (messaging_message_inflight), so the count
# reads only the rows in flight, however large the message table.
IN_FLIGHT = list(IN_FLIGHT_STATUSES)


def messages_in_flight() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT status, count(*) FROM messaging_message_inflight GROUP BY status")
        found = dict(cursor.fetchall())
    return {s: int(found.get(s, 0)) for s in IN_FLIGHT}


def messages_estimated() -> dict[str, int]:
    """Whole-table counts by status from the planner's statistics (pg_stats' most common values times
    the table's row estimate): two catalog reads, as fresh as the last (auto)ANALYZE."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT s.most_common_vals::text::text[], s.most_common_freqs, GREATEST(c.reltuples, 0)::bigint
            FROM pg_stats s JOIN pg_class c ON c.relname = s.tablename
            WHERE s.schemaname = current_schema() AND s.tablename = 'messaging_message' AND s.attname = 'status'
            """
        )
        row = cursor.fetchone()
    if not row or row[0] is None:
        return {}
    values, freqs, total = row
    return {v: round(f * total) for v, f in zip(values, freqs, strict=False)}


def webhooks_last_hour() -> dict[str, tuple[int, int]]:
    """{account id: (accepted, refused)} over the last hour. Accepted: one count per account on the
    webhook table's (account, received_at) index, the last hour's rows only; refused: the Redis counters
    carriers/health.py keeps (one round trip)."""
    accounts = list(CarrierAccount.objects.values_list("id", flat=True))
    accepted = _accepted_counts(accounts, timezone.now() - timedelta(hours=1))
    refused = webhook_refusals([*accounts, None])
    result = {str(a): (accepted.get(a, 0), refused[a].last_hour) for a in accounts}
    result["unknown"] = (0, refused[None].last_hour)  # refusals before any account was known
    return result


def _accepted_counts(accounts: list[int], since) -> dict[int, int]:
    rows = (
        WebhookEvent.objects.filter(account_id__in=accounts, received_at__gte=since)
        .exclude(state=WebhookState.INVALID, processed_at__isnull=True)
        .values("account_id")
        .annotate(n=Count("id"))
    )
    return {r["account_id"]: r["n"] for r in rows}


def queue_depths() -> dict[str, int]:
    """Tasks waiting per queue, from the broker itself (Redis: LLEN; RabbitMQ: a passive declare)."""
    depths = {}
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=1) as conn:
        channel = conn.default_channel
        for queue in Queue:
            try:
                depths[queue.value] = int(channel.queue_declare(queue=queue.value, passive=True).message_count)
            except Exception:  # noqa: BLE001 - a queue nobody declared yet (RabbitMQ answers 404) is empty
                depths[queue.value] = 0
                channel = conn.channel()  # RabbitMQ closes the channel after a 404
    return depths


def outbox_backlog() -> tuple[int, float]:
    """(pending events, age in seconds of the oldest): both on the event_pending partial index (the oldest
    by id, as ids follow insertion)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT (SELECT count(*) FROM postprocessing_event WHERE state = %(pending)s),
                   COALESCE((SELECT EXTRACT(EPOCH FROM now() - created_at) FROM postprocessing_event
                             WHERE state = %(pending)s ORDER BY id LIMIT 1), 0)
            """,
            {"pending": EventState.PENDING},
        )
        pending, lag = cursor.fetchone()
    return int(pending), max(0.0, float(lag))


def blasts_sending_and_stalled() -> tuple[int, int]:
    return Blast.objects.filter(status=BlastStatus.SENDING).count(), len(blasts_stalled())


def sends_per_line() -> dict[int, int]:
    return _sends_per_line()
