"""The send step in-process against a Sinch fake on loopback: claim, carrier payload, results, retries,
recovery, pacing, query counts. (Real worker processes: test_send_worker.py.)"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from messaging import cache, ratelimit
from messaging.models import Message
from messaging.services import carrier_send, claims, grouping, prepare, sending
from messaging.status import MessageStatus as S
from tests import factories
from tests.messaging.test_prepare import _audience, _blast, _no_quiet_hours, statements
from tests.worker import FakeSinch


@pytest.fixture
def fake_sinch():
    with FakeSinch() as fake:
        yield fake


def _point_line_at(line, url, **config):
    account = line.carrier_account
    account.config = {**account.config, "base_url": url, **config}
    account.save()
    line.rate_per_second = 100_000  # pacing is not what these tests look at
    line.save()
    ratelimit.reset(line_id=line.id)


def _prepared_blast(org, n, body, url, django_capture_on_commit_callbacks, **config):
    _no_quiet_hours(org)
    blast = _blast(org, body, _audience(org, n))
    _point_line_at(blast.line, url, **config)
    with django_capture_on_commit_callbacks(execute=False):
        sending.blast_launch(organization=org, blast_id=blast.id)
    groups = []
    for lo, hi in sending._chunk_ranges(blast.id):
        groups += prepare.blast_prepare_chunk(blast_id=blast.id, first_recipient_id=lo, last_recipient_id=hi)
    return blast, groups


def _paced_blast(org, n, body, url, django_capture_on_commit_callbacks, settings, *, rate=10):
    """A prepared blast of n on a line paced at `rate` segments/s, W = 1 s, its bucket full: (line, group)."""
    settings.SEND_BATCH_WINDOW_SECONDS = 1.0
    blast, (group,) = _prepared_blast(org, n, body, url, django_capture_on_commit_callbacks)
    line = blast.line
    line.rate_per_second = rate
    line.save()
    ratelimit.reset(line_id=line.id)
    return line, group


def test_a_1000_message_batch_is_one_carrier_call_and_two_statements(
    org, fake_sinch, django_capture_on_commit_callbacks
):
    # given
    blast, groups = _prepared_blast(
        org, 1000, "Hi {first_name}, sale in {city} today!", fake_sinch.url, django_capture_on_commit_callbacks
    )
    (group,) = groups
    cache.line_info(group.line_id)  # warm the settings cache as a running worker has it
    cache.account_info(blast.line.carrier_account_id)
    # when
    with CaptureQueriesContext(connection) as ctx:
        outcome = carrier_send.batch_send(line_id=group.line_id, message_ids=group.message_ids, segments=group.segments)
    # then: the claim and the one status statement; ≤ 0.05 per message is the target
    assert len(statements(ctx)) == 2, statements(ctx)
    assert outcome.sent == 1000 and not outcome.retry_refs
    (request,) = fake_sinch.requests
    assert len(request["to"]) == 1000
    assert request["body"] == "Hi ${f1}, sale in ${f2} today!"
    assert request["delivery_report"] == "per_recipient_final"
    assert request["callback_url"].endswith(f"/webhooks/sinch/{blast.line.carrier_account.webhook_secret}/delivery")
    m = Message.objects.get(pk=group.message_ids[0])
    assert request["parameters"]["f1"][m.carrier_recipient] == m.send_params["f1"]
    assert request["parameters"]["f1"]["default"] == ""
    assert m.status == S.SENT and m.carrier_batch_id == fake_sinch.batches[0]["id"]
    assert m.send_batch_ref == request["client_reference"] and m.send_batch_ref.startswith("b:")
    assert Message.objects.filter(blast=blast, status=S.SENT, carrier_batch_id=m.carrier_batch_id).count() == 1000


def test_a_duplicated_or_redelivered_send_task_never_sends_twice(org, fake_sinch, django_capture_on_commit_callbacks):
    _blast_, (group,) = _prepared_blast(org, 5, "Hello", fake_sinch.url, django_capture_on_commit_callbacks)
    first = carrier_send.batch_send(line_id=group.line_id, message_ids=group.message_ids, segments=group.segments)
    again = carrier_send.batch_send(line_id=group.line_id, message_ids=group.message_ids, segments=group.segments)
    assert first.sent == 5 and again.sent == 0 and again.not_claimed == 5
    assert len(fake_sinch.requests) == 1


def test_a_permanent_carrier_error_fails_the_messages_with_its_code(
    org, fake_sinch, django_capture_on_commit_callbacks
):
    _b, (group,) = _prepared_blast(org, 3, "Hello", fake_sinch.url, django_capture_on_commit_callbacks)
    fake_sinch.fail_next = [400]
    outcome = carrier_send.batch_send(line_id=group.line_id, message_ids=group.message_ids, segments=group.segments)
    assert outcome.failed == 3 and not outcome.retry_refs
    m = Message.objects.get(pk=group.message_ids[0])
    assert m.status == S.FAILED
    assert m.error_code == "syntax_invalid_parameter_format" and m.error_reason == "fake says 400"


def test_a_transient_error_is_retried_under_the_same_reference(org, fake_sinch, django_capture_on_commit_callbacks):
    # given: the carrier answers 503 once
    _b, (group,) = _prepared_blast(org, 4, "Hello", fake_sinch.url, django_capture_on_commit_callbacks)
    fake_sinch.fail_next = [503]
    outcome = carrier_send.batch_send(line_id=group.line_id, message_ids=group.message_ids, segments=group.segments)
    (ref,) = outcome.retry_refs
    assert set(Message.objects.filter(id__in=group.message_ids).values_list("status", flat=True)) == {S.SENDING}
    # when: the retry asks the carrier first (nothing there) and sends again with the same reference
    resumed = carrier_send.batch_resume(line_id=group.line_id, batch_ref=ref)
    # then
    assert resumed.sent == 4
    assert [r["client_reference"] for r in fake_sinch.requests] == [ref, ref]
    assert len(fake_sinch.batches) == 1


def test_a_timeout_after_the_carrier_accepted_is_recorded_not_resent(
    org, fake_sinch, django_capture_on_commit_callbacks
):
    # given: the carrier accepts, then answers too late for our read timeout
    _b, (group,) = _prepared_blast(
        org, 3, "Hello", fake_sinch.url, django_capture_on_commit_callbacks, read_timeout=0.3
    )
    fake_sinch.hold_seconds = 1.0
    outcome = carrier_send.batch_send(line_id=group.line_id, message_ids=group.message_ids, segments=group.segments)
    (ref,) = outcome.retry_refs
    fake_sinch.hold_seconds = 0
    # when
    resumed = carrier_send.batch_resume(line_id=group.line_id, batch_ref=ref)
    # then: found by client_reference → recorded with the carrier's batch id, not sent again
    assert resumed.sent == 3
    assert len(fake_sinch.batches) == 1 and len(fake_sinch.requests) == 1
    assert set(Message.objects.filter(id__in=group.message_ids).values_list("carrier_batch_id", flat=True)) == {
        fake_sinch.batches[0]["id"]
    }


@pytest.mark.parametrize("carrier_has_it", [True, False])
def test_recovery_of_messages_stuck_in_sending(org, fake_sinch, carrier_has_it, django_capture_on_commit_callbacks):
    # given: a claim whose worker died (claimed, no result recorded)
    _b, (group,) = _prepared_blast(org, 3, "Hello", fake_sinch.url, django_capture_on_commit_callbacks)
    ref = claims.new_batch_ref()
    claims.messages_claim_for_send(message_ids=group.message_ids, batch_ref=ref)
    if carrier_has_it:
        fake_sinch.batches.append({"id": "FBCARRIERHASIT", "client_reference": ref, "to": []})
    # when
    result = carrier_send.sends_recover(lease=timedelta(0))
    # then
    statuses = set(Message.objects.filter(id__in=group.message_ids).values_list("status", flat=True))
    if carrier_has_it:
        assert result.recorded_sent == 3 and statuses == {S.SENT} and result.to_send == []
    else:
        assert statuses == {S.PREPARED}
        assert [sorted(g.message_ids) for g in result.to_send] == [sorted(group.message_ids)]
    assert fake_sinch.requests == []  # recovery itself never sends; the re-enqueued task does


def test_a_fresh_sending_claim_is_left_alone_by_recovery(org, fake_sinch, django_capture_on_commit_callbacks):
    _b, (group,) = _prepared_blast(org, 2, "Hello", fake_sinch.url, django_capture_on_commit_callbacks)
    claims.messages_claim_for_send(message_ids=group.message_ids, batch_ref=claims.new_batch_ref())
    result = carrier_send.sends_recover()
    assert result.recorded_sent == 0 and result.to_send == []
    assert set(Message.objects.filter(id__in=group.message_ids).values_list("status", flat=True)) == {S.SENDING}


def test_pacing_sends_what_the_line_rate_allows_and_defers_the_rest(
    org, fake_sinch, django_capture_on_commit_callbacks
):
    # given: a 2 segments/s line and 10 one-segment messages
    blast, (group,) = _prepared_blast(org, 10, "Hello", fake_sinch.url, django_capture_on_commit_callbacks)
    line = blast.line
    line.rate_per_second = 2
    line.save()
    ratelimit.reset(line_id=line.id)
    # when
    outcome = carrier_send.batch_send(line_id=line.id, message_ids=group.message_ids, segments=group.segments)
    # then: a burst of 2 (one second of rate) now, the 8 others handed back with a wait
    assert outcome.sent == 2 and len(fake_sinch.requests[0]["to"]) == 2
    assert outcome.rest is not None and outcome.rest.message_ids == group.message_ids[2:]
    assert 0 < outcome.rest_delay <= 0.5
    assert Message.objects.filter(id__in=outcome.rest.message_ids, status=S.PREPARED).count() == 8


def test_a_blast_group_waits_for_a_whole_batch_of_the_window_not_the_first_free_unit(
    org, fake_sinch, django_capture_on_commit_callbacks, settings
):
    # given: a 10 segments/s line, the window W = 1 s, 25 one-segment blast messages
    line, group = _paced_blast(
        org, 25, "Hello {first_name}", fake_sinch.url, django_capture_on_commit_callbacks, settings
    )
    assert group.batched
    # when: the first call, then the remainder at once (a tenth of a second's refill is there)
    first = carrier_send.batch_send(
        line_id=line.id, message_ids=group.message_ids, segments=group.segments, batched=True
    )
    time.sleep(0.15)
    again = carrier_send.batch_send(
        line_id=line.id, message_ids=first.rest.message_ids, segments=first.rest.segments, batched=True
    )
    # then: r × W = 10 recipients in one call, and the remainder neither sends the sliver nor re-polls
    # for one unit: it waits for the next whole batch (about W), still a blast group
    assert first.sent == 10 and [len(r["to"]) for r in fake_sinch.requests] == [10]
    assert 0.9 <= first.rest_delay <= 1.0 and first.rest.batched
    assert again.sent == 0 and len(fake_sinch.requests) == 1
    assert 0 < again.rest_delay < 0.9 and again.rest.message_ids == group.message_ids[10:]


def test_a_conversation_group_takes_the_first_free_unit_whatever_the_window(org, fake_sinch, settings):
    # given: a long window and a line whose bucket was just emptied
    settings.SEND_BATCH_WINDOW_SECONDS = 5.0
    line = factories.LineFactory(organization=org)
    _point_line_at(line, fake_sinch.url)
    line.rate_per_second = 10
    line.save()
    ratelimit.reset(line_id=line.id)
    ratelimit.take(line_id=line.id, rate=10, want=50)
    # when: asked how long a one-segment conversation message waits, and a blast's remainder
    conversation = carrier_send._batch_need([1], rate=10, batched=False)
    blast = carrier_send._batch_need([1] * 200, rate=10, batched=True)
    # then: one unit (0.1 s) against a whole window's batch (50 units = 5 s)
    assert conversation == 1 and blast == 50
    assert ratelimit.wait_for(rate=10, need=conversation, left=0) == pytest.approx(0.1)
    assert ratelimit.wait_for(rate=10, need=blast, left=0) == pytest.approx(5.0)
    # a blast batch never splits a message and takes what is left when fewer remain
    assert carrier_send._batch_need([3] * 40, rate=10, batched=True) == 48
    assert carrier_send._batch_need([1] * 7, rate=10, batched=True) == 7


def test_group_for_send_marks_blast_groups_batched_and_never_mixes_in_a_conversation_message():
    rows = [
        (1, 7, 3, False, "same", "+15125550001", 1),  # a blast message without parameters
        (2, 7, None, False, "same", "+15125550002", 1),  # a conversation message, same text
        (3, 7, 3, True, "Hi A", "+15125550003", 1),
    ]
    groups = {tuple(g.message_ids): g.batched for g in grouping.group_for_send(rows)}
    assert groups == {(1,): True, (2,): False, (3,): True}


def test_token_bucket_is_shared_and_refills():
    ratelimit.reset(line_id=987654)
    granted, _ = ratelimit.take(line_id=987654, rate=5, want=10)
    again, wait = ratelimit.take(line_id=987654, rate=5, want=10)
    assert granted == 5 and again == 0 and 0 < wait <= 0.2
    ratelimit.refund(line_id=987654, rate=5, units=3)
    assert ratelimit.take(line_id=987654, rate=5, want=10)[0] == 3
    # a 3-segment message is not split across refills: below min_grant nothing is taken
    ratelimit.reset(line_id=987654)
    ratelimit.take(line_id=987654, rate=5, want=4)
    assert ratelimit.take(line_id=987654, rate=5, want=3, min_grant=3)[0] == 0


def test_conversation_messages_with_the_same_text_share_a_call_only_with_distinct_recipients():
    rows = [
        (1, 7, None, False, "hi", "+15125550001", 1),
        (2, 7, None, False, "hi", "+15125550001", 1),
        (3, 7, None, False, "hi", "+15125550002", 1),
        (4, 7, None, False, "other", "+15125550002", 1),
    ]
    groups = grouping.group_for_send(rows)
    assert sorted(g.message_ids for g in groups) == [[1, 3], [2], [4]]


def test_settings_cache_sees_a_changed_line_rate(org):
    line = factories.LineFactory(organization=org, rate_per_second=1)
    assert cache.line_info(line.id).rate_per_second == 1
    line.rate_per_second = 50
    line.save()
    assert cache.line_info(line.id).rate_per_second == 50


def test_a_paced_remainder_renews_prepared_at_only_when_it_would_go_stale(
    org, fake_sinch, django_capture_on_commit_callbacks
):
    # given: a 2 segments/s line; the first call sends 2 of 10 and hands back the rest
    from messaging import tasks

    blast, (group,) = _prepared_blast(org, 10, "Hello", fake_sinch.url, django_capture_on_commit_callbacks)
    blast.line.rate_per_second = 2
    blast.line.save()
    ratelimit.reset(line_id=blast.line.id)
    outcome = carrier_send.batch_send(line_id=blast.line.id, message_ids=group.message_ids, segments=group.segments)
    assert outcome.rest is not None
    # when: its follow-up is published by a task whose remainder was touched a second ago, then by one
    # whose remainder was touched longer ago than TOUCH_AGE_S
    with CaptureQueriesContext(connection) as fresh:
        tasks._follow_up(blast.line.id, outcome, 0, None, time.time() - 1)
    with CaptureQueriesContext(connection) as stale:
        tasks._follow_up(blast.line.id, outcome, 0, None, time.time() - tasks.TOUCH_AGE_S - 1)
    # then: no statement for the fresh one (it used to rewrite the whole remainder on every call), one
    # UPDATE of prepared_at for the stale one
    assert statements(fresh) == []
    (touch,) = statements(stale)
    assert touch.startswith("UPDATE messaging_message SET prepared_at")


def test_a_blast_on_a_paced_line_starts_with_one_batch_and_chains_its_other_chunks(org, settings):
    # given: a line at 10/s with W = 1 s, 2,500 recipients
    settings.SEND_BATCH_WINDOW_SECONDS = 1.0
    _no_quiet_hours(org)
    blast = _blast(org, "Hi {first_name}", _audience(org, 2500))
    blast.line.rate_per_second = 10
    blast.line.save()
    # when
    ranges = sending._chunk_ranges(blast.id, head=sending.HEAD_BATCHES * ratelimit.batch_units(10))
    first, chains = sending.blast_chunk_plan(ranges)
    # then: a first chunk of one batch (10 recipients), then chunks of 1,000 in at most PREPARE_CHAINS
    # chains, every recipient in exactly one range
    ids = list(blast.recipients.order_by("id").values_list("id", flat=True))
    sizes = [sum(1 for i in ids if lo <= i <= hi) for lo, hi in ranges]
    assert sizes == [10, 1000, 1000, 490] and sum(sizes) == len(ids)
    assert first == ranges[0] and len(chains) == min(sending.PREPARE_CHAINS, 3)
    assert sorted(tuple(r) for chain in chains for r in chain) == ranges[1:]


def test_a_batched_take_waits_a_window_after_the_lines_last_call_started():
    # given: a full bucket (10/s) whose line started a batched carrier call just now
    ratelimit.reset(line_id=987655)
    ratelimit.mark_call(line_id=987655, rate=10)
    # when: another group of the line asks for a batch of 10 with the window as spacing
    spaced = ratelimit.take_detail(line_id=987655, rate=10, want=10, min_grant=10, spacing=1.0)
    unspaced = ratelimit.take_detail(line_id=987655, rate=10, want=1, min_grant=1)
    # then: nothing until a window after that call's start, though the units are there; a conversation
    # message (no spacing) takes its unit at once
    assert spaced.granted == 0 and 0.9 < spaced.wait <= 1.0 and spaced.left >= 9.9
    assert unspaced.granted == 1


def test_a_batched_remainder_is_due_when_the_call_spacing_lets_it_take_so_no_task_comes_back_empty(
    org, fake_sinch, django_capture_on_commit_callbacks, settings
):
    # given: a 10/s line with W = 1 s and 4-segment texts: a batch is two of them (8 units), so the
    # first call leaves 2 units in the bucket and the bucket alone would let the next batch go 0.6 s
    # later; the call spacing holds it to W + slack after this call's start
    import base64
    import json
    from datetime import datetime

    import redis

    from messaging import tasks
    from tests.worker import broker_is_redis, purge_queues

    if not broker_is_redis():
        pytest.skip("reads the published task from the Redis broker's list")
    purge_queues()
    body = "Hello {first_name}! " + "Our spring sale starts today, every item is marked down. " * 8
    line, group = _paced_blast(org, 6, body, fake_sinch.url, django_capture_on_commit_callbacks, settings)
    assert set(group.segments) == {4}
    first = carrier_send.batch_send(
        line_id=line.id, message_ids=group.message_ids, segments=group.segments, batched=True
    )
    assert first.sent == 2
    # when: the remainder is published as the send task does it, and runs when its countdown is up
    tasks._follow_up(line.id, first, 0, None, time.time())
    (raw,) = redis.Redis.from_url(settings.CELERY_BROKER_URL).lrange("send", 0, -1)
    message = json.loads(raw)
    wait = datetime.fromisoformat(message["headers"]["eta"]).timestamp() - time.time()
    time.sleep(max(0.0, wait))
    args = json.loads(base64.b64decode(message["body"]))[0]
    again = carrier_send.batch_send(line_id=args[0], message_ids=args[1], segments=args[2], batched=args[3])
    purge_queues()
    # then: it sends the next batch (it used to come back when the bucket had the units, find the
    # spacing closed, send nothing and be published again: an empty task per carrier call)
    assert again.sent == 2, (wait, again.rest_delay)
    assert 0.8 <= wait <= 1.1
    assert [len(r["to"]) for r in fake_sinch.requests] == [2, 2]


@pytest.mark.django_db(transaction=True)
def test_a_paced_carrier_call_is_two_statements_and_no_transaction_around_them(
    org, fake_sinch, django_capture_on_commit_callbacks, settings
):
    # given: a blast on a 10/s line (W = 1 s), the worker's connection in autocommit as in a real worker
    line, group = _paced_blast(
        org, 30, "Hello {first_name}", fake_sinch.url, django_capture_on_commit_callbacks, settings
    )
    cache.line_info(line.id)  # warm the settings cache as a running worker has it
    cache.account_info(line.carrier_account_id)
    # when: one paced call of 10
    with CaptureQueriesContext(connection) as ctx:
        outcome = carrier_send.batch_send(
            line_id=line.id, message_ids=group.message_ids, segments=group.segments, batched=True
        )
    # then: the claim and the status statement, each committing by itself: no BEGIN/COMMIT pair around
    # the status statement (it was two more round trips on each of a paced line's ~1 call per second)
    assert outcome.sent == 10
    kinds = [" ".join(q["sql"].split())[:40] for q in ctx.captured_queries]
    assert len(kinds) == 2, kinds
    assert "FOR UPDATE SKIP LOCKED" in ctx.captured_queries[0]["sql"]
    assert "UPDATE messaging_message m SET" in ctx.captured_queries[1]["sql"]


def test_a_paced_carrier_call_reads_the_settings_generation_once(
    org, fake_sinch, django_capture_on_commit_callbacks, settings, monkeypatch
):
    # given: a blast on a 10/s line, the settings cache warm as in a running worker
    import redis.connection

    line, group = _paced_blast(
        org, 30, "Hello {first_name}", fake_sinch.url, django_capture_on_commit_callbacks, settings
    )
    first = carrier_send.batch_send(  # the process's first call opens its Redis connections
        line_id=line.id, message_ids=group.message_ids, segments=group.segments, batched=True
    )
    ratelimit.reset(line_id=line.id)  # the next batch may go at once
    time.sleep(0.1)  # a later task (longer than cache.GENERATION_REUSE_S): the generation is read again
    sent: list[bytes] = []
    original = redis.connection.AbstractConnection.send_packed_command

    def recording(self, command, check_health=True):
        sent.append(command if isinstance(command, bytes | bytearray) else b"".join(command))
        return original(self, command, check_health)

    # when: one paced call (Redis round trips recorded at redis-py's socket write)
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", recording)
    with django_capture_on_commit_callbacks(execute=True):
        outcome = carrier_send.batch_send(
            line_id=line.id, message_ids=first.rest.message_ids, segments=first.rest.segments, batched=True
        )
    monkeypatch.undo()
    # then: the line and its carrier account are looked up under one read of the generation (it was one
    # GET per lookup), and the call's Redis round trips are pinned: the bucket take, the breaker check,
    # the call's start mark, the breaker success, the per-line counter, the early-report look-up and
    # the call's answer mark
    assert outcome.sent == 10
    assert sum(b"settings-gen" in c for c in sent) == 1, sent
    assert len(sent) == 8, [c[:60] for c in sent]


def test_the_next_batched_call_waits_a_window_after_a_slow_call_was_answered(
    org, fake_sinch, django_capture_on_commit_callbacks, settings
):
    # given: a 10/s line (W = 1 s) whose carrier takes 0.3 s to answer a call, longer than the 50 ms of
    # slack the call spacing adds to W from the call's start
    line, group = _paced_blast(
        org, 20, "Hello {first_name}", fake_sinch.url, django_capture_on_commit_callbacks, settings
    )
    fake_sinch.hold_seconds = 0.3
    first = carrier_send.batch_send(
        line_id=line.id, message_ids=group.message_ids, segments=group.segments, batched=True
    )
    returned = time.time()  # after the answer (and the status statement)
    assert first.sent == 10
    # when: the remainder tries again every 20 ms until it is let through
    while True:
        started = time.time()
        again = carrier_send.batch_send(
            line_id=line.id, message_ids=first.rest.message_ids, segments=first.rest.segments, batched=True
        )
        if again.sent:
            break
        assert started - returned < 3
        time.sleep(0.02)
    # then: the second call started a window after the first was answered (the carrier stamped the
    # first before it answered), not W + slack after the first started: 0.75 s after that answer
    # before, when the carrier saw the two batches 20 in one second
    assert again.sent == 10
    assert started - returned >= 0.95, started - returned
