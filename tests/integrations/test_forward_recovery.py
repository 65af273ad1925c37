"""Partner forwards survive a lost task (docs/recovery.md): the dispatcher's pending markers, their lease,
the beat's re-kick, and the ForwardedMessage record that keeps a re-kicked or redelivered task from
forwarding twice. The partners are the fake servers on loopback; tasks are read back from the broker.
The same with a real worker and beat: tests/integrations/test_worker.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery.exceptions import Retry
from django.db import connection
from django.utils import timezone

from integrations.models import ForwardedMessage, PartnerReply, PendingForward, ReplyState
from integrations.services import forwards_decide, nice_messages_forward, ringcentral_messages_mirror
from integrations.services.forwards import LEASE_SECONDS
from integrations.tasks import forwards_rekick, nice_forward, ringcentral_mirror, ringcentral_reply
from messaging.models import Direction, Message
from organizations.models import Role
from postprocessing.services import events_drain
from tests.factories import LineFactory, MembershipFactory, UserFactory
from tests.worker import flush_broker

from .conftest import inbound, nice_line, outbound, queued, rc_connection

pytestmark = pytest.mark.django_db(transaction=True)


def _markers() -> set[tuple[int, str]]:
    return set(PendingForward.objects.values_list("message_id", "partner"))


def _lease_over(model=PendingForward) -> None:
    """The lease has passed (it is 60 s: moved back rather than waited for)."""
    model.objects.update(kick_after=timezone.now() - timedelta(seconds=1))


def _forwarded(partner: str) -> list[int]:
    return sorted(ForwardedMessage.objects.filter(partner=partner).values_list("message_id", flat=True))


def test_the_dispatcher_marks_exactly_what_it_decides(org, fake_nice, fake_rc):
    # given: inbound on a NICE line (also under the org-wide RingCentral connection), an outbound on it
    # (RingCentral only: NICE gets inbound texts), a line that opted out of RingCentral, another tenant
    nice, _ = nice_line(org, fake_nice, flag=False)
    rc_connection(org, fake_rc)
    off = LineFactory(organization=org)
    rc_connection(org, fake_rc, line=off).__class__.objects.filter(line=off).update(is_active=False)
    m_in = inbound(nice, "hello")
    m_out = outbound(m_in.conversation, "hi back")
    m_off = inbound(off, "not mirrored")
    m_plain = inbound(LineFactory(), "no integration")
    # when: the dispatcher decides
    rows = forwards_decide(messages=[(m.pk, m.organization_id) for m in (m_in, m_out, m_off, m_plain)])
    # then: a marker for each message and partner it chose, none for the rest
    assert {(r[0], bool(r[2]), r[3] is not None) for r in rows} == {(m_in.pk, True, True), (m_out.pk, False, True)}
    assert _markers() == {(m_in.pk, "nice"), (m_in.pk, "ringcentral"), (m_out.pk, "ringcentral")}
    # and a re-run batch adds none and does not move a lease
    leases = dict(PendingForward.objects.values_list("id", "kick_after"))
    forwards_decide(messages=[(m_in.pk, org.pk)])
    assert dict(PendingForward.objects.values_list("id", "kick_after")) == leases


def test_the_markers_commit_with_the_drain_or_not_at_all(org, fake_nice):
    nice, _ = nice_line(org, fake_nice, flag=False)
    m = inbound(nice)
    with connection.cursor() as cursor:  # the drain's batch fails after the processor ran
        cursor.execute("BEGIN")
        forwards_decide(messages=[(m.pk, org.pk)])
        assert _markers() == {(m.pk, "nice")}
        cursor.execute("ROLLBACK")
    assert _markers() == set()


def test_a_task_lost_with_the_broker_is_rekicked_once_per_lease_and_forwards_once(org, fake_nice, fake_rc):
    # given: an inbound text on a NICE line under an org-wide RingCentral connection, drained (the
    # dispatcher published one task per partner), then the broker loses them with no worker running
    nice, _ = nice_line(org, fake_nice, flag=False)
    rc_connection(org, fake_rc)
    m = inbound(nice, "Did you get this?")
    events_drain()
    assert queued("integrations.nice_forward") == [[[m.pk]]]
    assert queued("integrations.ringcentral_mirror") == [[[m.pk]]]
    flush_broker()
    assert _markers() == {(m.pk, "nice"), (m.pk, "ringcentral")}
    # when: the sweep runs within the lease, nothing is woken (a live task may still be queued)
    assert forwards_rekick() == 0
    # and once the lease has passed, it wakes one task per partner, once per lease
    _lease_over()
    assert forwards_rekick() == 2
    assert forwards_rekick() == 0
    assert queued("integrations.nice_forward") == [[[m.pk]]]
    assert queued("integrations.ringcentral_mirror") == [[[m.pk]]]
    lease = PendingForward.objects.values_list("kick_after", flat=True).first()
    assert lease > timezone.now() + timedelta(seconds=LEASE_SECONDS - 5)
    # then: the woken tasks forward the text once to each partner, and the markers go with the records
    assert nice_forward([m.pk]) == 1
    assert ringcentral_mirror([m.pk]) == 1
    [session] = fake_nice.sessions()
    assert fake_nice.texts(session) == ["Did you get this?"]
    label = f"{m.contact.first_name} Tester ({m.contact.phone_number})"
    assert [p["text"] for p in fake_rc.posts] == [f"SMS from {label}:\nDid you get this?"]
    assert _markers() == set()
    assert _forwarded("nice") == _forwarded("ringcentral") == [m.pk]
    # and a redelivered task (or a wake-up that raced it) forwards nothing again
    assert nice_forward([m.pk]) == 0 and ringcentral_mirror([m.pk]) == 0
    assert fake_nice.texts(session) == ["Did you get this?"] and len(fake_rc.posts) == 1
    _lease_over()
    assert forwards_rekick() == 0


def test_messages_a_task_leaves_out_on_purpose_are_not_rekicked(org, fake_rc):
    # given: the dispatcher marks every outbound message of a connected line, including one a support
    # user caused (the task, not the dispatcher, knows to leave that out)
    support = MembershipFactory(organization=org, role=Role.SUPPORT, user=UserFactory()).user
    rc_connection(org, fake_rc)
    m = inbound(LineFactory(organization=org), "question")
    by_support = outbound(m.conversation, "support answer", sent_by=support)
    forwards_decide(messages=[(m.pk, org.pk), (by_support.pk, org.pk)])
    assert _markers() == {(m.pk, "ringcentral"), (by_support.pk, "ringcentral")}
    # when the task runs: it posts the inbound text only, and no marker is left for the sweep
    assert ringcentral_messages_mirror(message_ids=[m.pk, by_support.pk]) == 1
    assert _markers() == set()
    _lease_over()
    assert forwards_rekick() == 0


def test_a_partner_error_keeps_the_marker_and_holds_the_sweep_off_until_the_retry(org, fake_nice):
    nice, _ = nice_line(org, fake_nice, flag=False)
    first = inbound(nice, "one")
    second = inbound(nice, "two", conversation=first.conversation)
    forwards_decide(messages=[(first.pk, org.pk), (second.pk, org.pk)])
    assert nice_messages_forward(message_ids=[first.pk]) == 1  # the chat exists, "one" is in it
    # when NICE rate-limits the next text: the task schedules its retry
    fake_nice.force(429, retry_after=120)
    with pytest.raises(Retry):
        nice_forward([first.pk, second.pk])
    # then: the unforwarded text keeps its marker, whose lease is past the retry's countdown
    assert _markers() == {(second.pk, "nice")}
    lease = PendingForward.objects.get().kick_after
    assert lease >= timezone.now() + timedelta(seconds=120 + LEASE_SECONDS - 5)
    assert forwards_rekick() == 0
    # and the retry forwards what is left, once
    assert nice_forward([first.pk, second.pk]) == 1
    [session] = fake_nice.sessions()
    assert fake_nice.texts(session) == ["one", "two"]
    assert _markers() == set()


def test_a_lost_ringcentral_reply_is_rekicked_and_sent_once(org, fake_rc, client):
    rc = rc_connection(org, fake_rc)
    m = inbound(LineFactory(organization=org), "Open today?")
    ringcentral_messages_mirror(message_ids=[m.pk])
    (team_id,) = fake_rc.teams
    note = fake_rc.notification(chat=team_id, text="Until 6pm.", creator="p-x")
    assert client.post(f"/integrations/ringcentral/{rc.webhook_secret}/webhook", note, "application/json").json() == {
        "result": "stored"
    }
    reply = PartnerReply.objects.get()
    assert reply.state == ReplyState.PENDING and reply.kick_after > timezone.now()
    flush_broker()  # its task is lost
    assert forwards_rekick() == 0  # within its lease
    _lease_over(PartnerReply)
    assert forwards_rekick() == 1
    assert queued("integrations.ringcentral_reply") == [[reply.pk]]
    assert forwards_rekick() == 0
    # the woken task sends it; a redelivery sends nothing; the sweep leaves a sent reply alone
    assert ringcentral_reply(reply.pk) == ReplyState.SENT
    assert ringcentral_reply(reply.pk) == "done"
    assert list(Message.objects.filter(direction=Direction.OUTBOUND).values_list("body", flat=True)) == ["Until 6pm."]
    _lease_over(PartnerReply)
    assert forwards_rekick() == 0


def test_the_lease_grows_with_the_age_of_a_forward_that_keeps_failing(org, fake_nice):
    nice, _ = nice_line(org, fake_nice, flag=False)
    m = inbound(nice)
    forwards_decide(messages=[(m.pk, org.pk)])
    PendingForward.objects.update(created_at=timezone.now() - timedelta(minutes=20))
    _lease_over()
    assert forwards_rekick() == 1
    lease = PendingForward.objects.get().kick_after - timezone.now()
    assert timedelta(minutes=19) < lease <= timedelta(minutes=20)
    PendingForward.objects.update(created_at=timezone.now() - timedelta(days=2))
    _lease_over()
    assert forwards_rekick() == 1
    assert PendingForward.objects.get().kick_after - timezone.now() <= timedelta(hours=1)
