"""Callbacks on a bad day: a deactivated account, a database that fails the account lookup, bodies
nested past the parser, NUL bytes and lone surrogates. Both routes (Django and the fast lane) where a
request is involved. Issue 12 items 7, 8, 9 and issue 18 item 5."""

from __future__ import annotations

import json

import pytest
import requests
from django.db import connection

from carriers.health import webhook_refusals
from carriers.models import WebhookEvent, WebhookState
from messaging.models import Message
from messaging.services.reports import webhook_process
from tests import factories
from tests.carriers.conftest import recipient_report
from tests.carriers.test_webhooks import MO_TEXT, PER_RECIPIENT
from tests.worker import free_port, served_web


@pytest.fixture
def sent_message(org, line):
    conversation = factories.ConversationFactory(organization=org, line=line)
    return factories.MessageFactory(
        conversation=conversation,
        status="sent",
        carrier_batch_id="BATCH-ODD",
        carrier_recipient=conversation.contact.phone_number,
    )


# -- 12.8: a deactivated account ------------------------------------------------------------------------


def test_a_deactivated_accounts_reports_are_accepted_flagged_and_applied(account, line, sent_message, post_webhook):
    # given: the account is switched off while its message is in flight
    account.is_active = False
    account.save()
    # when
    response = post_webhook(account, "delivery", recipient_report(sent_message))
    webhook_process(debounce=False)
    # then: stored (flagged), applied
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.account_inactive is True and event.state == WebhookState.PROCESSED
    sent_message.refresh_from_db()
    assert sent_message.status == "delivered"


def test_an_active_accounts_callbacks_are_not_flagged(account, post_webhook):
    assert post_webhook(account, "delivery", PER_RECIPIENT).status_code == 200
    assert WebhookEvent.objects.get().account_inactive is False


def test_only_a_secret_that_never_existed_is_404(account, post_webhook):
    account.is_active = False
    account.save()
    assert post_webhook(account, "delivery", PER_RECIPIENT).status_code == 200
    account.webhook_secret = "never-existed-" + account.webhook_secret[:10]
    assert post_webhook(account, "delivery", PER_RECIPIENT).status_code == 404
    assert WebhookEvent.objects.count() == 1


# -- 18.5: the account lookup fails ---------------------------------------------------------------------


def test_a_failing_account_lookup_is_503_never_404(account, post_webhook):
    # given: a cold account cache (conftest) and a database that fails the lookup for real: the
    # accounts table is gone for this test's (rolled back) transaction
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE carriers_carrieraccount RENAME TO carriers_carrieraccount_away")
    # when
    response = post_webhook(account, "delivery", PER_RECIPIENT)
    # then: 5xx, so that Sinch retries (it drops a report answered 404)
    assert response.status_code == 503


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("app", ["config.wsgi:application", "config.wsgi:django_application"])
def test_a_database_that_is_down_answers_503_on_both_routes(app):
    # given: the served app, its database on a port where nothing listens (down, as after a crash)
    dead = f"postgres://postgres@127.0.0.1:{free_port()}/parley_down"
    with served_web(app, DATABASE_URL=dead) as url:
        # when
        response = requests.post(
            f"{url}/webhooks/sinch/some-secret/delivery", data=json.dumps(PER_RECIPIENT), timeout=30
        )
    # then
    assert response.status_code == 503


# -- 12.9 (webhook half): nesting past the parser --------------------------------------------------------


@pytest.mark.parametrize(("opening", "closing"), [("[", "]"), ('{"a":', "}")])
def test_deeply_nested_json_is_400_and_stored_invalid(account, post_webhook, opening, closing):
    body = (opening * 1500 + "1" + closing * 1500).encode()
    # when
    response = post_webhook(account, "delivery", body)
    # then
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_body", "reason": "body is nested too deeply"}
    event = WebhookEvent.objects.get()
    assert event.state == WebhookState.INVALID and bytes(event.body) == body


