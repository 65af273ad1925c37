"""Issue 14.2: quiet hours are visible (blast API and admin: how many deferred, when they resume) and
settable per organization through the API; "off" is its own setting, not start = end."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from messaging.models import Blast, BlastRecipient, Contact, Message
from messaging.services import prepare, sending
from messaging.status import MessageStatus as S
from organizations.models import Role
from tests import factories

CHICAGO = ZoneInfo("America/Chicago")  # Austin's 737 numbers resolve there


def _window_around_now(org, *, ends_in: timedelta = timedelta(hours=2)):
    """Quiet hours from an hour ago to `ends_in` from now, Chicago time: inside it whatever the clock says."""
    now = timezone.now().astimezone(CHICAGO).replace(microsecond=0)
    org.quiet_hours_enabled = True
    org.quiet_hours_start = (now - timedelta(hours=1)).time()
    org.quiet_hours_end = (now + ends_in).time()
    org.save()
    return (now + ends_in).astimezone(ZoneInfo("UTC"))


def _blast_of(org, n):
    line = factories.LineFactory(organization=org)
    contacts = Contact.objects.bulk_create(
        [Contact(organization=org, phone_number=factories.next_number("737"), first_name=f"F{i}") for i in range(n)]
    )
    blast = factories.BlastFactory(organization=org, line=line, body="Hello {first_name}")
    BlastRecipient.objects.bulk_create([BlastRecipient(blast=blast, contact=c) for c in contacts])
    return blast


def _launch(org, blast, capture):
    with capture(execute=False):
        sending.blast_launch(organization=org, blast_id=blast.id)
    for lo, hi in sending._chunk_ranges(blast.id):
        prepare.blast_prepare_chunk(blast_id=blast.id, first_recipient_id=lo, last_recipient_id=hi)


def test_a_blast_shows_how_many_are_deferred_and_when_they_resume(
    api, org, django_capture_on_commit_callbacks, admin_client
):
    resume = _window_around_now(org)
    blast = _blast_of(org, 4)
    _launch(org, blast, django_capture_on_commit_callbacks)
    assert Message.objects.filter(blast=blast, status=S.SCHEDULED).count() == 4

    body = api.get(f"/api/v1/blasts/{blast.id}").json()
    assert body["status"] == "sending" and body["sent_count"] == 0
    assert body["deferred_by_quiet_hours"] == 4
    assert datetime.fromisoformat(body["quiet_hours_resume_at"]) == resume
    (listed,) = [b for b in api.get("/api/v1/blasts").json()["results"] if b["id"] == blast.id]
    assert listed["deferred_by_quiet_hours"] == 4

    page = admin_client.get(f"/admin/messaging/blast/{blast.id}/change/").content.decode()
    assert "Deferred by quiet hours" in page and "4 message(s), resuming" in page
    assert "4 message(s), resuming" in admin_client.get("/admin/messaging/blast/").content.decode()

    preview = api.get(f"/api/v1/blasts/{blast.id}/preview").json()
    assert preview["deferred_by_quiet_hours"] == 4
    assert datetime.fromisoformat(preview["quiet_hours_resume_at"]) == resume


def test_a_blast_outside_quiet_hours_shows_none_deferred(api, org, django_capture_on_commit_callbacks):
    org.quiet_hours_enabled = False
    org.save()
    blast = _blast_of(org, 2)
    _launch(org, blast, django_capture_on_commit_callbacks)
    body = api.get(f"/api/v1/blasts/{blast.id}").json()
    assert (body["deferred_by_quiet_hours"], body["quiet_hours_resume_at"]) == (0, None)


def test_quiet_hours_are_read_and_set_through_the_api(api, org, other_org):
    r = api.get("/api/v1/organization")
    assert r.status_code == 200
    assert r.json() == {
        "id": org.id,
        "name": org.name,
        "time_zone": "America/Chicago",
        "quiet_hours_enabled": True,
        "quiet_hours_start": "21:00:00",
        "quiet_hours_end": "08:00:00",
    }
    r = api.patch("/api/v1/organization", {"quiet_hours_start": "20:30", "time_zone": "America/Denver"}, format="json")
    assert r.status_code == 200, r.content
    org.refresh_from_db()
    assert (org.quiet_hours_start, org.time_zone) == (time(20, 30), "America/Denver")
    r = api.patch("/api/v1/organization", {"quiet_hours_enabled": False}, format="json")
    assert r.status_code == 200 and r.json()["quiet_hours_enabled"] is False
    other_org.refresh_from_db()
    assert other_org.quiet_hours_enabled is True  # the other tenant untouched


def test_an_empty_window_while_on_is_refused_naming_the_field(api, org):
    r = api.patch("/api/v1/organization", {"quiet_hours_start": "08:00", "quiet_hours_end": "08:00"}, format="json")
    assert r.status_code == 400
    assert "quiet_hours_enabled" in r.json()["error"]["fields"]["quiet_hours_end"][0]
    r = api.patch("/api/v1/organization", {"time_zone": "Mars/Olympus"}, format="json")
    assert r.status_code == 400 and "time_zone" in r.json()["error"]["fields"]
    org.refresh_from_db()
    assert (org.quiet_hours_start, org.time_zone) == (time(21, 0), "America/Chicago")  # nothing changed
    # off, then any window (start = end included) is allowed: it is not in force
    r = api.patch(
        "/api/v1/organization",
        {"quiet_hours_enabled": False, "quiet_hours_start": "08:00", "quiet_hours_end": "08:00"},
        format="json",
    )
    assert r.status_code == 200, r.content


def test_the_database_refuses_an_empty_window_that_is_on(org):
    org.quiet_hours_start = org.quiet_hours_end = time(8, 0)
    with pytest.raises(IntegrityError), transaction.atomic():
        org.save()


def test_an_agent_reads_but_cannot_change_the_settings(org):
    from rest_framework.test import APIClient

    agent = factories.MembershipFactory(organization=org, role=Role.AGENT)
    client = APIClient()
    client.force_login(agent.user)
    assert client.get("/api/v1/organization").status_code == 200
    assert client.patch("/api/v1/organization", {"quiet_hours_enabled": False}, format="json").status_code == 403


def test_off_means_off_whatever_the_window(org, django_capture_on_commit_callbacks):
    _window_around_now(org)
    org.quiet_hours_enabled = False
    org.save()
    blast = _blast_of(org, 3)
    _launch(org, blast, django_capture_on_commit_callbacks)
    assert set(Message.objects.filter(blast=blast).values_list("status", flat=True)) == {S.PREPARED}
    assert Blast.objects.get(pk=blast.pk).status == "sending"


@pytest.fixture
def api(org):
    from django.core.cache import cache
    from rest_framework.test import APIClient

    from organizations.services import api_key_create

    cache.clear()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(organization=org, name='t').raw_key}")
    return client
