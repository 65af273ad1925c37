"""The sweeper's passes in-process (docs/recovery.md): pending work found from the database alone, each
re-kick under a compare-and-set, and the 40 s send lease that retries renew and extend. Real worker
processes and a flushed broker: test_recovery_worker.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from backfill.models import BackfillRun, RunKind, RunState
from backfill.services import runs_rekick
from messaging.models import Blast, Message
from messaging.services import carrier_send, claims, prepare, recovery, sending
from tests import factories
from tests.messaging.test_prepare import _audience, _blast, _no_quiet_hours
from tests.messaging.test_send import _point_line_at, _prepared_blast
from tests.worker import FakeSinch


@pytest.fixture
def fake_sinch():
    with FakeSinch() as fake:
        yield fake


def _age(table: str, column: str, seconds: float, ids: list[int]) -> None:
    """Move a lease back in time (the clock of a test cannot wait out a real lease)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {column} = {column} - make_interval(secs => %s) WHERE id = ANY(%s)",  # noqa: S608 — table names and fragments are constants of the test; values bound
            [seconds, ids],
        )


def _launched_blast_with_lost_chunks(org, n, django_capture_on_commit_callbacks):
    _no_quiet_hours(org)
    blast = _blast(org, "Hello {first_name}", _audience(org, n))
    with django_capture_on_commit_callbacks(execute=False):  # the chunk tasks are never published: lost
        sending.blast_launch(organization=org, blast_id=blast.id)
    return blast


def _prepare(chunks) -> None:
    for c in chunks:
        prepare.blast_prepare_chunk(
            blast_id=c.blast_id, first_recipient_id=c.first_recipient_id, last_recipient_id=c.last_recipient_id
        )


def test_a_sending_blast_whose_chunk_tasks_were_lost_is_rekicked_from_the_database(
    org, django_capture_on_commit_callbacks
):
    # given: a launched 2,500-recipient blast whose three chunk tasks never reached a worker
    blast = _launched_blast_with_lost_chunks(org, 2500, django_capture_on_commit_callbacks)
    # when: the sweeper passes within the chunk lease, then after it
    assert recovery.blasts_rekick_chunks() == []
    _age("messaging_blast", "prepare_kicked_at", 21, [blast.id])
    chunks = recovery.blasts_rekick_chunks()
    # then: chunks covering every recipient, once: a second pass right after re-kicks nothing
    assert [c.blast_id for c in chunks] == [blast.id] * 3
    assert recovery.blasts_rekick_chunks() == []
    _prepare(chunks)
    assert Message.objects.filter(blast=blast).count() == 2500
    # and once every recipient has its message, the blast leaves the sweep for good
    recovery.blasts_rekick_chunks()
    assert Blast.objects.get(pk=blast.id).prepare_kicked_at is None


def test_only_the_missing_chunk_is_rekicked_and_a_duplicate_prepares_nothing_twice(
    org, django_capture_on_commit_callbacks
):
    blast = _launched_blast_with_lost_chunks(org, 1500, django_capture_on_commit_callbacks)
    (lo, hi), _lost = sending._chunk_ranges(blast.id)
    prepare.blast_prepare_chunk(blast_id=blast.id, first_recipient_id=lo, last_recipient_id=hi)
    recovery.blasts_rekick_chunks()  # progress seen: 1000 messages; the lease starts again
    _age("messaging_blast", "prepare_kicked_at", 21, [blast.id])
    # when
    (chunk,) = recovery.blasts_rekick_chunks()
    # then: the 500 recipients without a message, and running that chunk twice makes them once
    _prepare([chunk, chunk])
    assert Message.objects.filter(blast=blast).count() == 1500
    assert len(set(Message.objects.filter(blast=blast).values_list("contact_id", flat=True))) == 1500


def test_a_blast_making_progress_is_not_rekicked(org, django_capture_on_commit_callbacks):
    blast = _launched_blast_with_lost_chunks(org, 1500, django_capture_on_commit_callbacks)
    (lo, hi), _rest = sending._chunk_ranges(blast.id)
    _age("messaging_blast", "prepare_kicked_at", 21, [blast.id])
    prepare.blast_prepare_chunk(blast_id=blast.id, first_recipient_id=lo, last_recipient_id=hi)
    # when: the lease has run out but the message count moved since the last pass
    assert recovery.blasts_rekick_chunks() == []
    # then: the lease moved on with the progress
    assert Blast.objects.get(pk=blast.id).prepare_seen == 1000


