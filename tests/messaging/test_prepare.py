"""Queue-time preparation: rendering, opt-out exclusion, quiet hours, templates/parameters, query counts."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging.models import Blast, BlastRecipient, BlastStatus, Contact, Conversation, Message, OptOut
from messaging.services import prepare, quiet_hours, sending
from messaging.services.templates import carrier_template, fill, render
from messaging.status import MessageStatus as S
from postprocessing.models import Event
from tests import factories


def statements(ctx) -> list[str]:
    """Captured SQL minus the SAVEPOINT bookkeeping of the test's wrapping transaction."""
    return [q["sql"] for q in ctx.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]


def _audience(org, n, **kwargs):
    contacts = [
        Contact(
            organization=org,
            phone_number=factories.next_number("737"),
            first_name=f"F{i}",
            last_name="L",
            custom_fields={"city": f"City{i}"},
            **kwargs,
        )
        for i in range(n)
    ]
    return Contact.objects.bulk_create(contacts)


def _blast(org, body, contacts, **kwargs):
    line = factories.LineFactory(organization=org)
    blast = factories.BlastFactory(organization=org, line=line, body=body, **kwargs)
    BlastRecipient.objects.bulk_create([BlastRecipient(blast=blast, contact=c) for c in contacts])
    return blast


def _no_quiet_hours(org):
    # Quiet hours off: the tests must not depend on the clock.
    org.quiet_hours_enabled = False
    org.save()


def _launch_and_prepare(org, blast, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        sending.blast_launch(organization=org, blast_id=blast.id)
    ranges = sending._chunk_ranges(blast.id)
    groups = []
    for lo, hi in ranges:
        groups += prepare.blast_prepare_chunk(blast_id=blast.id, first_recipient_id=lo, last_recipient_id=hi)
    return groups


def test_template_split_keeps_constant_text_in_the_body():
    t = carrier_template("Hi {first_name} {last_name}! Sale in {city}: https://shop.example/s?u={first_name} bye")
    assert t.body == "Hi ${f1} ${f2}! Sale in ${f3}: ${l1} bye"
    assert [(s.name, s.source, s.is_link) for s in t.slots] == [
        ("f1", "first_name", False),
        ("f2", "last_name", False),
        ("f3", "city", False),
        ("l1", "https://shop.example/s?u={first_name}", True),
    ]
    assert fill(t.body, {"f1": "Ann", "f2": "Lee", "f3": "Austin", "l1": "http://s/x"}) == (
        "Hi Ann Lee! Sale in Austin: http://s/x bye"
    )
    assert render("Hi {first_name}{missing}!", {"first_name": "Ann"}) == "Hi Ann!"


def test_blast_prepare_renders_excludes_opt_outs_and_groups_into_one_carrier_batch(
    org, django_capture_on_commit_callbacks
):
    # given
    _no_quiet_hours(org)
    contacts = _audience(org, 30)
    OptOut.objects.create(organization=org, phone_number=contacts[3].phone_number)
    OptOut.objects.create(organization=org, phone_number=contacts[7].phone_number)
    blast = _blast(org, "Hi {first_name} from {city}{nothing}, reply STOP to opt out", contacts)
    # when
    groups = _launch_and_prepare(org, blast, django_capture_on_commit_callbacks)
    # then
    msgs = {m.contact_id: m for m in Message.objects.filter(blast=blast)}
    assert len(msgs) == 30
    assert msgs[contacts[3].id].status == S.BLOCKED and msgs[contacts[3].id].error_code == "opted_out"
    assert msgs[contacts[7].id].status == S.BLOCKED
    m0 = msgs[contacts[0].id]
    assert m0.status == S.PREPARED
    assert m0.rendered_body == "Hi F0 from City0, reply STOP to opt out"
    assert m0.send_params == {"f1": "F0", "f2": "City0", "f3": ""}
    assert m0.carrier_recipient == contacts[0].phone_number and m0.segments == 1 and m0.encoding == "GSM-7"
    assert Conversation.objects.filter(line=blast.line).count() == 30
    assert len(groups) == 1 and len(groups[0].message_ids) == 28
    assert set(groups[0].message_ids) == {m.id for m in msgs.values() if m.status == S.PREPARED}
    assert Event.objects.filter(type="message.queued").count() == 30
    assert Event.objects.filter(type="message.blocked").count() == 2


def test_opted_out_count_is_recounted_after_commit(org, django_capture_on_commit_callbacks):
    _no_quiet_hours(org)
    contacts = _audience(org, 5)
    OptOut.objects.create(organization=org, phone_number=contacts[0].phone_number)
    blast = _blast(org, "Hello", contacts)
    with django_capture_on_commit_callbacks(execute=False):
        sending.blast_launch(organization=org, blast_id=blast.id)
    ((lo, hi),) = sending._chunk_ranges(blast.id)
    with django_capture_on_commit_callbacks(execute=True):
        prepare.blast_prepare_chunk(blast_id=blast.id, first_recipient_id=lo, last_recipient_id=hi)
    blast.refresh_from_db()
    assert blast.opted_out_count == 1 and blast.recipient_count == 5


def test_redelivered_chunk_prepares_nothing_twice(org, django_capture_on_commit_callbacks):
    _no_quiet_hours(org)
    blast = _blast(org, "Hello {first_name}", _audience(org, 10))
    first = _launch_and_prepare(org, blast, django_capture_on_commit_callbacks)
    ((lo, hi),) = sending._chunk_ranges(blast.id)
    again = prepare.blast_prepare_chunk(blast_id=blast.id, first_recipient_id=lo, last_recipient_id=hi)
    assert sum(len(g.message_ids) for g in first) == 10
    assert again == []
    assert Message.objects.filter(blast=blast).count() == 10


def test_quiet_hours_schedule_blast_messages_at_the_window_end(org, django_capture_on_commit_callbacks):
    # given: a window covering every hour but one, so "now" is inside it for any recipient zone
    now = timezone.now()
    org.quiet_hours_start = time(0, 0)
    org.quiet_hours_end = time(23, 59, 59)
    org.save()
    contacts = _audience(org, 3)
    blast = _blast(org, "Hello", contacts)
    # when
    groups = _launch_and_prepare(org, blast, django_capture_on_commit_callbacks)
    # then: nothing to send now, everything scheduled for the end of the window in the recipient's zone
    assert groups == []
    for m in Message.objects.filter(blast=blast):
        inside = quiet_hours.quiet_release(now, "America/Chicago", org.quiet_hours_start, org.quiet_hours_end)
        if m.status == S.SCHEDULED:
            assert m.send_at > now
    assert (
        Message.objects.filter(blast=blast, status=S.SCHEDULED).count()
        + Message.objects.filter(blast=blast, status=S.PREPARED).count()
        == 3
    )
    assert inside is None or inside > now


def test_quiet_release_wraps_midnight():
    chicago_2330 = datetime(2026, 3, 10, 5, 30, tzinfo=UTC)  # 23:30 CDT
    release = quiet_hours.quiet_release(chicago_2330, "America/Chicago", time(21, 0), time(8, 0))
    assert release == datetime(2026, 3, 10, 13, 0, tzinfo=UTC)  # 08:00 CDT next morning
    noon = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)
    assert quiet_hours.quiet_release(noon, "America/Chicago", time(21, 0), time(8, 0)) is None


