"""RingCentral Team Messaging: teams without support users, mirrored posts (support users' never), 429,
the webhook (validation, bot loop, support authors, tenant isolation), replies as SMS exactly once."""

from __future__ import annotations

import pytest

from integrations.clients import PartnerError
from integrations.models import ForwardedMessage, PartnerReply, ReplyState, RingCentralTeam
from integrations.services import ringcentral_messages_mirror, ringcentral_reply_send, team_members
from integrations.tasks import _countdown
from messaging.models import Direction, Message
from organizations.models import Role
from tests.factories import BlastFactory, LineFactory, MembershipFactory, OrganizationFactory, UserFactory

from .conftest import inbound, outbound, queued, rc_connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(org):
    """An admin, an agent and a support user of the organization, plus a user of another tenant."""
    users = {
        role: MembershipFactory(organization=org, role=role, user=UserFactory(username=f"{role}@acme.test")).user
        for role in (Role.ADMIN, Role.AGENT, Role.SUPPORT)
    }
    MembershipFactory(organization=OrganizationFactory(), user=UserFactory(username="outsider@other.test"))
    return users


def _mirrored(org, fake_rc, staff):
    line = LineFactory(organization=org)
    conn = rc_connection(org, fake_rc)
    m = inbound(line, "Is the store open?")
    assert ringcentral_messages_mirror(message_ids=[m.pk]) == 1
    return conn, m, RingCentralTeam.objects.get(conversation=m.conversation)


def test_team_is_created_without_support_users(org, fake_rc, staff):
    conn, m, team = _mirrored(org, fake_rc, staff)
    created = fake_rc.teams[team.team_id]
    assert created["public"] is False
    assert created["members"] == [{"email": "admin@acme.test"}, {"email": "agent@acme.test"}]
    assert team_members(organization_id=org.pk) == ["admin@acme.test", "agent@acme.test"]
    assert fake_rc.posts_in(team.team_id) == [
        f"SMS from {m.contact.first_name} Tester ({m.contact.phone_number}):\nIs the store open?"
    ]


def test_outbound_by_support_user_is_never_posted_others_are(org, fake_rc, staff):
    conn, m, team = _mirrored(org, fake_rc, staff)
    by_agent = outbound(m.conversation, "Yes, until 9pm", sent_by=staff[Role.AGENT])
    by_support = outbound(m.conversation, "Support here, testing", sent_by=staff[Role.SUPPORT])
    by_system = outbound(m.conversation, "Reply STOP to unsubscribe.")
    posted = ringcentral_messages_mirror(message_ids=[by_agent.pk, by_support.pk, by_system.pk])
    assert posted == 2
    texts = fake_rc.posts_in(team.team_id)
    assert len(texts) == 3 and texts[1].endswith("Yes, until 9pm") and texts[2].endswith("Reply STOP to unsubscribe.")
    assert not any("Support here" in t for t in texts)
    assert "by agent@acme.test" in texts[1]
    # a second run (a re-run batch) posts nothing again; one team for the conversation
    assert ringcentral_messages_mirror(message_ids=[m.pk, by_agent.pk, by_support.pk, by_system.pk]) == 0
    assert len(fake_rc.teams) == 1 and len(fake_rc.posts) == 3


def test_support_role_is_per_organization(org, fake_rc, staff):
    """A support user of another tenant who is an agent here is an ordinary agent here."""
    elsewhere = OrganizationFactory()
    MembershipFactory(organization=elsewhere, user=staff[Role.AGENT], role=Role.SUPPORT)
    conn, m, team = _mirrored(org, fake_rc, staff)
    assert {"email": "agent@acme.test"} in fake_rc.teams[team.team_id]["members"]
    assert ringcentral_messages_mirror(message_ids=[outbound(m.conversation, sent_by=staff[Role.AGENT]).pk]) == 1


def test_429_retry_after_is_honoured_and_nothing_is_posted_twice(org, fake_rc, staff):
    conn, m, team = _mirrored(org, fake_rc, staff)
    first = outbound(m.conversation, "first")
    second = outbound(m.conversation, "second")
    fake_rc.force(429, retry_after=7)  # the first post of the batch is rate limited
    with pytest.raises(PartnerError) as caught:
        ringcentral_messages_mirror(message_ids=[first.pk, second.pk])
    assert caught.value.rate_limited and caught.value.retry_after == 7
    assert _countdown(caught.value, retries=0) == 7  # the task retries after Retry-After
    assert ringcentral_messages_mirror(message_ids=[first.pk, second.pk]) == 2
    assert fake_rc.posts_in(team.team_id)[1:] == [
        f"SMS to {m.contact.first_name} Tester ({m.contact.phone_number}) by Parley:\nfirst",
        f"SMS to {m.contact.first_name} Tester ({m.contact.phone_number}) by Parley:\nsecond",
    ]


def test_line_connection_wins_over_organization_wide_and_can_switch_a_line_off(org, fake_rc, staff):
    rc_connection(org, fake_rc)  # organization-wide
    off_line = LineFactory(organization=org)
    own = rc_connection(org, fake_rc, line=off_line)
    own.is_active = False
    own.save()
    assert ringcentral_messages_mirror(message_ids=[inbound(off_line).pk]) == 0
    assert ringcentral_messages_mirror(message_ids=[inbound(LineFactory(organization=org)).pk]) == 1
    assert ringcentral_messages_mirror(message_ids=[inbound(LineFactory(organization=OrganizationFactory())).pk]) == 0


# ------------------------------------------------------------------------------------------ webhook
def _url(conn) -> str:
    return f"/integrations/ringcentral/{conn.webhook_secret}/webhook"


