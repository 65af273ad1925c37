"""The batch apply ("carriers.apply_webhooks" → webhook_process): matching, ordering, early reports, counts."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from carriers import services as intake
from carriers.models import WebhookEvent, WebhookState
from carriers.services import APPLY_DEBOUNCE_KEY, MAX_ATTEMPTS, webhook_receive, webhooks_wake_waiting
from messaging.models import Message
from messaging.services.reports import webhook_process, webhook_process_batch
from postprocessing.models import Event
from tests import factories
from tests.webhooks import recipient_report

# The intake's caches (account, apply debounce, enqueue memo) fresh, as in tests/carriers.
pytestmark = pytest.mark.usefixtures("fresh_webhook_caches")


@pytest.fixture
def sent(org, line):
    """sent(batch_id=..., status=..., **fields) → an outbound message of `line` handed to the carrier."""

    def make(batch_id="BATCH1", status="sent", **fields):
        conversation = factories.ConversationFactory(organization=org, line=line)
        fields.setdefault("carrier_recipient", conversation.contact.phone_number)
        return factories.MessageFactory(conversation=conversation, status=status, carrier_batch_id=batch_id, **fields)

    return make


def _store(account, payload, kind="delivery"):
    return WebhookEvent.objects.create(account=account, kind=kind, body=json.dumps(payload).encode())


def test_per_recipient_reports_apply_mapped_statuses(account, sent):
    # given
    delivered, failed, expired, dispatched = sent(), sent(), sent(), sent(status="sending")
    _store(account, recipient_report(delivered, "Delivered", 0))
    _store(account, recipient_report(failed, "Failed", 60))
    _store(account, recipient_report(expired, "Expired", 406))
    _store(account, recipient_report(dispatched, "Dispatched", 401))
    # when
    result = webhook_process(debounce=False)
    # then
    assert result.claimed == 4 and result.processed == 4 and result.statuses_applied == 4
    for m in (delivered, failed, expired, dispatched):
        m.refresh_from_db()
    assert (delivered.status, delivered.carrier_status, delivered.error_code) == ("delivered", "Delivered", "")
    assert delivered.delivered_at is not None
    assert (failed.status, failed.carrier_status, failed.error_code) == ("failed", "Failed", "60")
    assert failed.error_reason == "Sinch Failed (code 60)"
    assert (expired.status, expired.carrier_status, expired.error_code) == ("undelivered", "Expired", "406")
    assert (dispatched.status, dispatched.carrier_status, dispatched.error_code) == ("sent", "Dispatched", "")
    assert set(WebhookEvent.objects.values_list("state", flat=True)) == {WebhookState.PROCESSED}
    assert sorted(Event.objects.values_list("type", flat=True)) == [
        "message.delivered",
        "message.failed",
        "message.failed",
        "message.sent",
    ]


@pytest.mark.parametrize("reports", [1, 30])
def test_batch_apply_query_count_is_constant(account, sent, reports):
    # given: N reports for N messages
    for m in [sent() for _ in range(reports)]:
        _store(account, recipient_report(m))
    # when
    with CaptureQueriesContext(connection) as captured:
        result = webhook_process_batch()
    # then: claim (marks processed), resolve, apply (+ outbox events) - whatever N is (savepoints aside)
    statements = [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) == 3
    assert result.statuses_applied == reports


def test_duplicates_are_harmless(account, sent):
    m = sent()
    for _ in range(3):
        _store(account, recipient_report(m))
    webhook_process(debounce=False)
    m.refresh_from_db()
    assert m.status == "delivered"
    assert Event.objects.filter(type="message.delivered").count() == 1
    assert WebhookEvent.objects.filter(state=WebhookState.PROCESSED).count() == 3
    # and a second delivery of the same report later changes nothing either
    _store(account, recipient_report(m))
    assert webhook_process(debounce=False).statuses_applied == 0
    assert Event.objects.count() == 1


def test_out_of_order_dispatched_after_delivered_does_not_regress(account, sent):
    m = sent()
    _store(account, recipient_report(m, "Delivered", 0))
    webhook_process(debounce=False)
    _store(account, recipient_report(m, "Dispatched", 401))
    webhook_process(debounce=False)
    m.refresh_from_db()
    assert (m.status, m.carrier_status) == ("delivered", "Delivered")


def test_out_of_order_in_one_batch_keeps_the_furthest(account, sent):
    m = sent(status="sending")
    _store(account, recipient_report(m, "Delivered", 0))
    _store(account, recipient_report(m, "Dispatched", 401))
    webhook_process(debounce=False)
    m.refresh_from_db()
    assert m.status == "delivered"


def test_early_report_matched_by_send_batch_ref(account, sent):
    # given: our send call has not returned yet: no batch id recorded, only the claim's reference
    m = sent(batch_id="", status="sending", send_batch_ref="b:0123abcd")
    _store(account, recipient_report(m, "Delivered", batch_id="BATCH9", client_reference="b:0123abcd"))
    # when
    webhook_process(debounce=False)
    # then: applied, and the batch id filled in from the report
    m.refresh_from_db()
    assert (m.status, m.carrier_batch_id) == ("delivered", "BATCH9")


def test_early_report_matched_by_per_message_client_reference(account, sent):
    m = sent(batch_id="", status="sending", client_reference="msg-77")
    _store(account, recipient_report(m, "Delivered", batch_id="BATCH7", client_reference="msg-77"))
    webhook_process(debounce=False)
    m.refresh_from_db()
    assert (m.status, m.carrier_batch_id) == ("delivered", "BATCH7")


def test_per_batch_reference_never_applies_to_the_wrong_recipient(account, sent):
    # a per-message reference that happens to equal the batch reference: only that message's recipient
    first = sent(batch_id="", status="sending", client_reference="b:shared", send_batch_ref="b:shared")
    second = sent(batch_id="", status="sending", send_batch_ref="b:shared")
    _store(account, recipient_report(second, "Failed", 60, batch_id="BATCH5", client_reference="b:shared"))
    webhook_process(debounce=False)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("sending", "failed")


def test_unmatched_report_stays_pending_with_backoff_then_fails(account, sent):
    # given: a report whose message is not known yet
    event = _store(
        account,
        {
            "type": "recipient_delivery_report_sms",
            "batch_id": "LATER",
            "recipient": "15125550100",
            "code": 0,
            "status": "Delivered",
            "at": "2026-10-02T09:34:18.542Z",
        },
    )
    # when
    result = webhook_process(debounce=False)
    # then: kept pending, retried later
    event.refresh_from_db()
    assert result.retried == 1
    assert event.state == WebhookState.PENDING and event.attempts == 1
    assert event.next_attempt_at > timezone.now() and "no message for batch LATER" in event.error
    assert webhook_process(debounce=False).claimed == 0  # not due yet
    # when: the batch id is recorded and the retry is due
    m = sent(batch_id="LATER", carrier_recipient="+15125550100")
    WebhookEvent.objects.filter(pk=event.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    webhook_process(debounce=False)
    m.refresh_from_db()
    event.refresh_from_db()
    assert m.status == "delivered" and event.state == WebhookState.PROCESSED


def test_unmatched_report_fails_after_max_attempts(account):
    event = _store(
        account,
        {
            "type": "recipient_delivery_report_sms",
            "batch_id": "NEVER",
            "recipient": "15125550100",
            "code": 0,
            "status": "Delivered",
            "at": "2026-10-02T09:34:18.542Z",
        },
    )
    WebhookEvent.objects.filter(pk=event.pk).update(attempts=MAX_ATTEMPTS - 1)
    webhook_process(debounce=False)
    event.refresh_from_db()
    assert event.state == WebhookState.FAILED and event.error.startswith(f"gave up after {MAX_ATTEMPTS} attempts")


def test_full_report_applies_per_recipient(account, sent):
    ok, aborted = sent(batch_id="FULL1"), sent(batch_id="FULL1")
    _store(
        account,
        {
            "type": "delivery_report_sms",
            "batch_id": "FULL1",
            "total_message_count": 2,
            "statuses": [
                {"code": 0, "status": "Delivered", "count": 1, "recipients": [ok.carrier_recipient.lstrip("+")]},
                {"code": 402, "status": "Aborted", "count": 1, "recipients": [aborted.carrier_recipient.lstrip("+")]},
            ],
        },
    )
    webhook_process(debounce=False)
    ok.refresh_from_db()
    aborted.refresh_from_db()
    assert (ok.status, aborted.status, aborted.error_code) == ("delivered", "failed", "402")


def test_summary_report_with_one_status_applies_to_the_whole_batch(account, sent):
    messages = [sent(batch_id="SUM1") for _ in range(3)]
    untouched = sent(batch_id="OTHER")
    _store(
        account,
        {
            "type": "delivery_report_sms",
            "batch_id": "SUM1",
            "total_message_count": 3,
            "statuses": [{"code": 0, "status": "Delivered", "count": 3}],
        },
    )
    webhook_process(debounce=False)
    assert {m.status for m in [*messages, untouched] if not m.refresh_from_db()} == {"delivered", "sent"}
    untouched.refresh_from_db()
    assert untouched.status == "sent"


def test_poison_event_is_isolated(account, sent):
    m = sent()
    good = _store(account, recipient_report(m))
    # a body that is valid JSON but wrong shape, requeued as pending (e.g. from admin)
    bad = WebhookEvent.objects.create(account=account, kind="delivery", body=b'{"type": "mystery"}')
    webhook_process(debounce=False)
    good.refresh_from_db()
    bad.refresh_from_db()
    m.refresh_from_db()
    assert m.status == "delivered" and good.state == WebhookState.PROCESSED
    assert bad.state == WebhookState.INVALID and "unknown delivery report type" in bad.error


def test_an_event_that_breaks_the_batch_is_isolated_and_failed(account, line, sent):
    # given: a good report, and an inbound whose carrier id cannot be stored (longer than its column; a
    # sender that long is kept clipped, as an alphanumeric sender: messaging/phone.py)
    m = sent()
    good = _store(account, recipient_report(m))
    poison = _store(
        account,
        {
            "type": "mo_text",
            "id": "MO1" * 50,
            "from": "1" * 30,
            "to": line.phone_number.lstrip("+"),
            "body": "hi",
            "received_at": "2026-10-02T09:34:18.542Z",
        },
        kind="inbound",
    )
    # when
    result = webhook_process(debounce=False)
    # then: the batch was retried one by one; the good report applied, the poison marked failed
    good.refresh_from_db()
    poison.refresh_from_db()
    m.refresh_from_db()
    assert m.status == "delivered" and good.state == WebhookState.PROCESSED
    assert poison.state == WebhookState.FAILED and poison.attempts == 1 and "DataError" in poison.error
    assert result.failed == 1


def test_one_batch_mixes_the_three_ways_and_a_placed_report_is_not_matched_twice(account, sent):
    # given: one report per way of matching, in one batch...
    by_batch = sent(batch_id="BATCH1")
    early = sent(batch_id="", status="sending", send_batch_ref="b:early")
    by_reference = sent(batch_id="", status="sending", client_reference="msg-9")
    # ...and a message that the placed report's reference and recipient would also match (way 2)
    bystander = sent(
        batch_id="", status="sending", send_batch_ref="b:shared2", carrier_recipient=by_batch.carrier_recipient
    )
    _store(account, recipient_report(by_batch, "Delivered", batch_id="BATCH1", client_reference="b:shared2"))
    _store(account, recipient_report(early, "Delivered", batch_id="BATCH2", client_reference="b:early"))
    _store(account, recipient_report(by_reference, "Failed", 60, batch_id="BATCH3", client_reference="msg-9"))
    # when
    result = webhook_process(debounce=False)
    # then
    for m in (by_batch, early, by_reference, bystander):
        m.refresh_from_db()
    assert (by_batch.status, early.status, by_reference.status) == ("delivered", "delivered", "failed")
    assert bystander.status == "sending"
    assert result.statuses_applied == 3 and result.processed == 3


def test_gathering_applies_everything_and_stops_when_idle(account, sent):
    messages = [sent() for _ in range(3)]
    for m in messages:
        _store(account, recipient_report(m, "Delivered"))
    # when: the task's mode, waiting after a partial batch before claiming again
    result = webhook_process(debounce=False, gather=0.01)
    # then
    assert result.claimed == 3 and result.statuses_applied == 3
    assert not WebhookEvent.objects.filter(state=WebhookState.PENDING).exists()


def test_a_report_waiting_for_its_batch_id_is_made_due_by_the_send_that_records_it(
    account, sent, django_assert_num_queries, django_capture_on_commit_callbacks
):
    # given: a report on batch LATE1 applied before our send recorded that id: it matched nothing
    m = sent(batch_id="", status="sending")
    _store(account, recipient_report(m, "Delivered", batch_id="LATE1"))
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_process(debounce=False).retried == 1
    waiting = WebhookEvent.objects.get()
    assert waiting.state == WebhookState.PENDING and waiting.next_attempt_at > timezone.now()
    # when: sends record other batch ids, nothing is woken, and no query is made (the common case)
    with django_assert_num_queries(0):
        assert webhooks_wake_waiting(batch_ids=["OTHER1", ""]) == 0
    # when: the send records LATE1
    Message.objects.filter(pk=m.pk).update(status="sent", carrier_batch_id="LATE1")
    with django_assert_num_queries(1):
        assert webhooks_wake_waiting(batch_ids=["LATE1"]) == 1
    # then: the row is due now and the next apply delivers the message; a second wake finds nothing
    assert webhook_process(debounce=False).statuses_applied == 1
    m.refresh_from_db()
    assert m.status == "delivered"
    assert webhooks_wake_waiting(batch_ids=["LATE1"]) == 0


@pytest.mark.django_db(transaction=True)
def test_a_webhook_whose_enqueue_the_memo_skipped_is_claimed_by_the_ending_task(account, sent):
    # given: an apply task running (the debounce key held), seen by this intake process just now
    m = sent(batch_id="BATCH7")
    cache.add(APPLY_DEBOUNCE_KEY, 1, timeout=60)
    intake._enqueue_memo["at"] = time.monotonic()
    results = []

    def task():
        try:
            results.append(webhook_process(time_budget=None))
        finally:
            connection.close()

    runner = threading.Thread(target=task)
    runner.start()
    # when: the task drops the key and makes its final claim, then a report arrives in the memo window
    deadline = time.monotonic() + 5
    while cache.get(APPLY_DEBOUNCE_KEY) is not None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.1)  # after the final claim that follows the drop
    if time.monotonic() - intake._enqueue_memo["at"] >= intake.ENQUEUE_MEMO_SECONDS:
        runner.join()
        pytest.skip("the machine was too slow to store the report inside the intake's memo window")
    webhook_receive(account_id=account.id, kind="delivery", body=json.dumps(recipient_report(m)).encode())
    assert cache.get(APPLY_DEBOUNCE_KEY) is None  # the memo skipped the SET NX: no task was enqueued
    runner.join(10)
    # then: the ending task claimed it once the memo window was over
    assert not runner.is_alive() and results[0].statuses_applied == 1
    m.refresh_from_db()
    assert m.status == "delivered"
