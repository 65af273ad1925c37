"""The post-processing hook (one query per batch, tasks after commit, no partner call in the drain) and
secrets (never in reprs, admin pages, errors or logs)."""

from __future__ import annotations

import logging

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from integrations.clients import NiceClient, PartnerError
from integrations.models import NiceConnection, RingCentralConnection
from integrations.processors import integrations_dispatch
from integrations.services import nice_chat_poll, nice_messages_forward
from integrations.services.forwards import TASK_GROUP_SIZE, groups_by_conversation
from messaging.services.status import StatusUpdate, messages_apply_statuses
from messaging.status import MessageStatus as S
from postprocessing.registry import EventRow, processor_named
from postprocessing.services import events_drain
from tests.factories import LineFactory, MembershipFactory, UserFactory

from .conftest import inbound, nice_line, outbound, queued, rc_connection


def _events(messages, type_="message.received", *, with_org: bool = True):
    """Events as the status path writes them (the payload names the message's organization)."""
    return [
        EventRow(i, type_, m.pk, {"status": m.status, "organization_id": m.organization_id} if with_org else {})
        for i, m in enumerate(messages, 1)
    ]


@pytest.mark.django_db
def test_processor_is_registered_for_received_and_sent():
    assert processor_named("integrations_dispatch").event_types == {"message.received", "message.sent"}


@pytest.mark.django_db
def test_one_query_per_batch_and_tasks_after_commit(org, fake_nice, fake_rc, django_capture_on_commit_callbacks):
    # given a batch: inbound on a NICE line, inbound and outbound on a RingCentral (org-wide) line,
    # inbound on a line of a tenant with no integration
    nice, _ = nice_line(org, fake_nice, flag=True)
    rc_connection(org, fake_rc)
    rc_line = LineFactory(organization=org)
    on_nice = [inbound(nice, f"n{i}") for i in range(3)]
    rc_in = inbound(rc_line)
    rc_out = outbound(rc_in.conversation)
    plain = inbound(LineFactory())
    batch = _events([*on_nice, rc_in, plain]) + _events([rc_out], "message.sent")
    # when the processor runs: one query, no task published before commit, no partner call
    with django_capture_on_commit_callbacks(execute=False) as callbacks, CaptureQueriesContext(connection) as ctx:
        integrations_dispatch(batch)
    assert len(ctx.captured_queries) == 1
    assert queued("integrations.nice_forward") == [] and fake_nice.requests == [] and fake_rc.requests == []
    # then after commit: NICE gets its inbound messages (3 conversations, one task), RingCentral all of
    # its line's messages (a NICE line is also mirrored by the org-wide RingCentral connection)
    for callback in callbacks:
        callback()
    assert queued("integrations.nice_forward") == [[sorted(m.pk for m in on_nice)]]
    [[rc_ids]] = queued("integrations.ringcentral_mirror")
    assert set(rc_ids) == {*(m.pk for m in on_nice), rc_in.pk, rc_out.pk}


@pytest.mark.django_db
def test_processor_is_one_query_whatever_the_batch_size(org, fake_nice, django_assert_num_queries):
    nice, _ = nice_line(org, fake_nice, flag=False)
    small, big = [inbound(nice)], [inbound(nice) for _ in range(40)]
    for batch in (small, big):
        with django_assert_num_queries(1):
            integrations_dispatch(_events(batch))


@pytest.mark.django_db
def test_events_without_an_organization_are_looked_up_by_message(org, fake_nice, django_capture_on_commit_callbacks):
    nice, _ = nice_line(org, fake_nice, flag=False)
    m = inbound(nice)
    with django_capture_on_commit_callbacks(execute=True):
        integrations_dispatch(_events([m], with_org=False) + _events([inbound(LineFactory())], with_org=False))
    assert queued("integrations.nice_forward") == [[[m.pk]]]


