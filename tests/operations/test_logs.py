"""Logs as JSON lines with a request id: the middleware, the configured handler (settings.LOGGING: its
filters and formatter, as a deployment runs them), and the id carried into a real Celery worker's task
log lines."""

from __future__ import annotations

import io
import json
import logging
import time

import pytest
from django.conf import settings
from django.utils.module_loading import import_string

from integrations.fakes import FakeRingCentral
from integrations.models import RingCentralConnection, RingCentralTeam
from organizations.models import Role
from tests.factories import ConversationFactory, LineFactory, MembershipFactory, UserFactory
from tests.worker import celery_worker_proc, purge_queues  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def test_request_id_is_taken_when_plain_made_otherwise_and_returned(client):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a.1")["X-Request-ID"] == "lb-7f3a.1"
    made = client.get("/healthz")["X-Request-ID"]
    assert len(made) == 32 and int(made, 16) >= 0
    hostile = client.get("/healthz", HTTP_X_REQUEST_ID='x" injected\nline')["X-Request-ID"]
    assert hostile != 'x" injected\nline' and len(hostile) == 32


@pytest.fixture
def configured_handler():
    """The console handler exactly as settings.LOGGING builds it, writing to a buffer."""
    spec = settings.LOGGING["handlers"]["console"]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    for name in spec["filters"]:
        handler.addFilter(import_string(settings.LOGGING["filters"][name]["()"])())
    handler.setFormatter(import_string(settings.LOGGING["formatters"][spec["formatter"]]["()"])())
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


def test_a_requests_log_lines_are_json_with_its_id_and_no_secret(client, configured_handler):
    # a carrier callback to a secret nobody has: refused (404) and logged by the webhook view and by Django
    response = client.post(
        "/webhooks/sinch/not-a-real-secret-123/delivery",
        b"{}",
        content_type="application/json",
        HTTP_X_REQUEST_ID="req-42",
    )
    assert response.status_code == 404
    lines = [json.loads(line) for line in configured_handler.getvalue().splitlines()]
    ours = [line for line in lines if line.get("request_id") == "req-42"]
    assert ours, lines
    assert {"time", "level", "logger", "message", "request_id"} <= set(ours[0])
    assert "not-a-real-secret-123" not in configured_handler.getvalue()


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.worker
def test_the_request_id_follows_the_work_into_the_worker(org, admin_client, celery_worker_proc):  # noqa: F811
    with FakeRingCentral(bot_id="bot-1") as fake:
        # given: an organization mirrored into RingCentral, with one team
        conn = RingCentralConnection.objects.create(
            organization=org, base_url=fake.url, bot_token=fake.token, bot_creator_id="bot-1"
        )
        MembershipFactory(organization=org, role=Role.AGENT, user=UserFactory(username="agent@acme.test"))
        conv = ConversationFactory(organization=org, line=LineFactory(organization=org))
        team_id = fake.route("POST", "/team-messaging/v1/teams", {}, {"name": "t", "members": []})[1]["id"]
        RingCentralTeam.objects.create(
            organization=org, connection=conn, conversation=conv, team_id=team_id, member_emails=["agent@acme.test"]
        )
        purge_queues()  # the syncs the set-up itself enqueued (no request): the team is in step already
        celery_worker_proc.start(queues="default", concurrency=1)
        # when: an admin request changes a membership (its after-commit hook enqueues the team sync)
        member = MembershipFactory.build(organization=org, role=Role.AGENT, user=UserFactory(username="new@acme.test"))
        response = admin_client.post(
            "/admin/organizations/membership/add/",
            {"user": member.user.pk, "organization": org.pk, "role": Role.AGENT},
            HTTP_X_REQUEST_ID="admin-req-9",
        )
        assert response.status_code == 302, response.content[:500]
        # then: the worker's log line about that team carries the request's id
        _wait(lambda: "RingCentral team" in celery_worker_proc.log(), 60, "the sync's log line")
        lines = [json.loads(x) for x in celery_worker_proc.log().splitlines() if x.startswith("{")]
        synced = [x for x in lines if x["message"].startswith(f"RingCentral team {team_id}")]
        assert synced and synced[0]["request_id"] == "admin-req-9", lines
        assert synced[0]["task_name"] == "integrations.ringcentral_sync" and synced[0]["task_id"]
