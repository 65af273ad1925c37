"""The ways in: POST /api/v1/lines/{id}/backfill-statuses + GET /api/v1/backfill-runs/{id}, the Celery
task, the Line admin action and manage.py backfill_statuses."""

from __future__ import annotations

import json
import time
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from backfill.models import BackfillRun, RunState
from backfill.tasks import run_backfill
from carriers.sandbox.state import new_batch_id
from messaging.models import Message
from messaging.status import MessageStatus as S
from organizations.auth import ApiKeyRateThrottle
from organizations.models import Role
from organizations.services import api_key_create
from tests import factories


@pytest.fixture(autouse=True)
def _configured_throttle(db, monkeypatch):
    # API-key throttle counters live in Redis keyed by key id, and ids repeat across tests: start clean,
    # as tests/api does. And at the configured rate: a test elsewhere that lowers the class attribute
    # and restores it wrongly must not make these fail.
    cache.clear()
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"])


def api_for(org) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(organization=org, name='k').raw_key}")
    return client


def test_api_starts_a_run_that_the_task_executes(org, make_line, stuck, sandbox, django_capture_on_commit_callbacks):
    # given
    line = make_line(org)
    message = stuck(line, batch_id=new_batch_id())
    api = api_for(org)
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post(f"/api/v1/lines/{line.id}/backfill-statuses", {"dry_run": False}, format="json")
    # then: 202 with the run; the task is enqueued only after commit
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["state"] == "pending" and body["url"].endswith(f"/api/v1/backfill-runs/{body['id']}")
    assert len(callbacks) == 1
    run_backfill(body["id"])  # what the bulk worker runs
    assert Message.objects.get(pk=message.pk).status == S.DELIVERED
    progress = api.get(f"/api/v1/backfill-runs/{body['id']}").json()
    assert progress["state"] == "succeeded" and progress["progress"] == 1.0
    assert progress["counts"]["updated"] == {"delivered": 1} and progress["line"] == line.id


