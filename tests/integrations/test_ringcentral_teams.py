"""RingCentral teams kept in step with the organization (issue 18.2), against the fake RingCentral server:
membership and user changes enqueue a sync after commit, the beat's periodic check finds what no signal
reported, and the sync adds (by email) and removes (by person id) only what differs."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from integrations.clients import PartnerError
from integrations.models import RingCentralTeam
from integrations.services import ringcentral_messages_mirror, ringcentral_teams_sync
from integrations.tasks import ringcentral_sync, ringcentral_sync_all
from organizations.models import Membership, Role
from tests.factories import ContactFactory, ConversationFactory, LineFactory, MembershipFactory, UserFactory

from .conftest import inbound, queued, rc_connection

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff(org):
    return {
        role: MembershipFactory(organization=org, role=role, user=UserFactory(username=f"{role}@acme.test"))
        for role in (Role.ADMIN, Role.AGENT, Role.SUPPORT)
    }


def _team(org, fake_rc, line=None) -> RingCentralTeam:
    line = line or LineFactory(organization=org)
    conv = ConversationFactory(organization=org, line=line, contact=ContactFactory(organization=org))
    m = inbound(line, "Hello", conversation=conv)
    assert ringcentral_messages_mirror(message_ids=[m.pk]) == 1
    return RingCentralTeam.objects.get(conversation=conv)


def _run_sync_tasks() -> None:
    """What a worker does with the sync tasks in the broker (each once)."""
    for args in queued("integrations.ringcentral_sync"):
        ringcentral_sync(*args)


def _member_calls(fake_rc) -> list[tuple[str, dict]]:
    return [
        (r["path"].rsplit("/", 1)[1], r["json"])
        for r in fake_rc.requests
        if r["method"] == "POST" and r["path"].endswith(("/add", "/remove"))
    ]


def test_the_team_records_its_members_at_creation(org, fake_rc, staff):
    rc_connection(org, fake_rc)
    team = _team(org, fake_rc)
    assert team.member_emails == ["admin@acme.test", "agent@acme.test"]
    assert fake_rc.member_emails(team.team_id) == ["admin@acme.test", "agent@acme.test"]


def test_a_member_who_becomes_support_leaves_every_team(org, fake_rc, staff):
    rc_connection(org, fake_rc)
    teams = [_team(org, fake_rc), _team(org, fake_rc)]
    # when the agent's role becomes support
    agent = staff[Role.AGENT]
    agent.role = Role.SUPPORT
    agent.save()
    # then a sync of the organization is enqueued after commit, and it removes them (by person id)
    assert queued("integrations.ringcentral_sync") == [[org.pk]]
    _run_sync_tasks()
    for team in teams:
        assert fake_rc.member_emails(team.team_id) == ["admin@acme.test"]
        team.refresh_from_db()
        assert team.member_emails == ["admin@acme.test"]
    removes = [body for kind, body in _member_calls(fake_rc) if kind == "remove"]
    assert len(removes) == 2 and all(set(m) == {"id"} for body in removes for m in body["members"])
    # and back from support to agent: added again
    agent.role = Role.AGENT
    agent.save()
    _run_sync_tasks()
    assert fake_rc.member_emails(teams[0].team_id) == ["admin@acme.test", "agent@acme.test"]


def test_a_new_agent_is_added_and_a_removed_member_leaves(org, fake_rc, staff):
    rc_connection(org, fake_rc)
    team = _team(org, fake_rc)
    newcomer = MembershipFactory(organization=org, role=Role.AGENT, user=UserFactory(username="new@acme.test"))
    _run_sync_tasks()
    assert fake_rc.member_emails(team.team_id) == ["admin@acme.test", "agent@acme.test", "new@acme.test"]
    assert _member_calls(fake_rc) == [("add", {"members": [{"email": "new@acme.test"}]})]
    newcomer.delete()
    staff[Role.ADMIN].delete()
    _run_sync_tasks()
    assert fake_rc.member_emails(team.team_id) == ["agent@acme.test"]


def test_a_deactivated_user_leaves_and_a_login_enqueues_nothing(org, fake_rc, staff):
    rc_connection(org, fake_rc)
    team = _team(org, fake_rc)
    user = staff[Role.ADMIN].user
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])
    assert queued("integrations.ringcentral_sync") == []
    user.is_active = False
    user.save()
    _run_sync_tasks()
    assert fake_rc.member_emails(team.team_id) == ["agent@acme.test"]


def test_an_organization_without_a_connection_enqueues_nothing(org, staff):
    MembershipFactory(organization=org, role=Role.AGENT)
    staff[Role.AGENT].delete()
    assert queued("integrations.ringcentral_sync") == []


def test_the_periodic_check_finds_changes_no_signal_reported(org, fake_rc, staff):
    rc_connection(org, fake_rc)
    team = _team(org, fake_rc)
    # a bulk change: queryset.update sends no model signal
    Membership.objects.filter(pk=staff[Role.ADMIN].pk).update(role=Role.SUPPORT)
    get_user_model().objects.filter(pk=staff[Role.SUPPORT].user_id).update(email="support@acme.test")
    assert queued("integrations.ringcentral_sync") == []
    # when the beat's check runs
    assert ringcentral_sync_all() == 1
    _run_sync_tasks()
    # then the team is in step, and a second check changes nothing and calls RingCentral for nothing
    assert fake_rc.member_emails(team.team_id) == ["agent@acme.test"]
    calls = len(fake_rc.requests)
    assert ringcentral_teams_sync(organization_id=org.pk).synced == 0
    assert len(fake_rc.requests) == calls


def test_a_team_from_before_the_record_is_read_once_and_put_in_step(org, fake_rc, staff):
    rc_connection(org, fake_rc)
    team = _team(org, fake_rc)
    # a team created before member_emails existed, into which someone added the support user by hand
    fake_rc.teams[team.team_id]["member_ids"].append(fake_rc._person_id({"email": "support@acme.test"}))
    RingCentralTeam.objects.filter(pk=team.pk).update(member_emails=None)
    outcome = ringcentral_teams_sync(organization_id=org.pk)
    assert (outcome.synced, outcome.more) == (1, False)
    assert fake_rc.member_emails(team.team_id) == ["admin@acme.test", "agent@acme.test"]
    team.refresh_from_db()
    assert team.member_emails == ["admin@acme.test", "agent@acme.test"]


def test_large_organizations_are_synced_in_batches_and_a_429_resumes(org, fake_rc, staff):
    rc_connection(org, fake_rc)
    line = LineFactory(organization=org)
    teams = [_team(org, fake_rc, line) for _ in range(3)]
    MembershipFactory(organization=org, role=Role.AGENT, user=UserFactory(username="new@acme.test"))
    # a batch of two: one more left for the task's next run
    outcome = ringcentral_teams_sync(organization_id=org.pk, limit=2)
    assert (outcome.synced, outcome.more) == (2, True)
    # a 429 on the last one: the error surfaces (the task retries after Retry-After), nothing is lost
    fake_rc.force(429, retry_after=1)
    with pytest.raises(PartnerError) as caught:
        ringcentral_teams_sync(organization_id=org.pk, limit=2)
    assert caught.value.rate_limited
    assert ringcentral_teams_sync(organization_id=org.pk, limit=2).synced == 1
    for team in teams:
        assert "new@acme.test" in fake_rc.member_emails(team.team_id)
    adds = [kind for kind, _ in _member_calls(fake_rc) if kind == "add"]
    assert len(adds) == 4  # each team once, plus the call answered 429


def test_a_team_deleted_at_ringcentral_is_dropped(org, fake_rc, staff):
    rc_connection(org, fake_rc)
    team = _team(org, fake_rc)
    del fake_rc.teams[team.team_id]
    MembershipFactory(organization=org, role=Role.AGENT)
    assert ringcentral_teams_sync(organization_id=org.pk).gone == 1
    assert not RingCentralTeam.objects.filter(pk=team.pk).exists()
