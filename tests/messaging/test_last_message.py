"""Issue 14.3: scheduled is not sent. Only a message that went out (or came in) moves the conversation's
last message; a send_at without a zone is read in the organization's zone.

Real rows, the real prepare step, the real status path and the real post-processing drain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.utils import timezone

from messaging.models import BlastRecipient, Conversation, Message
from messaging.services import prepare, sending
from messaging.services.recompute import derived_recompute
from messaging.services.status import StatusUpdate, messages_apply_statuses
from messaging.status import MessageStatus as S
from postprocessing.services import events_drain
from tests import factories


def _send(message_id, *, at=None):
    """The carrier took it: sending → sent through the one status path."""
    messages_apply_statuses(updates=[StatusUpdate(message_id, S.SENDING, at=at)])
    messages_apply_statuses(updates=[StatusUpdate(message_id, S.SENT, at=at)])


def _conv(conv):
    conv.refresh_from_db()
    return conv.last_message_at, conv.last_message_preview


def test_a_message_scheduled_for_later_is_not_the_last_message_until_it_is_sent(
    api, org, django_capture_on_commit_callbacks
):
    conv = factories.ConversationFactory(organization=org)
    incoming = factories.MessageFactory(conversation=conv, direction="in", status=S.RECEIVED, body="Are you open?")
    Message.objects.filter(pk=incoming.pk).update(received_at=timezone.now() - timedelta(minutes=1))
    from messaging.services.status import events_record_for_new_messages

    events_record_for_new_messages(message_ids=[incoming.id], status=S.RECEIVED)
    events_drain()
    before = _conv(conv)
    assert before[1] == "Are you open?"

    later = (timezone.now() + timedelta(days=1)).isoformat()
    with django_capture_on_commit_callbacks(execute=False):
        r = api.post(f"/api/v1/conversations/{conv.id}/messages", {"body": "See you tomorrow", "send_at": later})
    assert r.status_code == 202, r.content
    prepare.messages_prepare(message_ids=[r.json()["id"]])
    events_drain()
    scheduled = Message.objects.get(pk=r.json()["id"])
    assert scheduled.status == S.SCHEDULED
    assert _conv(conv) == before  # nothing went out yet

    # it goes out: now it is the last message, at the time it went out
    sent_at = timezone.now() + timedelta(seconds=5)
    Message.objects.filter(pk=scheduled.pk).update(status=S.PREPARED)
    _send(scheduled.id, at=sent_at)
    events_drain()
    assert _conv(conv) == (sent_at, "See you tomorrow")
    # the repair tool agrees with the processor
    Conversation.objects.filter(pk=conv.pk).update(last_message_at=None, last_message_preview="")
    derived_recompute(organization_id=org.id)
    assert _conv(conv) == (sent_at, "See you tomorrow")


def test_blast_messages_deferred_by_quiet_hours_do_not_move_the_conversation(org, django_capture_on_commit_callbacks):
    org.quiet_hours_enabled = True
    now_local = timezone.localtime(timezone.now(), timezone=__import__("zoneinfo").ZoneInfo("America/Chicago"))
    org.quiet_hours_start = (now_local - timedelta(hours=1)).time().replace(microsecond=0)
    org.quiet_hours_end = (now_local + timedelta(hours=1)).time().replace(microsecond=0)
    org.save()
    line = factories.LineFactory(organization=org)
    contact = factories.ContactFactory(organization=org)
    conv = factories.ConversationFactory(organization=org, line=line, contact=contact)
    blast = factories.BlastFactory(organization=org, line=line, body="Sale {first_name}")
    BlastRecipient.objects.create(blast=blast, contact=contact)
    with django_capture_on_commit_callbacks(execute=False):
        sending.blast_launch(organization=org, blast_id=blast.id)
    ((lo, hi),) = sending._chunk_ranges(blast.id)
    prepare.blast_prepare_chunk(blast_id=blast.id, first_recipient_id=lo, last_recipient_id=hi)
    assert Message.objects.get(blast=blast).status == S.SCHEDULED
    events_drain()
    assert _conv(conv) == (None, "")


def test_a_send_at_without_a_zone_is_read_in_the_organizations_zone(api, org, django_capture_on_commit_callbacks):
    org.time_zone = "America/New_York"
    org.save()
    conv = factories.ConversationFactory(organization=org)
    with django_capture_on_commit_callbacks(execute=False):
        r = api.post(f"/api/v1/conversations/{conv.id}/messages", {"body": "Hi", "send_at": "2031-01-15T09:00:00"})
    assert r.status_code == 202, r.content
    assert Message.objects.get(pk=r.json()["id"]).send_at == datetime(2031, 1, 15, 14, 0, tzinfo=UTC)
    # with an offset: taken as given
    with django_capture_on_commit_callbacks(execute=False):
        r = api.post(
            "/api/v1/messages",
            {"line": conv.line_id, "to": conv.contact.phone_number, "body": "Hi", "send_at": "2031-01-15T09:00:00Z"},
        )
    assert Message.objects.get(pk=r.json()["id"]).send_at == datetime(2031, 1, 15, 9, 0, tzinfo=UTC)


def test_a_local_time_that_does_not_exist_is_refused_naming_send_at(api, org):
    org.time_zone = "America/New_York"
    org.save()
    conv = factories.ConversationFactory(organization=org)
    count = Message.objects.count()
    # 02:30 on the morning clocks jump from 02:00 to 03:00
    r = api.post(f"/api/v1/conversations/{conv.id}/messages", {"body": "Hi", "send_at": "2031-03-09T02:30:00"})
    assert r.status_code == 400 and "send_at" in r.json()["error"]["fields"]
    assert Message.objects.count() == count


def test_a_blast_send_at_without_a_zone_is_read_in_the_organizations_zone(api, org):
    org.time_zone = "Asia/Tokyo"
    org.save()
    line = factories.LineFactory(organization=org)
    contact = factories.ContactFactory(organization=org)
    r = api.post(
        "/api/v1/blasts",
        {"line": line.id, "body": "Hi", "send_at": "2031-01-15T09:00:00", "audience": {"contact_ids": [contact.id]}},
        format="json",
    )
    assert r.status_code == 201, r.content
    assert datetime.fromisoformat(r.json()["send_at"]) == datetime(2031, 1, 15, 0, 0, tzinfo=UTC)
