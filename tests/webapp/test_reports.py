"""The web app's blast list and reports (issue 16): state and progress, a blast's figures (by status,
delivered over time, failures by error code, clicks, unique clicks, CTR, bots excluded, top links), the
organization's report, CSV exports, pinned query counts and the organization wall."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.models import BlastStatus, Direction, OptOut
from messaging.processors.blast import blasts_recount
from messaging.status import MessageStatus as S
from shortener.models import Click, Link
from shortener.services.rollups import click_rollups_rebuild
from tests import factories

pytestmark = pytest.mark.django_db


def _message(blast, status, *, contact=None, **fields):
    conversation = factories.ConversationFactory(
        organization=blast.organization,
        line=blast.line,
        contact=contact or factories.ContactFactory(organization=blast.organization),
    )
    return factories.MessageFactory(conversation=conversation, blast=blast, status=status, **fields)


def _running_blast(org):
    """A blast launched 9 minutes ago: 4 delivered, 2 failed (two codes), 1 undelivered, 1 blocked,
    1 sent, 1 recipient not prepared yet; links with human and bot clicks."""
    now = timezone.now()
    launched = now - timedelta(minutes=9)
    blast = factories.BlastFactory(
        organization=org,
        status=BlastStatus.SENDING,
        launched_at=launched,
        recipient_count=10,
        sent_count=6,
        delivered_count=4,
        failed_count=2,
        name="Spring sale",
    )
    delivered = [
        _message(blast, S.DELIVERED, delivered_at=launched + timedelta(minutes=m), sent_at=launched)
        for m in (1, 1, 2, 6)
    ]
    _message(blast, S.FAILED, error_code="30003", error_reason="Unreachable", failed_at=launched + timedelta(minutes=2))
    _message(blast, S.FAILED, error_code="30007", error_reason="Filtered", failed_at=launched + timedelta(minutes=3))
    _message(blast, S.UNDELIVERED, error_code="30003", failed_at=launched + timedelta(minutes=4))
    _message(blast, S.BLOCKED, error_code="opted_out")
    _message(blast, S.SENT)
    sale = [
        Link.objects.create(
            organization=org,
            code=f"s{m.pk}",
            target_url="https://shop.example/sale",
            blast=blast,
            message=m,
            contact=m.contact,
        )
        for m in delivered
    ]
    terms = Link.objects.create(
        organization=org, code="terms1", target_url="=cmd|' /C calc'!A0", blast=blast, message=delivered[0]
    )
    for link, humans, bots in ((sale[0], 2, 1), (sale[1], 1, 0), (terms, 1, 3)):
        link.click_count, link.bot_click_count, link.unique_click_count = humans, bots, min(humans, 1)
        link.save()
        for i in range(humans + bots):
            Click.objects.create(
                link=link, uid=f"{link.code}-{i}", clicked_at=launched + timedelta(minutes=5), is_bot=i >= humans
            )
    # what post-processing does after the carrier's reports: counters and the rollup the report reads
    blasts_recount(blast_ids=[blast.pk])
    # the click rollups the report reads, kept by the link and click writers, here built by their backfill
    # from the rows written above (tests/shortener/test_click_rollups.py drives the writers themselves)
    click_rollups_rebuild(organization_id=org.pk)
    return blast


def test_blast_list_shows_state_and_progress_newest_first_one_query_for_the_rows(
    agent, org, other_org, django_assert_num_queries
):
    # given
    draft = factories.BlastFactory(organization=org, name="Draft one")
    running = _running_blast(org)
    factories.BlastFactory(organization=other_org, name="Not ours")
    agent.get("/blasts/")
    # when: session, user, membership, the page of blasts (with line and quiet-hours deferrals)
    with django_assert_num_queries(4):
        response = agent.get("/blasts/")
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert html.index("Spring sale") < html.index("Draft one")
    assert f'href="/blasts/{draft.pk}/review/"' in html and f'href="/blasts/{running.pk}/"' in html
    # done: 6 accepted by the carrier + 2 failed + 1 opted out, of 10 recipients
    assert 'value="90"' in html and "9 of 10 · 4 delivered" in html
    assert "Not ours" not in html


def test_a_canceled_blasts_unprepared_recipients_are_not_sent_not_waiting(agent, org):
    # given: a blast canceled after 9 of its 10 recipients had their message
    blast = _running_blast(org)
    blast.status = BlastStatus.CANCELED
    blast.save(update_fields=["status"])
    # then: the tenth is shown as never to be sent, not as "not prepared yet"
    html = agent.get(f"/blasts/{blast.pk}/").content.decode()
    assert "not sent: blast canceled: 1" in html and "not prepared yet" not in html


def test_blast_report_shows_every_figure_with_a_pinned_query_count(agent, org, django_assert_num_queries):
    blast = _running_blast(org)
    agent.get("/blasts/")
    # session, user, membership, the blast, its messages aggregated, click totals, clicks over time, top links
    # (the last four on rollups: the same count for any number of recipients)
    with django_assert_num_queries(8):
        response = agent.get(f"/blasts/{blast.pk}/")
    html = response.content.decode()
    assert response.status_code == 200
    # counts by status (and the recipient not prepared yet), drawn as SVG
    assert html.count('<svg class="chart"') == 5
    for label in ("Delivered: 4", "Failed: 2", "Undelivered: 1", "Blocked: 1", "Sent: 1", "not prepared yet: 1"):
        assert label in html
    # failures by carrier error code: 30003 twice (failed + undelivered), 30007 once
    assert "30003: 2" in html and "30007: 1" in html
    # clicks: 4 human, unique clickers 2 contacts with a click (terms has no contact), CTR 2/4, bots apart
    assert "<dt>Clicks</dt><dd>4</dd>" in html
    assert "<dt>Unique clicks</dt><dd>2</dd>" in html
    assert "<dt>Click-through rate</dt><dd>50.0 %</dd>" in html
    assert "<dt>Bot clicks (excluded)</dt><dd>4</dd>" in html
    assert "https://shop.example/sale: 3" in html  # top link by human clicks
    # a running blast refreshes its figures, and can be canceled (with CSRF)
    assert 'hx-trigger="every 5s"' in html and 'id="cancel"' in html and "csrfmiddlewaretoken" in html
    # the aggregates are read once per REPORT_CACHE_SECONDS however many tabs poll: the next view reads the blast
    with django_assert_num_queries(4):
        again = agent.get(f"/blasts/{blast.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="report")
    assert "Delivered: 4" in again.content.decode() and 'id="as-of"' in again.content.decode()


def test_the_report_refresh_answers_only_the_report(agent, org):
    blast = _running_blast(org)
    response = agent.get(f"/blasts/{blast.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="report")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html and "Messages by status" in html


def test_delivered_over_time_counts_each_bucket_and_a_running_total(agent, org):
    blast = _running_blast(org)  # spanning 9 minutes: buckets of 10 s
    body = agent.get(f"/blasts/{blast.pk}/report.csv", {"table": "delivered"}).content.decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == ["Time", "Delivered", "Failed", "Delivered (total)", "Failed (total)"]
    data = rows[1:]
    assert sum(int(r[1]) for r in data) == 4 and sum(int(r[2]) for r in data) == 3
    assert data[-1][3:] == ["4", "3"]
    # minute 1 (bucket 6 of 10 s) holds two deliveries
    assert data[6][1] == "2"


def test_csv_exports_the_whole_report_or_one_table_formulas_defused(agent, org):
    blast = _running_blast(org)
    whole = agent.get(f"/blasts/{blast.pk}/report.csv")
    assert whole.status_code == 200 and whole["Content-Type"].startswith("text/csv")
    assert f'filename="blast-{blast.pk}-report.csv"' in whole["Content-Disposition"]
    text = whole.content.decode()
    for title in ("Messages by status", "Delivered over time", "Failures by carrier error code", "Clicks over time"):
        assert title in text
    links = list(csv.reader(io.StringIO(agent.get(f"/blasts/{blast.pk}/report.csv?table=links").content.decode())))
    assert links[0] == ["Link", "Recipients' links", "Clicks", "Unique clicks", "Bot clicks"]
    assert links[1] == ["https://shop.example/sale", "4", "3", "2", "1"]
    assert links[2][0] == "'=cmd|' /C calc'!A0"  # a spreadsheet would have run it
    failures = list(
        csv.reader(io.StringIO(agent.get(f"/blasts/{blast.pk}/report.csv?table=failures").content.decode()))
    )
    assert failures[1:] == [["30003", "1", "1"], ["30007", "1", "0"]]
    assert agent.get(f"/blasts/{blast.pk}/report.csv?table=nope").status_code == 404


def test_another_organizations_blast_is_404_everywhere_and_unchanged(agent, other_org):
    theirs = _running_blast(other_org)
    draft = factories.BlastFactory(organization=other_org)
    for url in (f"/blasts/{theirs.pk}/", f"/blasts/{theirs.pk}/report.csv", f"/blasts/{draft.pk}/review/"):
        assert agent.get(url).status_code == 404, url
    assert agent.get(f"/blasts/{draft.pk}/edit/").status_code == 404
    assert agent.post(f"/blasts/{theirs.pk}/cancel/").status_code == 404
    assert agent.post(f"/blasts/{draft.pk}/launch/").status_code == 404
    assert agent.post(f"/blasts/{draft.pk}/delete/").status_code == 404
    assert agent.post(f"/blasts/{draft.pk}/edit/", {"body": "x"}).status_code == 404
    theirs.refresh_from_db()
    draft.refresh_from_db()
    assert theirs.status == BlastStatus.SENDING and draft.status == BlastStatus.DRAFT


def test_pages_need_a_sign_in(client, org):
    blast = factories.BlastFactory(organization=org, status=BlastStatus.SENDING)
    for url in ("/blasts/", f"/blasts/{blast.pk}/", "/reports/", "/reports/report.csv"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url


def test_organization_report_per_day_per_line_opt_outs_and_clicks(agent, org, django_assert_num_queries):
    # given: two lines; messages today and 3 days ago; an opt-out; clicks (one by a bot)
    org.time_zone = "America/New_York"
    org.save()
    now = timezone.now()
    a = factories.LineFactory(organization=org, name="Front desk")
    b = factories.LineFactory(organization=org, name="Sales")
    for line, status in ((a, S.DELIVERED), (a, S.DELIVERED), (a, S.FAILED), (a, S.UNDELIVERED), (b, S.SENT)):
        factories.MessageFactory(conversation=factories.ConversationFactory(organization=org, line=line), status=status)
    old = factories.MessageFactory(
        conversation=factories.ConversationFactory(organization=org, line=b), status="delivered"
    )
    old.created_at = now - timedelta(days=3)
    old.save()
    factories.MessageFactory(
        conversation=factories.ConversationFactory(organization=org, line=a),
        direction=Direction.INBOUND,
        status="received",
    )
    OptOut.objects.create(organization=org, phone_number="+15125550100", source="keyword")
    link = Link.objects.create(organization=org, code="org1", target_url="https://ex.com/")
    for i, bot in enumerate((False, False, True)):
        Click.objects.create(link=link, uid=f"org1-{i}", clicked_at=now, is_bot=bot)
    click_rollups_rebuild(organization_id=org.pk)
    other = factories.OrganizationFactory()
    factories.MessageFactory(conversation=factories.ConversationFactory(organization=other), status="delivered")
    agent.get("/blasts/")
    # when: session, user, membership, messages per day/line/status, opt-outs, clicks, line names
    with django_assert_num_queries(7):
        response = agent.get("/reports/")
    with django_assert_num_queries(3):  # within REPORT_CACHE_SECONDS: session, user, membership
        agent.get("/reports/")
    html = response.content.decode()
    # then
    assert response.status_code == 200 and html.count('<svg class="chart"') == 4
    assert "<dt>Messages sent</dt><dd>6</dd>" in html and "<dt>Messages received</dt><dd>1</dd>" in html
    assert "<dt>Opt-outs</dt><dd>1</dd>" in html and "<dt>Clicks</dt><dd>2</dd>" in html
    # delivery rate per line: a: 2 delivered of 3 accepted (failed never reached the carrier); b: 1 of 2
    lines = list(csv.reader(io.StringIO(agent.get("/reports/report.csv?table=lines").content.decode())))
    assert lines[1:] == [
        [str(a), "3", "2", "2", "66.7"],
        [str(b), "2", "1", "0", "50.0"],
    ]
    days = list(csv.reader(io.StringIO(agent.get("/reports/report.csv?table=messages").content.decode())))
    assert len(days) == 31 and days[0][0] == "Day"
    column = days[0].index("Delivered")
    assert sum(int(r[column]) for r in days[1:]) == 3  # the other organization's delivered is not here
    assert [r[column] for r in days[1:] if r[column] != "0"] == ["1", "2"]  # 3 days ago, today
    clicks = list(csv.reader(io.StringIO(agent.get("/reports/report.csv?table=clicks").content.decode())))
    assert clicks[-1][1:] == ["2", "1"]