def test_api_passes_options_through(org, make_line, sandbox, django_capture_on_commit_callbacks):
    line = make_line(org)
    response = api_for(org).post(
        f"/api/v1/lines/{line.id}/backfill-statuses",
        {"status": ["sent", "unknown"], "limit": 10, "dry_run": True, "rate": 5, "since": "2026-01-01T00:00:00Z"},
        format="json",
    )
    assert response.status_code == 202
    options = BackfillRun.objects.get(pk=response.json()["id"]).options
    assert options["statuses"] == ["sent", "unknown"] and options["limit"] == 10 and options["dry_run"] is True
    assert options["rate"] == 5 and options["since"].startswith("2026-01-01")


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"status": ["delivered"]}, "status.0"),
        ({"rate": 0}, "rate"),
        ({"limit": 0}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
    ],
)
def test_api_bad_input_is_a_400_naming_the_field(payload, field, org, make_line, sandbox):
    line = make_line(org)
    response = api_for(org).post(f"/api/v1/lines/{line.id}/backfill-statuses", payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert not BackfillRun.objects.exists()


def test_api_is_tenant_scoped(org, other_org, make_line, sandbox):
    mine, theirs = make_line(org), make_line(other_org)
    their_run = BackfillRun.objects.create(organization=other_org, line=theirs)
    api = api_for(org)

    assert api.post(f"/api/v1/lines/{theirs.id}/backfill-statuses", {}, format="json").status_code == 404
    assert api.get(f"/api/v1/backfill-runs/{their_run.id}").status_code == 404
    assert not BackfillRun.objects.filter(line=theirs).exclude(pk=their_run.pk).exists()
    assert api.post(f"/api/v1/lines/{mine.id}/backfill-statuses", {}, format="json").status_code == 202
    assert APIClient().get(f"/api/v1/backfill-runs/{their_run.id}").status_code == 401


def test_only_admins_start_a_run_members_may_read_it(org, make_line, sandbox):
    line = make_line(org)
    run = BackfillRun.objects.create(organization=org, line=line)
    agent = APIClient()
    agent.force_login(factories.MembershipFactory(organization=org, role=Role.AGENT).user)

    assert agent.post(f"/api/v1/lines/{line.id}/backfill-statuses", {}, format="json").status_code == 403
    assert agent.get(f"/api/v1/backfill-runs/{run.id}").status_code == 200


def test_line_admin_action_starts_one_run_per_line(
    org, make_line, sandbox, admin_client, django_capture_on_commit_callbacks
):
    lines = [make_line(org), make_line(org)]

    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(
            "/admin/messaging/line/",
            {
                "action": "backfill_statuses",
                "_selected_action": [line.pk for line in lines],
            },
            follow=True,
        )

    assert response.status_code == 200
    assert "Backfill started" in response.content.decode()
    assert sorted(BackfillRun.objects.values_list("line_id", flat=True)) == sorted(line.pk for line in lines)
    assert len(callbacks) == 2
    run = BackfillRun.objects.first()
    assert admin_client.get(f"/admin/backfill/backfillrun/{run.pk}/change/").status_code == 200
    assert admin_client.get("/admin/backfill/backfillrun/").status_code == 200


def test_command_by_line_number_prints_a_summary(org, make_line, stuck, sandbox):
    line = make_line(org)
    message = stuck(line, batch_id=new_batch_id())
    out = StringIO()

    call_command("backfill_statuses", "--line", line.phone_number, "--no-progress", "--json", stdout=out)

    summary = json.loads(out.getvalue())
    assert summary["updated"] == {"delivered": 1} and summary["checked"] == 1 and summary["state"] == "succeeded"
    assert Message.objects.get(pk=message.pk).status == S.DELIVERED
    assert BackfillRun.objects.get(pk=summary["run"]).state == RunState.SUCCEEDED


def test_command_dry_run_with_progress_bar(org, make_line, stuck, sandbox):
    line = make_line(org)
    message = stuck(line, batch_id=new_batch_id())
    out, err = StringIO(), StringIO()

    call_command("backfill_statuses", "--line", str(line.id), "--dry-run", stdout=out, stderr=err)

    assert "would update 1 (delivered 1)" in out.getvalue()
    assert "backfill run" in err.getvalue()  # the tqdm bar
    assert Message.objects.get(pk=message.pk).status == S.SENT


def test_command_all_lines_needs_an_organization(org, make_line, stuck, sandbox):
    with pytest.raises(CommandError, match="--organization"):
        call_command("backfill_statuses", "--all-lines")
    line = make_line(org)
    message = stuck(line, batch_id=new_batch_id())
    call_command("backfill_statuses", "--all-lines", "--organization", str(org.id), "--no-progress", stdout=StringIO())
    assert Message.objects.get(pk=message.pk).status == S.DELIVERED


def test_command_refuses_bad_arguments(org, make_line, sandbox):
    line = make_line(org)
    with pytest.raises(CommandError, match="--line: no line"):
        call_command("backfill_statuses", "--line", "999999")
    with pytest.raises(CommandError, match="--status"):
        call_command("backfill_statuses", "--line", str(line.id), "--status", "delivered")
    with pytest.raises(CommandError, match="--since"):
        call_command("backfill_statuses", "--line", str(line.id), "--since", "last tuesday")


@pytest.mark.worker
def test_a_real_bulk_worker_runs_the_backfill_the_api_started(
    celery_worker_proc,
    org,
    make_line,
    stuck,
    sandbox,
):
    # given: a worker on the bulk queue only (the "backfill." route), a stuck message
    celery_worker_proc.start(queues="bulk", concurrency=1)
    line = make_line(org)
    message = stuck(line, batch_id=new_batch_id())
    api = api_for(org)
    # when
    response = api.post(f"/api/v1/lines/{line.id}/backfill-statuses", {}, format="json")
    assert response.status_code == 202, response.content
    run_id = response.json()["id"]
    # then
    # Poll the row, not the API: two requests per key keep this test clear of any throttle setting.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if BackfillRun.objects.filter(pk=run_id, state__in=["succeeded", "failed"]).exists():
            break
        time.sleep(0.1)
    body = api.get(f"/api/v1/backfill-runs/{run_id}").json()
    assert body["state"] == "succeeded", (body, celery_worker_proc.log())
    assert Message.objects.get(pk=message.pk).status == S.DELIVERED
    assert "backfill.run" in celery_worker_proc.log()
