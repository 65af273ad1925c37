"""Retention of stored carrier webhooks: processed events past WEBHOOK_EVENT_RETENTION_DAYS are deleted in
bounded batches; pending, failed and invalid ones never are (docs/carriers.md, "Retention")."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from carriers.models import WebhookEvent, WebhookState
from carriers.services import webhook_events_prune
from carriers.tasks import prune_webhooks
from config.beat import BEAT_SCHEDULE
from config.celery import app
from config.queues import Queue
from tests import factories

pytestmark = pytest.mark.django_db

P = WebhookState.PROCESSED


def _events(account, n: int, *, days_ago: float, state: str = P, processed_days_ago: float | None = None) -> list[int]:
    """n stored events received `days_ago` (ids in the order they are created, as the store's are)."""
    received = timezone.now() - timedelta(days=days_ago)
    processed = timezone.now() - timedelta(days=days_ago if processed_days_ago is None else processed_days_ago)
    rows = WebhookEvent.objects.bulk_create(
        WebhookEvent(
            account=account,
            kind="delivery",
            body=b"{}",
            state=state,
            received_at=received,
            processed_at=None if state == WebhookState.PENDING else processed,
        )
        for _ in range(n)
    )
    return [r.pk for r in rows]


@pytest.fixture
def account():
    return factories.CarrierAccountFactory()


def _left() -> set[int]:
    return set(WebhookEvent.objects.values_list("pk", flat=True))


def test_old_processed_events_go_and_recent_unprocessed_failed_and_invalid_ones_stay(account):
    # given: old processed events, with old pending, failed and invalid ones among them, one received
    # long ago but processed yesterday (a late retry), and a day of recent processed ones
    old = _events(account, 30, days_ago=40)
    kept = _events(account, 1, days_ago=40, state=WebhookState.PENDING)
    kept += _events(account, 1, days_ago=40, state=WebhookState.FAILED)
    old += _events(account, 10, days_ago=31)
    kept += _events(account, 1, days_ago=35, state=WebhookState.INVALID)
    kept += _events(account, 1, days_ago=35, processed_days_ago=1)
    kept += _events(account, 20, days_ago=29)
    kept += _events(account, 5, days_ago=0.01, state=WebhookState.PENDING)
    # when
    result = webhook_events_prune(older_than_days=30, batch=7)
    # then
    assert result.deleted == len(old) == 40
    assert _left() == set(kept)


def test_each_statement_takes_one_bounded_window_and_the_run_stops_at_the_recent_rows(account):
    # given: 25 old processed events, then 200 recent ones
    _events(account, 25, days_ago=40)
    recent = _events(account, 200, days_ago=1)
    # when: windows of 10 rows of the primary key
    with CaptureQueriesContext(connection) as queries:
        result = webhook_events_prune(older_than_days=30, batch=10)
    # then: 3 windows hold the old rows (the third also 5 recent ones), the 4th is all recent: the run
    # stops there instead of walking the 200 recent rows; one statement per window, each LIMIT 10
    assert result.deleted == 25
    assert result.statements == len(queries) == 4
    assert all("LIMIT" in q["sql"] and "DELETE FROM carriers_webhookevent" in q["sql"] for q in queries)
    assert _left() == set(recent)


def test_no_statement_deletes_more_than_its_batch(account):
    # given: 12 old processed events
    _events(account, 12, days_ago=40)
    # when: a batch of 5
    result = webhook_events_prune(older_than_days=30, batch=5)
    # then: three statements (5 + 5 + 2): a window shorter than the batch is the end of the table
    assert (result.deleted, result.statements) == (12, 3)
    assert _left() == set()


def test_dry_run_counts_and_deletes_nothing(account):
    _events(account, 3, days_ago=40)
    _events(account, 2, days_ago=40, state=WebhookState.FAILED)
    out = StringIO()
    call_command("prune_webhook_events", "--dry-run", "--days", "30", stdout=out)
    assert "would delete 3 processed webhook events older than 30 days" in out.getvalue()
    assert WebhookEvent.objects.count() == 5
    # and without --dry-run, with the setting's retention
    call_command("prune_webhook_events", stdout=out)
    assert WebhookEvent.objects.count() == 2


def test_retention_zero_keeps_everything(account):
    _events(account, 3, days_ago=400)
    assert webhook_events_prune(older_than_days=0).deleted == 0
    assert WebhookEvent.objects.count() == 3


def test_beat_runs_the_prune_hourly_on_the_bulk_queue(account, settings):
    entry = BEAT_SCHEDULE["carriers.prune_webhooks"]
    assert entry["schedule"] == 3600.0
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks and prune_webhooks.name == entry["task"]
    assert app.amqp.router.route({}, entry["task"])["queue"].name == Queue.BULK
    assert app.amqp.router.route({}, "carriers.apply_webhooks")["queue"].name == Queue.WEBHOOKS
    # the task reads the setting
    _events(account, 2, days_ago=8)
    settings.WEBHOOK_EVENT_RETENTION_DAYS = 10
    assert prune_webhooks() == 0
    settings.WEBHOOK_EVENT_RETENTION_DAYS = 7
    assert prune_webhooks() == 2
