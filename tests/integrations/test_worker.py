"""End to end with a real Celery worker: inbound SMS → NICE chat → poll chain → agent reply as SMS, the
chain surviving a worker killed mid-poll (lease expiry, beat re-kick, a fresh worker), and forwards
whose tasks the broker lost re-kicked by beat and arriving once."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.models import ForwardedMessage, NiceChat, PendingForward, RingCentralTeam
from integrations.services import nice_polls_rekick
from integrations.tasks import nice_forward, ringcentral_mirror
from messaging.models import Direction, Message
from messaging.services.blasts import Audience, blast_create
from messaging.services.sending import blast_launch, message_send_to_number
from messaging.tasks import release_due
from organizations.models import Role
from postprocessing.services import events_drain
from tests.factories import ContactFactory, LineFactory, MembershipFactory, UserFactory
from tests.messaging.test_prepare import _no_quiet_hours
from tests.messaging.test_send_worker import _point_line_at
from tests.worker import celery_worker_proc, flush_broker, sandbox_carrier  # noqa: F401  (fixtures)

from .conftest import inbound, nice_line, queued, rc_connection


def _wait(predicate, timeout: float = 30.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _agent_replies() -> list[str]:
    return list(Message.objects.filter(direction=Direction.OUTBOUND).order_by("id").values_list("body", flat=True))


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_reply_flow_and_worker_restart(org, fake_nice, celery_worker_proc):  # noqa: F811
    line, _ = nice_line(org, fake_nice, flag=True, poll_timeout=1)
    celery_worker_proc.start(queues="default", concurrency=2)
    # given an inbound SMS whose post-processing event is drained (the beat's job, done here)
    inbound(line, "Where is my parcel?")
    events_drain()
    # then the worker starts the chat and, the flag being set, polls it
    session = _wait(lambda: fake_nice.sessions(), what="the chat")[0]
    _wait(lambda: fake_nice.calls("GET", "/contacts/chats/{chat}"), what="the first poll")
    fake_nice.agent_says(session, "It left the depot this morning.")
    _wait(lambda: _agent_replies() == ["It left the depot this morning."], what="the agent reply as SMS")

    # when the worker dies (mid-poll, or between two links of the chain)
    celery_worker_proc.kill9()
    # (a long poll the dead worker left open ends at its 1 s timeout, answering into a closed socket:
    # the fake, like NICE as we assume it, would hand a message to that dead poller and forget it, so
    # the agent speaks after it; docs/integrations.md names this window)
    time.sleep(1.5)
    polls_before = len(fake_nice.calls("GET", "/contacts/chats/{chat}"))
    fake_nice.agent_says(session, "Anything else?")
    time.sleep(1.0)
    assert _agent_replies() == ["It left the depot this morning."]  # nobody polls now
    # and its lease runs out (simulated: the lease's 31 s pass) while a new worker comes up
    NiceChat.objects.filter(chat_session_id=session).update(poll_lease_until=timezone.now() - timedelta(seconds=1))
    assert nice_polls_rekick() == 1  # the beat job
    celery_worker_proc.start(queues="default", concurrency=2)
    # then polling resumes and the reply waiting at NICE is sent, once
    _wait(lambda: len(_agent_replies()) == 2, what="the reply after the restart")
    assert _agent_replies() == ["It left the depot this morning.", "Anything else?"]
    assert len(fake_nice.calls("GET", "/contacts/chats/{chat}")) > polls_before
    assert fake_nice.max_concurrent_polls[session] == 1
    # and it stops when the chat ends
    fake_nice.end_chat(session)
    _wait(lambda: NiceChat.objects.get(chat_session_id=session).state == "ended", what="the chat to end")
    settled = len(fake_nice.calls("GET", "/contacts/chats/{chat}"))
    time.sleep(2)
    assert len(fake_nice.calls("GET", "/contacts/chats/{chat}")) == settled


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_nothing_a_support_user_caused_reaches_ringcentral(org, fake_rc, celery_worker_proc, sandbox_carrier):  # noqa: F811
    """Blasts, scheduled blasts and scheduled messages of a support user are sent to the contacts with
    their author in sent_by, and never posted into RingCentral nor create a team; an agent's are."""
    _no_quiet_hours(org)
    users = {
        role: MembershipFactory(organization=org, role=role, user=UserFactory(username=f"{role}@acme.test")).user
        for role in (Role.AGENT, Role.SUPPORT)
    }
    line = LineFactory(organization=org)
    _point_line_at(line, sandbox_carrier.url, provider="sandbox")
    rc_connection(org, fake_rc)
    contacts = ContactFactory.create_batch(5, organization=org)
    support_blast = blast_create(
        organization=org,
        line=line,
        body="Support says hi {first_name}",
        audience=Audience(contact_ids=[c.pk for c in contacts[:2]]),
        created_by=users[Role.SUPPORT],
    )
    scheduled_blast = blast_create(
        organization=org,
        line=line,
        body="Scheduled by support",
        audience=Audience(contact_ids=[contacts[2].pk]),
        send_at=timezone.now() + timedelta(seconds=1),
        created_by=users[Role.SUPPORT],
    )
    agent_blast = blast_create(
        organization=org,
        line=line,
        body="Agent says hi",
        audience=Audience(contact_ids=[contacts[4].pk]),
        created_by=users[Role.AGENT],
    )
    celery_worker_proc.start(queues="prepare,send,default", concurrency=2)
    # when: the support user's blast, scheduled blast and scheduled message, and the agent's blast go out
    blast_launch(organization=org, blast_id=support_blast.pk)
    blast_launch(organization=org, blast_id=scheduled_blast.pk)
    scheduled = message_send_to_number(
        organization=org,
        line_id=line.pk,
        to=contacts[3].phone_number,
        body="Scheduled note from support",
        send_at=timezone.now() + timedelta(seconds=1),
        sent_by=users[Role.SUPPORT],
    )
    blast_launch(organization=org, blast_id=agent_blast.pk)
    time.sleep(1.2)
    release_due.apply_async()  # the beat's job: the scheduled blast and message are due now
    outbound = Message.objects.filter(direction=Direction.OUTBOUND)
    _wait(lambda: outbound.filter(status="sent").count() == 5, 60, "5 messages accepted by the carrier")
    # then: every message records who caused it
    assert set(outbound.filter(blast=support_blast).values_list("sent_by", flat=True)) == {users[Role.SUPPORT].pk}
    assert list(outbound.filter(blast=scheduled_blast).values_list("sent_by", flat=True)) == [users[Role.SUPPORT].pk]
    assert list(outbound.filter(blast=agent_blast).values_list("sent_by", flat=True)) == [users[Role.AGENT].pk]
    scheduled.refresh_from_db()
    assert scheduled.sent_by_id == users[Role.SUPPORT].pk

    # and after post-processing (the beat's drain) the worker mirrors only the agent's message
    def drained_posts():
        events_drain()
        return fake_rc.posts

    _wait(drained_posts, 60, "the agent's blast message in RingCentral")
    for _ in range(10):  # later batches get their chance to (wrongly) post
        events_drain()
        time.sleep(0.2)
    time.sleep(2)
    assert [p["text"] for p in fake_rc.posts] == [f"SMS to {_label(contacts[4])} by agent@acme.test:\nAgent says hi"]
    assert len(fake_rc.teams) == 1
    (team,) = fake_rc.teams.values()
    assert {"email": "support@acme.test"} not in team["members"]
    assert set(RingCentralTeam.objects.values_list("conversation__contact", flat=True)) == {contacts[4].pk}