def test_a_live_retry_renews_its_lease_and_recovery_leaves_it_alone(
    org, fake_sinch, django_capture_on_commit_callbacks
):
    _b, (group,) = _prepared_blast(org, 3, "Hello", fake_sinch.url, django_capture_on_commit_callbacks)
    ref = claims.new_batch_ref()
    claims.messages_claim_for_send(message_ids=group.message_ids, batch_ref=ref)
    _age("messaging_message", "sending_at", 35, group.message_ids)
    # when: the owner renews (a retry starting) just before the lease would run out
    with transaction.atomic():
        assert len(claims.messages_hold_for_resume(batch_ref=ref)) == 3
    _age("messaging_message", "sending_at", 10, group.message_ids)
    result = carrier_send.sends_recover()
    # then
    assert result.recorded_sent == 0 and result.to_send == []
    assert set(Message.objects.filter(id__in=group.message_ids).values_list("send_batch_ref", flat=True)) == {ref}


def test_a_scheduled_retry_extends_the_lease_by_its_wait(org, fake_sinch, django_capture_on_commit_callbacks):
    _b, (group,) = _prepared_blast(org, 2, "Hello", fake_sinch.url, django_capture_on_commit_callbacks)
    ref = claims.new_batch_ref()
    claims.messages_claim_for_send(message_ids=group.message_ids, batch_ref=ref)
    assert claims.messages_extend_lease(batch_ref=ref, seconds=60) == 2
    _age("messaging_message", "sending_at", 50, group.message_ids)  # 50 s later: past a plain lease
    assert carrier_send.sends_recover().to_send == []


def test_lost_send_and_prepare_tasks_are_rekicked_once_per_lease(org, fake_sinch, django_capture_on_commit_callbacks):
    # given: prepared blast messages whose send task was lost, and a queued conversation message whose
    # prepare task was lost
    _b, (group,) = _prepared_blast(org, 3, "Hello", fake_sinch.url, django_capture_on_commit_callbacks)
    conv = factories.ConversationFactory(organization=org)
    with django_capture_on_commit_callbacks(execute=False):
        single = sending.message_send(organization=org, conversation_id=conv.id, body="Hi")
    assert carrier_send.sends_recover().to_send == []  # inside the leases: nothing yet
    _age("messaging_message", "prepared_at", 41, group.message_ids)
    _age("messaging_message", "created_at", 31, [single.id])
    # when
    first = carrier_send.sends_recover()
    second = carrier_send.sends_recover()
    # then: woken once each; the next pass waits for the lease again
    assert [sorted(g.message_ids) for g in first.to_send] == [sorted(group.message_ids)]
    assert first.to_prepare == [single.id]
    assert second.to_send == [] and second.to_prepare == []


def test_backfill_runs_whose_task_was_lost_are_rekicked(org):
    now = timezone.now()
    line = factories.LineFactory(organization=org)
    lost = BackfillRun.objects.create(organization=org, line=line)
    dead = BackfillRun.objects.create(
        organization=org, line=line, state=RunState.RUNNING, heartbeat_at=now - timedelta(minutes=6)
    )
    BackfillRun.objects.create(organization=org, line=line, state=RunState.RUNNING, heartbeat_at=now)
    BackfillRun.objects.create(organization=org, line=line, kind=RunKind.RECONCILE)
    BackfillRun.objects.filter(pk=lost.pk).update(created_at=now - timedelta(minutes=2))
    # when / then: the pending run once per period, the dead runner's run, nothing else
    assert runs_rekick(now=now) == sorted([lost.id, dead.id])
    assert runs_rekick(now=now) == [dead.id]


def test_the_beat_task_enqueues_what_the_sweep_found(org, django_capture_on_commit_callbacks, settings):
    # CELERY_TASK_ALWAYS_EAGER is off: the task publishes to the test broker; the rows are what count
    from messaging.tasks import release_stuck_sends

    blast = _launched_blast_with_lost_chunks(org, 10, django_capture_on_commit_callbacks)
    _point_line_at(blast.line, "http://127.0.0.1:9")
    _age("messaging_blast", "prepare_kicked_at", 21, [blast.id])
    assert release_stuck_sends() == 1
