"""The send step when its carrier is down, in-process against a Sinch fake on loopback and the real Redis:
the circuit breaker pauses a line's sends and its probe resumes them; retries back off for as long as
the retry window allows; one reference is never asked about and sent by two workers at once.
(With real workers and the sandbox carrier: test_outage_worker.py.)"""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings as django_settings

from carriers import breaker
from messaging import tasks
from messaging.models import Message
from messaging.services import carrier_send
from messaging.status import MessageStatus as S
from tests.messaging.test_send import _prepared_blast
from tests.worker import FakeSinch, purge_queues


@pytest.fixture
def fake_sinch():
    with FakeSinch() as fake:
        yield fake


@pytest.fixture
def quick_breaker(settings):
    settings.CARRIER_BREAKER_FAILURES = 3
    settings.CARRIER_BREAKER_OPEN_SECONDS = 0.3
    settings.CARRIER_BREAKER_OPEN_MAX_SECONDS = 1.0
    return settings


def _statuses(ids) -> set[str]:
    return set(Message.objects.filter(id__in=ids).values_list("status", flat=True))


def _wait_until_probe_due(account_id: int) -> None:
    deadline = time.monotonic() + 5
    while float(breaker.state(account_id=account_id).get("open_until", 0)) > time.time():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_an_open_breaker_pauses_the_lines_sends_without_claiming_or_calling(
    org, fake_sinch, quick_breaker, django_capture_on_commit_callbacks
):
    # given: the carrier account's breaker is open
    blast, (group,) = _prepared_blast(org, 4, "Hello", fake_sinch.url, django_capture_on_commit_callbacks)
    account_id = blast.line.carrier_account_id
    for _ in range(3):
        breaker.record_failure(account_id=account_id)
    # when
    outcome = carrier_send.batch_send(line_id=group.line_id, message_ids=group.message_ids, segments=group.segments)
    # then: nothing claimed, nothing called; the whole group is handed back to wait for the probe
    assert fake_sinch.requests == []
    assert _statuses(group.message_ids) == {S.PREPARED}
    assert outcome.rest is not None and outcome.rest.message_ids == group.message_ids
    assert outcome.paused is not None and 0 < outcome.paused <= 0.3 * 1.2 and outcome.sent == 0


def test_transient_failures_open_the_breaker_and_the_probes_success_resumes_the_line(
    org, fake_sinch, quick_breaker, django_capture_on_commit_callbacks
):
    # given: a carrier answering 503 to three one-message batches in a row
    blast, (group,) = _prepared_blast(org, 5, "Hello", fake_sinch.url, django_capture_on_commit_callbacks)
    account_id = blast.line.carrier_account_id
    ids = group.message_ids
    fake_sinch.fail_next = [503, 503, 503]
    refs = []
    for mid in ids[:3]:
        refs += carrier_send.batch_send(line_id=group.line_id, message_ids=[mid], segments=[1]).retry_refs
    # then: the breaker is open; a fourth batch and the retries wait without calling
    assert len(refs) == 3 and breaker.state(account_id=account_id)["state"] == breaker.OPEN
    assert carrier_send.batch_send(line_id=group.line_id, message_ids=[ids[3]], segments=[1]).paused
    assert carrier_send.batch_resume(line_id=group.line_id, batch_ref=refs[0]).paused
    assert len(fake_sinch.requests) == 3
    # when: the interval ends and the carrier is back: the first caller is the probe
    _wait_until_probe_due(account_id)
    probe = carrier_send.batch_resume(line_id=group.line_id, batch_ref=refs[0])
    # then: its success closes the breaker and everything else goes at once
    assert probe.sent == 1 and breaker.is_closed(account_id=account_id)
    for ref in refs[1:]:
        assert carrier_send.batch_resume(line_id=group.line_id, batch_ref=ref).sent == 1
    assert carrier_send.batch_send(line_id=group.line_id, message_ids=ids[3:], segments=[1, 1]).sent == 2
    assert _statuses(ids) == {S.SENT}
    assert sorted(fake_sinch.recipients_sent()) == sorted(
        Message.objects.filter(id__in=ids).values_list("carrier_recipient", flat=True)
    )


def test_a_429_is_the_carrier_pacing_us_not_an_outage(
    org, fake_sinch, quick_breaker, django_capture_on_commit_callbacks
):
    blast, (group,) = _prepared_blast(org, 4, "Hello", fake_sinch.url, django_capture_on_commit_callbacks)
    fake_sinch.fail_next = [429, 429, 429, 429]
    for mid in group.message_ids:
        assert carrier_send.batch_send(line_id=group.line_id, message_ids=[mid], segments=[1]).retry_refs
    assert breaker.is_closed(account_id=blast.line.carrier_account_id)


