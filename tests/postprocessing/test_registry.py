import pytest

from postprocessing import registry
from postprocessing.events import EventType, UnknownEventType
from postprocessing.models import Event
from postprocessing.services import events_record
from tests.factories import MessageFactory


def test_registering_for_an_unknown_event_type_raises():
    with pytest.raises(UnknownEventType):
        registry.processor("message.teleported", name="nope")(lambda events: None)
    assert "nope" not in {p.name for p in registry.all_processors()}


def test_asking_for_processors_of_an_unknown_type_raises():
    with pytest.raises(UnknownEventType):
        registry.processors_for("message.teleported")


def test_decorator_registers_for_each_type_in_order(temp_processor):
    def fn(events):
        return None

    temp_processor(EventType.LINK_CLICKED, EventType.MESSAGE_RECEIVED, name="t_reg", fn=fn)
    assert registry.processor_named("t_reg").fn is fn
    assert registry.processor_named("t_reg").event_types == {"link.clicked", "message.received"}
    assert [p.name for p in registry.processors_for(EventType.LINK_CLICKED)][-1] == "t_reg"
    with pytest.raises(registry.DuplicateProcessor):
        registry.processor(EventType.LINK_CLICKED, name="t_reg")(fn)


def test_release_processors_are_registered_in_lock_order():
    names = [p.name for p in registry.all_processors()]
    ours = ["conversation_last_message", "link_attribution", "optout_hygiene", "blast_counters"]
    assert [n for n in names if n in ours] == ours
    assert "blast_counters" in [p.name for p in registry.processors_for(EventType.MESSAGE_DELIVERED)]
    assert "blast_counters" not in [p.name for p in registry.processors_for(EventType.MESSAGE_QUEUED)]


def test_events_record_refuses_unknown_type_and_writes_nothing(db):
    with pytest.raises(UnknownEventType):
        events_record(type="link.teleported", message_ids=[1])
    assert not Event.objects.exists()


def test_events_record_writes_one_row_per_message_with_payload(db):
    m1, m2 = MessageFactory(), MessageFactory()
    payload = {"link_id": 7, "message_id": m1.id, "blast_id": None, "contact_id": m1.contact_id, "click_id": 9}
    assert events_record(type=EventType.LINK_CLICKED, message_ids=[m2.id, m1.id], payload=payload) == 2
    assert events_record(type=EventType.LINK_CLICKED, payload={"link_id": 8}) == 1
    rows = list(Event.objects.values_list("type", "message_id", "payload", "state"))
    assert rows == [
        ("link.clicked", min(m1.id, m2.id), payload, "pending"),
        ("link.clicked", max(m1.id, m2.id), payload, "pending"),
        ("link.clicked", None, {"link_id": 8}, "pending"),
    ]


def test_rank_places_a_later_registration_before_unranked_ones(temp_processor):
    # Apps register from their AppConfig.ready in INSTALLED_APPS order; rank fixes the batch order anyway.
    def fn(events):
        return None

    temp_processor(EventType.LINK_CLICKED, name="t_late_unranked", fn=fn)
    registry.processor(EventType.LINK_CLICKED, name="t_late_ranked", rank=5)(fn)
    try:
        names = [p.name for p in registry.processors_for(EventType.LINK_CLICKED)]
        assert names.index("t_late_ranked") < names.index("t_late_unranked")
        order = [p.name for p in registry.all_processors()]
        assert order.index("t_late_ranked") < order.index("conversation_last_message")
    finally:
        registry.unregister(["t_late_ranked"])
