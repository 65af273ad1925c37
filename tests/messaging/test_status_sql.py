from django.utils import timezone

from messaging.models import Message
from messaging.services.status import StatusUpdate, message_set_status, messages_apply_statuses
from messaging.status import MessageStatus as S
from messaging.status import can_transition
from postprocessing.events import STATUS_EVENTS
from postprocessing.models import Event
from tests.factories import ConversationFactory, MessageFactory


def test_forward_moves_apply_and_emit_one_event_each(db):
    # given
    m = MessageFactory(status=S.SENT)
    # when
    changed = messages_apply_statuses(updates=[StatusUpdate(m.id, S.DELIVERED, carrier_status="Delivered")])
    # then
    m.refresh_from_db()
    assert changed == {m.id: S.DELIVERED}
    assert m.status == S.DELIVERED and m.delivered_at is not None and m.carrier_status == "Delivered"
    assert list(Event.objects.values_list("type", "message_id")) == [("message.delivered", m.id)]


def test_late_sent_never_overwrites_delivered_and_emits_nothing(db):
    m = MessageFactory(status=S.DELIVERED)
    assert messages_apply_statuses(updates=[StatusUpdate(m.id, S.SENT)]) == {}
    m.refresh_from_db()
    assert m.status == S.DELIVERED
    assert not Event.objects.exists()


def test_duplicates_in_one_call_keep_the_furthest(db):
    m = MessageFactory(status=S.SENDING)
    changed = messages_apply_statuses(
        updates=[StatusUpdate(m.id, S.DELIVERED), StatusUpdate(m.id, S.SENT), StatusUpdate(m.id, S.DELIVERED)]
    )
    assert changed == {m.id: S.DELIVERED}
    assert Event.objects.count() == 1


def test_batch_id_is_filled_only_when_missing(db):
    m = MessageFactory(status=S.SENDING)
    messages_apply_statuses(updates=[StatusUpdate(m.id, S.SENT, carrier_batch_id="B1", at=timezone.now())])
    messages_apply_statuses(updates=[StatusUpdate(m.id, S.DELIVERED, carrier_batch_id="B2")])
    m.refresh_from_db()
    assert m.carrier_batch_id == "B1"


def test_strict_single_update_raises_on_illegal_move(db):
    import pytest

    from messaging.status import IllegalTransition

    m = MessageFactory(status=S.DELIVERED)
    with pytest.raises(IllegalTransition):
        message_set_status(message_id=m.id, status=S.SENDING, strict=True)
    assert Message.objects.get(pk=m.pk).status == S.DELIVERED


def test_the_sql_guard_agrees_with_the_table_on_all_144_pairs(db):
    """One message per (from, to) pair, all 144 moves in one set-based call: exactly the table's moves
    happen, each with its one outbox event; every other row is untouched and emits nothing."""
    conv = ConversationFactory()
    pairs = [(src, dst) for src in S.values for dst in S.values]
    assert len(pairs) == 144
    messages = Message.objects.bulk_create(
        Message(
            organization=conv.organization,
            line=conv.line,
            conversation=conv,
            contact=conv.contact,
            direction="out",
            body=f"{src}>{dst}",
            status=src,
        )
        for src, dst in pairs
    )
    ids = {m.pk: pair for m, pair in zip(messages, pairs, strict=True)}
    changed = messages_apply_statuses(updates=[StatusUpdate(mid, dst) for mid, (_, dst) in ids.items()])
    now = dict(Message.objects.filter(pk__in=ids).values_list("id", "status"))
    events = dict(Event.objects.filter(message_id__in=ids).values_list("message_id", "type"))
    wrong = []
    for mid, (src, dst) in ids.items():
        allowed = can_transition(src, dst)
        expected = dst if allowed else src
        expected_event = STATUS_EVENTS.get(dst) if allowed else None
        if now[mid] != expected or (mid in changed) != allowed or events.get(mid) != expected_event:
            wrong.append((src, dst, now[mid], mid in changed, events.get(mid)))
    assert wrong == []
    assert len(changed) == sum(can_transition(src, dst) for src, dst in pairs)