@pytest.mark.django_db(transaction=True)
def test_two_retries_of_one_reference_never_both_ask_and_send(org, fake_sinch, django_capture_on_commit_callbacks):
    # given: a batch whose first call failed, and a carrier that holds the retry's call for a while
    blast, (group,) = _prepared_blast(org, 3, "Hello", fake_sinch.url, django_capture_on_commit_callbacks)
    fake_sinch.fail_next = [503]
    (ref,) = carrier_send.batch_send(line_id=group.line_id, message_ids=group.message_ids).retry_refs
    fake_sinch.hold_seconds = 2.0
    fake_sinch.arrived.clear()
    first: list = []

    def resume():
        try:
            first.append(carrier_send.batch_resume(line_id=group.line_id, batch_ref=ref))
        finally:
            from django.db import connection

            connection.close()

    thread = threading.Thread(target=resume)
    thread.start()
    assert fake_sinch.arrived.wait(10)
    # when: a duplicate of the retry task, and the recovery sweep, run while the first retry is mid-call
    duplicate = carrier_send.batch_resume(line_id=group.line_id, batch_ref=ref)
    recovered = carrier_send.sends_recover(lease=timedelta(0))
    thread.join(20)
    # then: only the first retry asked and sent; the carrier got the batch once
    assert duplicate.sent == 0 and not duplicate.retry_refs
    assert recovered.recorded_sent == 0 and recovered.to_send == []
    assert first[0].sent == 3
    assert len(fake_sinch.batches) == 1 and len(fake_sinch.recipients_sent()) == 3
    assert _statuses(group.message_ids) == {S.SENT}


@pytest.mark.django_db(transaction=True)
def test_a_retry_renews_the_lease_so_recovery_leaves_a_live_retry_chain_alone(
    org, fake_sinch, quick_breaker, django_capture_on_commit_callbacks
):
    # given: a batch that failed 6 minutes ago (past the 5-minute lease) and is still being retried
    blast, (group,) = _prepared_blast(org, 2, "Hello", fake_sinch.url, django_capture_on_commit_callbacks)
    fake_sinch.fail_next = [503, 503]
    (ref,) = carrier_send.batch_send(line_id=group.line_id, message_ids=group.message_ids).retry_refs
    Message.objects.filter(id__in=group.message_ids).update(
        sending_at=Message.objects.get(pk=group.message_ids[0]).sending_at - timedelta(minutes=6)
    )
    assert carrier_send.batch_resume(line_id=group.line_id, batch_ref=ref).retry_refs == [ref]  # 503 again
    # when: the sweep runs with the normal lease
    result = carrier_send.sends_recover()
    # then: the retry's renewal keeps it in charge
    assert result.recorded_sent == 0 and result.to_send == []
    assert _statuses(group.message_ids) == {S.SENDING}


# -- the retry schedule, read back from the real broker -------------------------------------------------


def _published(queue: str = "send") -> list[tuple[str, list, float | None]]:
    """(task name, args, countdown in s) of what is waiting in the broker's queue."""
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    found = []
    for raw in client.lrange(queue, 0, -1):
        message = json.loads(raw)
        headers = message["headers"]
        args = json.loads(base64.b64decode(message["body"]))[0]
        eta = headers.get("eta")
        countdown = None
        if eta:
            from datetime import datetime

            countdown = datetime.fromisoformat(eta).timestamp() - time.time()
        found.append((headers["task"], args, countdown))
    return found


@pytest.fixture
def empty_broker(db):
    purge_queues()
    yield
    purge_queues()


def test_retries_go_on_past_six_attempts_with_capped_jittered_backoff(empty_broker, settings):
    settings.SEND_RETRY_CAP_SECONDS = 20.0
    outcome = carrier_send.SendOutcome(retry_refs=["b:ref"])
    # when: the 12th attempt of a batch that first failed 10 minutes ago fails again
    tasks._follow_up(7, outcome, 12, time.time() - 600)
    # then: an attempt 13 is scheduled within the cap, carrying the time of the first error
    ((name, args, countdown),) = _published()
    assert name == "messaging.send_resume" and args[:3] == [7, "b:ref", 13]
    assert countdown is not None and countdown <= 20.0
    assert abs(args[3] - (time.time() - 600)) < 5


def test_a_batch_past_the_retry_window_is_left_to_recovery(empty_broker, settings, caplog):
    settings.SEND_RETRY_WINDOW_SECONDS = 3600
    tasks._follow_up(7, carrier_send.SendOutcome(retry_refs=["b:ref"]), 40, time.time() - 3601)
    assert _published() == [] and "giving up" in caplog.text


def test_a_paused_retry_waits_for_the_probe_without_growing_its_backoff(empty_broker):
    tasks._follow_up(7, carrier_send.SendOutcome(retry_refs=["b:ref"], paused=3.0), 4, time.time())
    ((name, args, countdown),) = _published()
    assert args[2] == 4 and countdown is not None and 2.0 <= countdown <= 4.5


def test_no_countdown_outlasts_the_brokers_visibility_timeout(empty_broker, settings):
    # A task waiting longer than the visibility timeout is handed out twice on Redis; copies of a waiting
    # task would each re-enqueue themselves.
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "visibility_timeout": 5}
    tasks._follow_up(7, carrier_send.SendOutcome(retry_refs=["b:ref"], paused=15.0), 1, time.time())
    tasks._follow_up(7, carrier_send.SendOutcome(retry_refs=["b:other"], retry_after=30.0), 1, time.time())
    countdowns = [countdown for _name, _args, countdown in _published()]
    assert len(countdowns) == 2 and all(c is not None and c <= 4.0 for c in countdowns)
