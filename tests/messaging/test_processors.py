"""Messaging's post-processing processors (messaging/processors/): conversation preview, blast
counters, opt-out hygiene, through the real drain."""

from datetime import timedelta

from django.utils import timezone

from messaging.models import BlastStatus, Message, NumberFlag, NumberFlagReview
from messaging.status import MessageStatus as S
from postprocessing.services import events_drain
from tests.factories import ConversationFactory, MessageFactory
from tests.messages import move, queue, redrain_all


# ------------------------------------------------------------------------------------------ conversation
def test_conversation_gets_the_newest_message_that_went_out_and_its_rendered_text(db):
    from messaging.services.status import events_record_for_new_messages

    conv = ConversationFactory()
    old = MessageFactory(conversation=conv, body="old one " + "x" * 300, direction="in", status=S.RECEIVED)
    new = MessageFactory(conversation=conv, body="Hi {first_name}", rendered_body="")
    Message.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(minutes=5))
    events_record_for_new_messages(message_ids=[old.id], status=S.RECEIVED)
    queue([new])
    events_drain()
    conv.refresh_from_db()
    old.refresh_from_db()
    # the queued message has not gone out: the received one is the last message
    assert conv.last_message_at == old.received_at
    assert conv.last_message_preview == ("old one " + "x" * 300)[:160]
    # once sent, the text the phone got (rendered at prepare time), at the time it went out
    Message.objects.filter(pk=new.pk).update(rendered_body="Hi Ann, our sale", status=S.SENDING)
    move([new], S.SENT)
    events_drain()
    conv.refresh_from_db()
    new.refresh_from_db()
    assert (conv.last_message_at, conv.last_message_preview) == (new.sent_at, "Hi Ann, our sale")


def test_conversation_is_never_moved_backwards_and_redrain_is_idempotent(db):
    conv = ConversationFactory()
    newest = MessageFactory(conversation=conv, body="newest", status=S.RECEIVED, direction="in")
    queue_time = newest.created_at
    older = MessageFactory(conversation=conv, body="older but processed later")
    Message.objects.filter(pk=older.pk).update(
        created_at=queue_time - timedelta(hours=1), status=S.SENT, sent_at=queue_time - timedelta(hours=1)
    )
    # newest processed first, the older message's event afterwards (out of order across batches)
    from messaging.services.status import events_record_for_new_messages

    events_record_for_new_messages(message_ids=[newest.id], status=S.RECEIVED)
    events_drain()
    events_record_for_new_messages(message_ids=[older.id], status=S.SENT)
    events_drain()
    conv.refresh_from_db()
    assert (conv.last_message_at, conv.last_message_preview) == (queue_time, "newest")
    redrain_all()
    conv.refresh_from_db()
    assert (conv.last_message_at, conv.last_message_preview) == (queue_time, "newest")


# ------------------------------------------------------------------------------------------------- blast
def _counts(blast):
    blast.refresh_from_db()
    return (
        blast.sent_count,
        blast.delivered_count,
        blast.failed_count,
        blast.undelivered_count,
        blast.opted_out_count,
        blast.status,
    )


def test_blast_counters_come_from_carrier_results_not_queueing(blast_with_messages):
    blast, msgs = blast_with_messages(5)
    queue(msgs)
    events_drain()
    assert _counts(blast) == (0, 0, 0, 0, 0, BlastStatus.SENDING)
    move(msgs, S.PREPARED, S.SENDING, S.SENT)
    events_drain()
    assert _counts(blast) == (5, 0, 0, 0, 0, BlastStatus.SENDING)
    move(msgs[:3], S.DELIVERED)
    move(msgs[3:4], S.UNDELIVERED)
    events_drain()
    assert _counts(blast) == (5, 3, 0, 1, 0, BlastStatus.SENDING)
    assert blast.delivery_rate == 3 / 5 and blast.completed_at is None


def test_blast_completes_only_when_every_message_is_final(blast_with_messages):
    blast, msgs = blast_with_messages(4)
    move(msgs, S.PREPARED, S.SENDING, S.SENT)
    move(msgs[:3], S.DELIVERED, at=timezone.now() - timedelta(seconds=60))
    events_drain()
    assert _counts(blast)[-1] == BlastStatus.SENDING  # one still "sent"
    last_report = timezone.now() - timedelta(seconds=30)
    move(msgs[3:], S.FAILED, at=last_report)
    events_drain()
    assert _counts(blast) == (3, 3, 1, 0, 0, BlastStatus.COMPLETED)
    assert blast.completed_at == last_report and blast.delivery_rate == 1.0