def test_a_parameter_value_over_160_chars_falls_back_to_a_verbatim_body(org, django_capture_on_commit_callbacks):
    _no_quiet_hours(org)
    contacts = _audience(org, 3)
    contacts[1].custom_fields = {"city": "x" * 200}
    contacts[1].save()
    blast = _blast(org, "Hi {first_name} of {city}", contacts)
    groups = _launch_and_prepare(org, blast, django_capture_on_commit_callbacks)
    long_one = Message.objects.get(blast=blast, contact=contacts[1])
    assert long_one.send_params is None and long_one.rendered_body == "Hi F1 of " + "x" * 200
    assert long_one.segments == 2
    assert sorted(len(g.message_ids) for g in groups) == [1, 2]


@pytest.mark.django_db
def test_prepare_of_a_1000_recipient_chunk_is_a_fixed_handful_of_queries(org, django_capture_on_commit_callbacks):
    # given
    _no_quiet_hours(org)
    contacts = _audience(org, 1000)
    OptOut.objects.create(organization=org, phone_number=contacts[10].phone_number)
    blast = _blast(org, "Hi {first_name}, our sale in {city} starts today. Reply STOP to opt out.", contacts)
    with django_capture_on_commit_callbacks(execute=False):
        sending.blast_launch(organization=org, blast_id=blast.id)
    ((lo, hi),) = sending._chunk_ranges(blast.id)
    # when
    with CaptureQueriesContext(connection) as ctx:
        groups = prepare.blast_prepare_chunk(blast_id=blast.id, first_recipient_id=lo, last_recipient_id=hi)
    # then: blast FOR SHARE, recipients+opt-outs, reserve ids, conversations, messages, 2 outbox inserts
    # (+ the settings cache's one organization read when cold) — 0.008 per message, target ≤ 0.2.
    assert len(statements(ctx)) <= 8, [q[:80] for q in statements(ctx)]
    assert len(statements(ctx)) / 1000 <= 0.2
    assert sum(len(g.message_ids) for g in groups) == 999
    assert Blast.objects.get(pk=blast.id).status == BlastStatus.SENDING


def test_conversation_message_prepare_counts_queries_per_message(org, django_capture_on_commit_callbacks):
    convs = [factories.ConversationFactory(organization=org) for _ in range(20)]
    with django_capture_on_commit_callbacks(execute=False):
        ids = [
            sending.message_send(organization=org, conversation_id=c.id, body=f"hello {i}").id
            for i, c in enumerate(convs)
        ]
    with CaptureQueriesContext(connection) as ctx:
        groups = prepare.messages_prepare(message_ids=ids)
    assert len(statements(ctx)) <= 3, statements(ctx)  # select+opt-outs, field update, status update
    assert sorted(i for g in groups for i in g.message_ids) == sorted(ids)
    assert set(Message.objects.filter(id__in=ids).values_list("status", flat=True)) == {S.PREPARED}
