"""A backfill racing a live webhook on the same message ends in the right final status, with one event.

The race is forced, not hoped for: the webhook's transaction (the real carriers apply path) changes the
message and stays open; the backfill's guarded UPDATE then blocks on the row lock (we wait until
PostgreSQL shows it waiting); the webhook commits. Under READ COMMITTED the blocked UPDATE re-reads
the row and re-checks the transition guard against the committed status, so it changes nothing.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.db import connection, connections, transaction

from backfill.services import BackfillOptions, backfill_run_create, statuses_backfill
from carriers.models import WebhookEvent, WebhookKind
from carriers.sandbox.state import new_batch_id
from messaging.models import Message
from messaging.services.reports import webhook_process_batch
from messaging.status import MessageStatus as S
from postprocessing.models import Event


def _wait_for_lock_waiter(timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    with connections["default"].cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE '%%UPDATE messaging_message%%'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the backfill never waited on the webhook's row lock")


@pytest.mark.parametrize("carrier_says", ["Delivered", "Dispatched"])
def test_backfill_blocked_behind_a_live_webhook_changes_nothing_more(
    carrier_says, transactional_db, org, make_line, stuck, sandbox
):
    # given: a message stuck in "sending" (so that both answers are legal moves when the backfill reads
    # it, and its UPDATE must wait for the lock); the carrier answers the backfill with `carrier_says`
    line = make_line(org)
    batch_id = new_batch_id()
    message = stuck(line, status=S.SENDING, batch_id=batch_id)
    if carrier_says == "Dispatched":  # a stale read: the recipient is not final at the carrier yet
        sandbox.state.config.delay_min = sandbox.state.config.delay_max = 3600.0
    report = {
        "type": "recipient_delivery_report_sms",
        "batch_id": batch_id,
        "recipient": message.contact.phone_number.lstrip("+"),
        "code": 0,
        "status": "Delivered",
        "at": "2026-10-02T09:34:18.542Z",
    }
    run = backfill_run_create(organization_id=org.id, line_id=line.id, options=BackfillOptions())
    applied, commit = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def webhook():
        try:
            with transaction.atomic():  # holds the webhook's changes uncommitted until told
                event = WebhookEvent.objects.create(
                    account=line.carrier_account, kind=WebhookKind.DELIVERY, body=json.dumps(report).encode()
                )
                result = webhook_process_batch(ids=[event.id])
                assert result.statuses_applied == 1, result
                applied.set()
                assert commit.wait(20)
        except BaseException as exc:
            errors.append(exc)
            applied.set()
        finally:
            connection.close()

    outcome = {}

    def backfill():
        try:
            outcome["run"] = statuses_backfill(run_id=run.id)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    w = threading.Thread(target=webhook)
    w.start()
    assert applied.wait(20) and not errors, errors
    b = threading.Thread(target=backfill)
    b.start()
    # when: the backfill is parked on the row lock, the webhook commits
    try:
        _wait_for_lock_waiter()
    finally:
        commit.set()
        w.join(20)
        b.join(30)
    # then
    assert not errors, errors
    message.refresh_from_db()
    assert message.status == S.DELIVERED
    assert list(Event.objects.filter(message_id=message.pk).values_list("type", flat=True)) == ["message.delivered"]
    counts = outcome["run"].counts
    assert counts["updated"] == {} and counts["unchanged"] == 1


def test_a_late_webhook_after_the_backfill_changes_nothing(transactional_db, org, make_line, stuck, sandbox):
    line = make_line(org)
    batch_id = new_batch_id()
    message = stuck(line, status=S.SENT, batch_id=batch_id)
    sandbox.outcomes({message.contact.phone_number: "Failed"})
    run = backfill_run_create(organization_id=org.id, line_id=line.id, options=BackfillOptions())
    statuses_backfill(run_id=run.id)
    late = {
        "type": "recipient_delivery_report_sms",
        "batch_id": batch_id,
        "recipient": message.contact.phone_number.lstrip("+"),
        "code": 401,
        "status": "Dispatched",
    }
    event = WebhookEvent.objects.create(
        account=line.carrier_account, kind=WebhookKind.DELIVERY, body=json.dumps(late).encode()
    )

    webhook_process_batch(ids=[event.id])

    assert Message.objects.get(pk=message.pk).status == S.FAILED
    assert list(Event.objects.filter(message_id=message.pk).values_list("type", flat=True)) == ["message.failed"]