def _label(contact) -> str:
    return f"{contact.first_name} {contact.last_name} ({contact.phone_number})"


@pytest.mark.worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_forwards_lost_with_the_broker_arrive_once(org, fake_nice, fake_rc, celery_worker_proc):  # noqa: F811
    """Issue 12: the broker flushed with no worker running after the drain handed a text to both
    partners' tasks; the worker comes up with beat, whose sweep finds the pending markers."""
    nice, _ = nice_line(org, fake_nice, flag=False)
    rc_connection(org, fake_rc)
    m = inbound(nice, "Is anyone there?")
    events_drain()  # the outbox event is done, the tasks are in the broker
    assert queued("integrations.nice_forward") == [[[m.pk]]]
    flush_broker()
    assert queued("integrations.nice_forward") == [] and queued("integrations.ringcentral_mirror") == []
    celery_worker_proc.start(queues="default", concurrency=2, beat=True)
    time.sleep(2)
    assert fake_nice.sessions() == [] and fake_rc.posts == []  # nothing comes by itself
    # when the markers' lease has passed (60 s: moved back here), the beat's sweep (every 15 s) wakes the tasks
    PendingForward.objects.update(kick_after=timezone.now() - timedelta(seconds=1))
    _wait(lambda: fake_nice.sessions() and fake_rc.posts, 45, "the forwards after the sweep")
    _wait(lambda: not PendingForward.objects.exists(), 15, "the markers to be settled")
    # then: each partner has the text exactly once
    [session] = fake_nice.sessions()
    assert fake_nice.texts(session) == ["Is anyone there?"]
    assert [p["text"].rsplit("\n", 1)[-1] for p in fake_rc.posts] == ["Is anyone there?"]
    # and the same tasks delivered again (a redelivery) forward nothing more
    for _ in range(2):
        nice_forward.apply_async(args=[[m.pk]])
        ringcentral_mirror.apply_async(args=[[m.pk]])
    _wait(
        lambda: (
            _succeeded(celery_worker_proc, "integrations.nice_forward") == 3
            and _succeeded(celery_worker_proc, "integrations.ringcentral_mirror") == 3
        ),
        30,
        "the redelivered tasks",
    )
    assert fake_nice.texts(session) == ["Is anyone there?"] and len(fake_rc.posts) == 1
    assert len(fake_nice.sessions()) == 1 and len(fake_rc.teams) == 1
    assert ForwardedMessage.objects.filter(message=m).count() == 2


def _succeeded(worker, task_name: str) -> int:
    """Runs of `task_name` the worker logged as finished."""
    lines = worker.log_path.read_text(errors="replace").splitlines()
    return sum(1 for line in lines if f"{task_name}[" in line and " succeeded in " in line)