def test_validation_token_is_echoed(org, fake_rc, client):
    conn = rc_connection(org, fake_rc)
    response = client.post(_url(conn), b"", "application/json", headers={"Validation-Token": "vt-123"})
    assert response.status_code == 200 and response["Validation-Token"] == "vt-123"
    # not for a wrong secret
    wrong = client.post(
        "/integrations/ringcentral/nope/webhook", b"", "application/json", headers={"Validation-Token": "vt-123"}
    )
    assert wrong.status_code == 404 and "Validation-Token" not in wrong


def test_bots_own_post_is_ignored(org, fake_rc, staff, client):
    conn, m, team = _mirrored(org, fake_rc, staff)
    own = fake_rc.notification(chat=team.team_id, text="SMS from ...", creator=fake_rc.bot_id)
    response = client.post(_url(conn), own, "application/json")
    assert response.json() == {"result": "own post"}
    assert not PartnerReply.objects.exists()


def test_team_members_reply_becomes_one_sms(org, fake_rc, staff, client, django_capture_on_commit_callbacks):
    conn, m, team = _mirrored(org, fake_rc, staff)
    fake_rc.add_person("p-agent", "Agent@acme.test")
    note = fake_rc.notification(chat=team.team_id, text="We open at 8am.", creator="p-agent")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_url(conn), note, "application/json")
    assert response.json() == {"result": "stored"}
    reply = PartnerReply.objects.get()
    assert queued("integrations.ringcentral_reply") == [[reply.pk]]
    # RingCentral redelivers the same notification: stored once
    assert client.post(_url(conn), note, "application/json").json() == {"result": "duplicate"}
    # when the task runs (twice: a redelivery)
    with django_capture_on_commit_callbacks(execute=True):
        assert ringcentral_reply_send(reply_id=reply.pk) == ReplyState.SENT
    assert ringcentral_reply_send(reply_id=reply.pk) == "done"
    [sms] = Message.objects.filter(direction=Direction.OUTBOUND)
    assert (sms.conversation_id, sms.body, sms.sent_by_id) == (
        m.conversation_id,
        "We open at 8am.",
        staff[Role.AGENT].pk,
    )
    assert queued("messaging.prepare_messages")[-1][0] == [sms.pk]
    # and that SMS is not mirrored back into the team (it is already there, as the member's post)
    assert ringcentral_messages_mirror(message_ids=[sms.pk]) == 0


def test_support_users_post_is_not_sent(org, fake_rc, staff, client):
    conn, m, team = _mirrored(org, fake_rc, staff)
    fake_rc.add_person("p-support", "support@acme.test")
    client.post(_url(conn), fake_rc.notification(chat=team.team_id, text="hi", creator="p-support"), "application/json")
    assert ringcentral_reply_send(reply_id=PartnerReply.objects.get().pk) == ReplyState.SKIPPED
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()


def test_unknown_person_is_sent_without_a_sender(org, fake_rc, staff, client):
    conn, m, team = _mirrored(org, fake_rc, staff)
    client.post(_url(conn), fake_rc.notification(chat=team.team_id, text="hey", creator="p-x"), "application/json")
    assert ringcentral_reply_send(reply_id=PartnerReply.objects.get().pk) == ReplyState.SENT
    assert Message.objects.get(direction=Direction.OUTBOUND).sent_by_id is None


def test_person_lookup_failure_leaves_the_reply_pending(org, fake_rc, staff, client):
    conn, m, team = _mirrored(org, fake_rc, staff)
    client.post(_url(conn), fake_rc.notification(chat=team.team_id, text="hey", creator="p-x"), "application/json")
    fake_rc.force(503)
    with pytest.raises(PartnerError):
        ringcentral_reply_send(reply_id=PartnerReply.objects.get().pk)
    assert PartnerReply.objects.get().state == ReplyState.PENDING
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()


def test_webhook_tenant_isolation(org, fake_rc, staff, client):
    conn, m, team = _mirrored(org, fake_rc, staff)
    other = OrganizationFactory()
    other_conn = rc_connection(other, fake_rc)
    note = fake_rc.notification(chat=team.team_id, text="hijack", creator="p-agent")
    # a wrong secret answers 404
    assert client.post("/integrations/ringcentral/nope/webhook", note, "application/json").status_code == 404
    # another tenant's connection cannot reach this tenant's team
    assert client.post(_url(other_conn), note, "application/json").json() == {"result": "unknown chat"}
    assert not PartnerReply.objects.exists()
    # bad input names the field
    bad = client.post(_url(conn), b"[1, 2]", "application/json")
    assert bad.status_code == 400 and bad.json()["field"] == "body"


def test_forwarded_rows_record_post_ids(org, fake_rc, staff):
    conn, m, team = _mirrored(org, fake_rc, staff)
    row = ForwardedMessage.objects.get(message=m, partner="ringcentral")
    assert row.external_id == fake_rc.posts[0]["id"]


def test_a_support_users_blast_is_never_posted_even_without_sent_by(org, fake_rc, staff):
    """Blast messages carry their author in sent_by; rows prepared before that (sent_by empty) fall
    back to the blast's author."""
    conn, m, team = _mirrored(org, fake_rc, staff)
    by_support = BlastFactory(organization=org, line=m.line, created_by=staff[Role.SUPPORT])
    by_agent = BlastFactory(organization=org, line=m.line, created_by=staff[Role.AGENT])
    legacy_support = outbound(m.conversation, "Support blast, old row")
    legacy_agent = outbound(m.conversation, "Agent blast, old row")
    Message.objects.filter(pk=legacy_support.pk).update(blast=by_support)
    Message.objects.filter(pk=legacy_agent.pk).update(blast=by_agent)
    assert ringcentral_messages_mirror(message_ids=[legacy_support.pk, legacy_agent.pk]) == 1
    assert fake_rc.posts_in(team.team_id)[-1].endswith("Agent blast, old row")