def test_groups_keep_conversations_together():
    rows = [(i, i // 30) for i in range(100)] + [(1000 + i, 99) for i in range(120)]  # 30, 30, 30, 10, 120
    groups = groups_by_conversation(rows)
    assert sorted(i for g in groups for i in g) == sorted(i for i, _ in rows)
    assert all(len(g) <= TASK_GROUP_SIZE for g in groups)
    # a conversation that fits in a group is never split across two tasks
    owner = {mid: n for n, g in enumerate(groups) for mid in g}
    for conv in range(4):
        assert len({owner[mid] for mid, c in rows if c == conv}) == 1
    assert len({owner[mid] for mid, c in rows if c == 99}) == 3  # 120 messages: 50 + 50 + 20


@pytest.mark.django_db(transaction=True)
def test_drain_hands_received_and_sent_messages_to_the_tasks(org, fake_rc):
    rc_connection(org, fake_rc)
    m = inbound(LineFactory(organization=org))
    out = outbound(m.conversation, status=S.SENDING)
    messages_apply_statuses(updates=[StatusUpdate(out.pk, S.SENT)])  # writes message.sent
    events_drain()
    ids = {i for [group] in queued("integrations.ringcentral_mirror") for i in group}
    assert ids == {m.pk, out.pk}


# ------------------------------------------------------------------------------------------ secrets
@pytest.mark.django_db
def test_reprs_mask_tokens(org, fake_nice, fake_rc):
    line, conn = nice_line(org, fake_nice, flag=False)
    rc = rc_connection(org, fake_rc)
    for obj in (conn, rc):
        assert fake_nice.token not in repr(obj) and fake_nice.token not in str(obj)
        assert "••••" in repr(obj)
    client = NiceClient(fake_nice.url, "s3cr3t-token")
    assert "s3cr3t" not in repr(client)


@pytest.mark.django_db(transaction=True)
def test_partner_errors_and_logs_carry_no_token(org, fake_nice, caplog):
    line, conn = nice_line(org, fake_nice, flag=True)
    NiceConnection.objects.filter(pk=conn.pk).update(access_token="wrong-s3cr3t")  # noqa: S106
    with pytest.raises(PartnerError) as caught:
        nice_messages_forward(message_ids=[inbound(line).pk])
    assert caught.value.status == 401 and "s3cr3t" not in str(caught.value)
    # a poll failing with the bad token logs a warning without it
    NiceConnection.objects.filter(pk=conn.pk).update(access_token=fake_nice.token)
    nice_messages_forward(message_ids=[inbound(line).pk])
    NiceConnection.objects.filter(pk=conn.pk).update(access_token="wrong-s3cr3t")  # noqa: S106
    from integrations.models import NiceChat

    chat = NiceChat.objects.get()
    with caplog.at_level(logging.DEBUG):
        outcome = nice_chat_poll(chat_id=chat.pk, handover=chat.poll_lease_token)
    assert outcome.polled and outcome.next_token
    assert "failed" in caplog.text and "s3cr3t" not in caplog.text


@pytest.mark.django_db
def test_admin_never_shows_tokens(org, fake_nice, fake_rc, client):
    admin_user = UserFactory(username="root@parley.test", is_staff=True, is_superuser=True)
    MembershipFactory(organization=org, user=admin_user)
    client.force_login(admin_user)
    line, conn = nice_line(org, fake_nice, flag=False)
    rc = rc_connection(org, fake_rc)
    NiceConnection.objects.filter(pk=conn.pk).update(access_token="nice-s3cr3t")  # noqa: S106
    RingCentralConnection.objects.filter(pk=rc.pk).update(bot_token="rc-s3cr3t")  # noqa: S106
    pages = [
        "/admin/integrations/niceconnection/",
        f"/admin/integrations/niceconnection/{conn.pk}/change/",
        "/admin/integrations/ringcentralconnection/",
        f"/admin/integrations/ringcentralconnection/{rc.pk}/change/",
        "/admin/integrations/niceconnection/add/",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert b"s3cr3t" not in response.content, url
    # saving the form with the token left empty keeps the stored token
    data = {
        "organization": org.pk,
        "line": line.pk,
        "base_url": fake_nice.url,
        "point_of_contact": "poc-9",
        "poll_timeout_seconds": 20,
        "is_active": "on",
        "new_token": "",
    }
    response = client.post(f"/admin/integrations/niceconnection/{conn.pk}/change/", data)
    assert response.status_code == 302
    conn.refresh_from_db()
    assert (conn.point_of_contact, conn.access_token) == ("poc-9", "nice-s3cr3t")
    client.post(f"/admin/integrations/niceconnection/{conn.pk}/change/", {**data, "new_token": "rotated"})
    conn.refresh_from_db()
    assert conn.access_token == "rotated"  # noqa: S105