def test_a_stored_deeply_nested_body_does_not_break_the_apply(account):
    # given: such a body already pending (e.g. requeued from the admin)
    event = WebhookEvent.objects.create(account=account, kind="delivery", body=b"[" * 1500 + b"]" * 1500)
    # when
    result = webhook_process(debounce=False)
    # then
    event.refresh_from_db()
    assert result.failed == 1 and event.state == WebhookState.INVALID and "nested too deeply" in event.error


# -- 12.7: bytes PostgreSQL refuses -----------------------------------------------------------------------


def test_an_inbound_text_with_a_nul_is_kept_raw_and_stored_sanitized(org, account, line, post_webhook):
    # given: "a\u0000b" as JSON escapes it
    payload = {**MO_TEXT, "to": line.phone_number.lstrip("+"), "body": "a\u0000b \ud83d"}
    raw = json.dumps(payload).encode()
    assert b"\\u0000" in raw
    # when
    assert post_webhook(account, "inbound", raw).status_code == 200
    result = webhook_process(debounce=False)
    # then: the raw body byte for byte; the message with the characters PostgreSQL refuses replaced
    event = WebhookEvent.objects.get()
    assert bytes(event.body) == raw and event.state == WebhookState.PROCESSED, event.error
    assert result.inbound_stored == 1
    message = Message.objects.get(direction="in")
    assert message.body == "a\ufffdb \ufffd\ufffd\ufffd"


def test_a_report_whose_reference_holds_a_nul_is_applied(account, sent_message, post_webhook):
    report = recipient_report(sent_message, client_reference="ref\u0000x")
    assert post_webhook(account, "delivery", report).status_code == 200
    webhook_process(debounce=False)
    sent_message.refresh_from_db()
    assert sent_message.status == "delivered"
    assert WebhookEvent.objects.get().state == WebhookState.PROCESSED


def test_an_unmatched_report_with_a_nul_in_its_batch_id_waits_without_failing(account, post_webhook):
    report = {**PER_RECIPIENT, "batch_id": "BATCH\u0000NUL", "code": "9" * 40}
    assert post_webhook(account, "delivery", report).status_code == 200
    result = webhook_process(debounce=False)
    event = WebhookEvent.objects.get()
    assert result.retried == 1 and event.state == WebhookState.PENDING
    assert "BATCH\ufffdNUL" in event.error


# -- issue 14.7: refusals are logged and counted ----------------------------------------------------------


def test_refusals_are_logged_without_the_secret_and_counted_per_account(org, account, post_webhook, caplog):
    # given: an account with basic auth
    guarded = factories.CarrierAccountFactory(organization=org, webhook_username="sinch", webhook_password="pw-1")  # noqa: S106
    # when: a bad-auth report, an unparseable one, and one to a secret that never existed
    assert post_webhook(guarded, "delivery", PER_RECIPIENT).status_code == 401
    assert post_webhook(account, "delivery", b"{nope").status_code == 400
    account_secret, account.webhook_secret = account.webhook_secret, "no-such-secret-xyz"
    assert post_webhook(account, "delivery", PER_RECIPIENT).status_code == 404
    # then
    counts = webhook_refusals([guarded.id, account.id, None])
    assert (counts[guarded.id].last_hour, counts[guarded.id].last_day, counts[guarded.id].last_status) == (1, 1, 401)
    assert counts[guarded.id].last_reason == "basic auth missing"
    assert (counts[account.id].last_hour, counts[account.id].last_status) == (1, 400)
    assert "not valid JSON" in counts[account.id].last_reason
    assert counts[None].last_hour >= 1 and counts[None].last_status == 404
    refused = [r.getMessage() for r in caplog.records if r.name == "carriers.webhooks"]
    assert len(refused) == 3 and all("refused" in line for line in refused)
    every_line = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (guarded.webhook_secret, account_secret, "no-such-secret-xyz", "pw-1"):
        assert secret not in every_line
