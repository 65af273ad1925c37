"""Blasts in the browser (issue 16): compose a blast, confirm it and watch its report fill in while a real
Celery worker sends it through the sandbox carrier (Sinch's wire format on loopback, delivery reports posted
back to the served app); schedule and cancel another; the organization's report; another organization's
blast refused by URL; the report at phone width (375 px)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from config.queues import ALL_QUEUES
from messaging.models import Blast, BlastStatus, Message, MessageStatus
from tests import factories
from tests.worker import (  # noqa: F401  (celery_worker_proc: the fixture)
    celery_worker_proc,
    free_port,
    served_web,
    start_sandbox,
    stop_process,
)

from .conftest import screenshot, sign_in

pytestmark = [pytest.mark.slow, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

RECIPIENTS = 6


@pytest.fixture
def sandbox():
    proc = start_sandbox(
        "--delay-min", "0.2", "--delay-max", "1.5", "--duplicate-rate", "0", "--out-of-order-rate", "0"
    )
    yield proc
    stop_process(proc.proc)


def _summary(page, label: str):
    return page.locator(f'dl.summary div:has(dt:text-is("{label}")) dd')


def _smallest_chart_text_px(page) -> float:
    """The smallest rendered font size (CSS px on the screen) of the charts' shown texts: the font size
    times the scale the SVG's coordinate system is drawn at (a viewBox shrinks both)."""
    return page.evaluate(
        """Math.min(...Array.from(document.querySelectorAll('svg.chart text'))
            .filter(t => t.getBoundingClientRect().height > 0)
            .map(t => parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a))"""
    )


def test_compose_launch_watch_the_report_fill_in_cancel_and_walls(
    page,
    celery_worker_proc,  # noqa: F811
    sandbox,
    agent_user,
    org,
    other_org,
    settings,
    tmp_path,
):
    # given: a sandbox line, contacts, no quiet hours (the test must not depend on the clock)
    org.quiet_hours_enabled = False
    org.save()
    port = free_port()
    env = {"PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "SANDBOX_CARRIER_URL": sandbox.url}
    account = factories.CarrierAccountFactory(
        organization=org, provider="sandbox", config={"service_plan_id": "plan-blast", "api_token": "tok"}
    )
    line = factories.LineFactory(organization=org, carrier_account=account, name="Main")
    for name in ("Ada", "Grace", "Linus", "Margaret", "Alan", "Barbara"):
        factories.ContactFactory(organization=org, first_name=name)
    theirs = factories.BlastFactory(organization=other_org, status=BlastStatus.SENDING, name="Their secret blast")
    # with beat, as `make run` has it: the sweepers pick up a report whose wake-up was lost, and
    # the blast's counters are recounted every second
    celery_worker_proc.start(queues=ALL_QUEUES, env=env, beat=True)
    with served_web(port=port, REDIS_KEY_PREFIX=f"{settings.REDIS_KEY_PREFIX}-browser", **env) as app_url:
        sign_in(page, app_url, agent_user)
        # when: composing
        page.goto(f"{app_url}/blasts/")
        page.click("text=New blast")
        page.fill("input[name=name]", "Spring sale")
        page.select_option("select[name=line]", str(line.pk))
        page.fill("textarea[name=body]", "Hi {first_name}, our spring sale starts today! Reply STOP to opt out")
        # the live preview renders the body for a sample contact, with its segments
        page.locator("#compose-preview").filter(has_text="Hi Ada, our spring sale").wait_for(timeout=15_000)
        assert "1 segment" in page.inner_text("#compose-preview")
        screenshot(page, "blast-composer", tmp_path)
        page.click("#save")
        # then: the confirm step, with what a launch would do
        page.wait_for_url(f"{app_url}/blasts/*/review/")
        assert page.inner_text("#sendable") == str(RECIPIENTS)
        assert "none deferred" in page.inner_text("#quiet-hours")
        screenshot(page, "blast-review", tmp_path)
        page.click("#launch")
        blast = Blast.objects.get(organization=org, name="Spring sale")
        page.wait_for_url(f"{app_url}/blasts/{blast.pk}/")
        # the report fills in without a reload: every recipient delivered (generous: 2 loaded cores)
        _summary(page, "Delivered").filter(has_text=f"{RECIPIENTS} (100.0 % of sent)").wait_for(timeout=120_000)
        assert f"Delivered: {RECIPIENTS}" in page.inner_html("#part-status")
        screenshot(page, "blast-report", tmp_path)
        assert (
            Message.objects.filter(blast=blast, status=MessageStatus.DELIVERED).count() == RECIPIENTS
        )  # sent once each

        # the list shows it with its progress
        page.goto(f"{app_url}/blasts/")
        assert "Spring sale" in page.inner_text(f'li.blast[data-id="{blast.pk}"]')
        screenshot(page, "blasts", tmp_path)

        # the organization's report
        page.goto(f"{app_url}/reports/")
        assert "Delivery rate per line" in page.inner_text("main")
        screenshot(page, "report-organization", tmp_path)

        # schedule another for tomorrow, then cancel it
        page.goto(f"{app_url}/blasts/new/")
        page.fill("input[name=name]", "Tomorrow")
        page.fill("textarea[name=body]", "See you tomorrow")
        page.check("input[name=when][value=later]")
        tomorrow = (timezone.now() + timedelta(days=1)).astimezone(ZoneInfo(org.time_zone))
        page.fill("input[name=send_at]", tomorrow.strftime("%Y-%m-%dT%H:%M"))
        page.click("#save")
        page.wait_for_url(f"{app_url}/blasts/*/review/")
        assert "Confirm: schedule for" in page.inner_text("#launch")
        page.click("#launch")
        later = Blast.objects.get(organization=org, name="Tomorrow")
        page.wait_for_url(f"{app_url}/blasts/{later.pk}/")
        assert "Scheduled" in page.inner_text("#blast-state")
        page.click("text=Cancel blast…")
        page.click("#cancel")
        page.wait_for_url(f"{app_url}/blasts/{later.pk}/")
        assert "Canceled" in page.inner_text("#blast-state")
        later.refresh_from_db()
        assert later.status == BlastStatus.CANCELED and not Message.objects.filter(blast=later).exists()

        # another organization's blast: 404 by URL, nothing of it shown
        response = page.goto(f"{app_url}/blasts/{theirs.pk}/")
        assert response is not None and response.status == 404
        assert "Their secret blast" not in page.content()
        response = page.goto(f"{app_url}/blasts/{theirs.pk}/report.csv")
        assert response is not None and response.status == 404

        # phone width: nothing wider than the screen, and the charts' labels as large as on a desktop
        page.set_viewport_size({"width": 375, "height": 812})
        page.goto(f"{app_url}/blasts/{blast.pk}/")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        assert _smallest_chart_text_px(page) >= 11
        screenshot(page, "blast-report-phone", tmp_path)
        page.goto(f"{app_url}/reports/")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        assert _smallest_chart_text_px(page) >= 11
        screenshot(page, "report-organization-phone", tmp_path)
        page.goto(f"{app_url}/blasts/new/")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