def test_blast_waits_for_recipients_whose_messages_are_not_created_yet(blast_with_messages):
    blast, msgs = blast_with_messages(3)
    # a fourth recipient whose prepare chunk has not run: all existing messages final is not enough
    from messaging.models import BlastRecipient
    from tests.factories import ContactFactory

    BlastRecipient.objects.create(blast=blast, contact=ContactFactory(organization=blast.organization))
    move(msgs, S.PREPARED, S.SENDING, S.DELIVERED)
    events_drain()
    assert _counts(blast) == (3, 3, 0, 0, 0, BlastStatus.SENDING)


def test_blast_counters_survive_redelivered_reports_and_redrain(blast_with_messages):
    blast, msgs = blast_with_messages(3, status=S.SENT)
    move(msgs, S.DELIVERED)
    move(msgs, S.DELIVERED)  # a carrier redelivering its reports: no-op by the state machine
    events_drain()
    first = _counts(blast)
    redrain_all()
    redrain_all()
    assert _counts(blast) == first == (3, 3, 0, 0, 0, BlastStatus.COMPLETED)


def test_blast_opted_out_counter_counts_blocked_opt_outs(blast_with_messages):
    blast, msgs = blast_with_messages(3)
    move(msgs[:1], S.BLOCKED, error_code="opted_out")
    move(msgs[1:2], S.BLOCKED, error_code="invalid_number")
    events_drain()
    assert _counts(blast)[4] == 1


def test_canceled_blast_is_not_completed(blast_with_messages):
    blast, msgs = blast_with_messages(2, status=S.SENT)
    type(blast).objects.filter(pk=blast.pk).update(status=BlastStatus.CANCELED)
    move(msgs, S.DELIVERED)
    events_drain()
    assert _counts(blast) == (2, 2, 0, 0, 0, BlastStatus.CANCELED)


# ------------------------------------------------------------------------------------------------ opt-out
def test_deleted_and_opted_out_reports_are_flagged_for_review_not_opted_out(blast_with_messages):
    from messaging.models import OptOut

    blast, msgs = blast_with_messages(4, status=S.SENT)
    move(msgs[:1], S.UNDELIVERED, carrier_status="Deleted")
    move(msgs[1:2], S.FAILED, carrier_status="Failed", error_code="257")
    move(msgs[2:3], S.UNDELIVERED, carrier_status="Expired", error_code="406")
    move(msgs[3:], S.DELIVERED)
    events_drain()
    flags = {f.phone_number: (f.kind, f.review, f.message_id) for f in NumberFlag.objects.all()}
    assert flags == {
        msgs[0].contact.phone_number: ("deleted", "pending", msgs[0].id),
        msgs[1].contact.phone_number: ("opted_out", "pending", msgs[1].id),
    }
    assert not OptOut.objects.exists()
    before = list(NumberFlag.objects.order_by("id").values())
    redrain_all()
    assert list(NumberFlag.objects.order_by("id").values()) == before


def test_dismissed_flag_reopens_only_on_a_newer_report(blast_with_messages, org):
    from messaging.services.number_flags import numberflags_review

    blast, msgs = blast_with_messages(1, status=S.SENT)
    move(msgs, S.UNDELIVERED, carrier_status="Deleted", at=timezone.now() - timedelta(hours=1))
    events_drain()
    flag = NumberFlag.objects.get()
    numberflags_review(flag_ids=[flag.id], opt_out=False)
    redrain_all()  # the same old report again: stays dismissed
    flag.refresh_from_db()
    assert flag.review == NumberFlagReview.DISMISSED
    # a new message to the same number, reported Deleted after the dismissal
    again = MessageFactory(conversation=msgs[0].conversation, status=S.SENT)
    move([again], S.UNDELIVERED, carrier_status="Deleted")
    events_drain()
    flag.refresh_from_db()
    assert flag.review == NumberFlagReview.PENDING and flag.message_id == again.id


def test_opting_a_flagged_number_out_goes_through_messaging(blast_with_messages):
    from messaging.models import OptOut
    from messaging.services.number_flags import numberflags_review

    blast, msgs = blast_with_messages(1, status=S.SENT)
    move(msgs, S.UNDELIVERED, carrier_status="Deleted")
    events_drain()
    flag = NumberFlag.objects.get()
    assert numberflags_review(flag_ids=[flag.id], opt_out=True) == 1
    opt = OptOut.objects.get()
    assert (opt.phone_number, opt.source) == (msgs[0].contact.phone_number, "carrier")
    flag.refresh_from_db()
    assert flag.review == NumberFlagReview.OPTED_OUT
