"""RingCentral teams kept in step with the organization (issue 18.2). See docs/integrations.md.

A team's members should be the organization's active, non-support users (`team_members`). Parley
records in `RingCentralTeam.member_emails` whom it put in each team; a sync compares that record with
the wanted list and only for teams that differ calls RingCentral: one `add` (by email) and, when
someone must go, one read of the team's members (person ids, since `remove` takes ids only) and one
`remove`. It runs when a membership or a user changes (integrations/receivers.py, after commit) and
from the beat (`integrations.ringcentral_sync_all`), which catches changes made where no signal is
sent and tasks that were lost.

People added to a team by hand in RingCentral are not in our record, so a sync leaves them alone; a
team created before the record existed (member_emails null) is read once and then treated as ours.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db.models import Q
from django.utils import timezone

from ..clients import PartnerError, RingCentralClient
from ..models import RingCentralConnection, RingCentralTeam
from .common import conversation_lock
from .ringcentral import team_members

log = logging.getLogger(__name__)

# Teams per task run. Add/remove/read are in RingCentral's "medium" group (40 calls per minute per
# user and app) and a team costs 1 to 3 calls: 12 teams ≤ 36 calls, then the task continues after
# SYNC_PAUSE_SECONDS. An organization with thousands of teams catches up over hours; 429s are honoured.
SYNC_BATCH = 12
SYNC_PAUSE_SECONDS = 60


@dataclass
class SyncOutcome:
    synced: int = 0  # teams whose members were changed (or found right)
    gone: int = 0  # teams RingCentral no longer has (their row is dropped; the next message makes a new one)
    more: bool = False  # teams left for the next run


def ringcentral_teams_sync(*, organization_id: int, limit: int = SYNC_BATCH) -> SyncOutcome:
    """Bring up to `limit` of the organization's out-of-step teams in step. Idempotent; a PartnerError
    (429, 5xx) raises after saving the teams done before it, so a retry resumes."""
    wanted = team_members(organization_id=organization_id)
    stale = (
        RingCentralTeam.objects.filter(organization_id=organization_id, connection__is_active=True)
        .filter(Q(member_emails__isnull=True) | ~Q(member_emails=wanted))
        .order_by("id")
        .values_list("id", "conversation_id")
    )
    batch = list(stale[: limit + 1])
    outcome = SyncOutcome(more=len(batch) > limit)
    persons: dict[str, str] = {}  # person id → email, learned during this run
    for team_id, conversation_id in batch[:limit]:
        # The same lock as team creation and mirroring: a team is never created and synced at once.
        with conversation_lock("ringcentral", conversation_id):
            team = RingCentralTeam.objects.select_related("connection").filter(pk=team_id).first()
            if team is None or team.member_emails == wanted:
                continue  # deleted, or another run did it
            if _team_sync(team, wanted, persons):
                outcome.synced += 1
            else:
                outcome.gone += 1
    return outcome


def _team_sync(team: RingCentralTeam, wanted: list[str], persons: dict[str, str]) -> bool:
    conn: RingCentralConnection = team.connection
    client = RingCentralClient(conn.base_url, conn.bot_token)
    try:
        current: dict[str, str] | None = None
        if team.member_emails is None:  # a team from before the record: what it holds now is the record
            current = _members(client, conn, team.team_id, persons)
            recorded = set(current.values())
        else:
            recorded = set(team.member_emails)
        add = sorted(set(wanted) - recorded)
        remove = recorded - set(wanted)
        if add:
            client.team_add(chat=team.team_id, member_emails=add)
        if remove:
            current = current if current is not None else _members(client, conn, team.team_id, persons)
            ids = sorted(pid for pid, email in current.items() if email in remove)
            if ids:
                client.team_remove(chat=team.team_id, person_ids=ids)
    except PartnerError as exc:
        if not exc.not_found:
            raise
        log.info("RingCentral team %s is gone; its row is dropped", team.team_id)
        team.delete()
        return False
    RingCentralTeam.objects.filter(pk=team.pk).update(member_emails=wanted, members_synced_at=timezone.now())
    if add or remove:
        log.info("RingCentral team %s: %d added, %d removed", team.team_id, len(add), len(remove))
    return True


def _members(
    client: RingCentralClient, conn: RingCentralConnection, chat: str, persons: dict[str, str]
) -> dict[str, str]:
    """{person id: lower-case email} of the team's members, our bot left out. Each unknown person is
    looked up once per run (a person RingCentral does not know is skipped)."""
    found: dict[str, str] = {}
    for pid in client.chat_member_ids(chat=chat):
        if pid == conn.bot_creator_id:
            continue
        if pid not in persons:
            try:
                persons[pid] = client.person_email(person_id=pid).lower()
            except PartnerError as exc:
                if not exc.not_found:
                    raise
                persons[pid] = ""
        if persons[pid]:
            found[pid] = persons[pid]
    return found


def ringcentral_organizations(*, organization_ids: list[int] | None = None) -> list[int]:
    """Organizations with an active RingCentral connection (of these, when given)."""
    conns = RingCentralConnection.objects.filter(is_active=True)
    if organization_ids is not None:
        conns = conns.filter(organization_id__in=organization_ids)
    return sorted(set(conns.values_list("organization_id", flat=True)))
