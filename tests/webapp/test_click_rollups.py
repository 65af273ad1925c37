"""The click rollups (shortener/services/rollups.py) that a blast's report and the organization's report read
instead of the blast's links and clicks: through the real writers (links made by the send pipeline's link
step, clicks through the redirect and the batch writer, a pasted link attributed by the post-processing
drain, a contact's erasure), replayed and re-drained, the report's click figures equal the same figures
counted from the clicks and links themselves, bots excluded; the backfill rebuilds them; the API agrees."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from messaging import reports as message_reports
from messaging.models import Message
from messaging.status import MessageStatus as S
from organizations.models import ApiKeyScope
from organizations.services import api_key_create
from postprocessing.services import events_drain
from shortener import conf, selectors, services
from shortener.cache import redis_client
from shortener.clicks import clicks_flush
from shortener.models import BlastClicker, BlastLinkRollup, Click, ClickRollup, Link
from shortener.services import LinkItem, links_shorten_for_messages
from shortener.services.links import links_redact_for_contact
from shortener.services.rollups import click_rollups_rebuild
from tests.messages import blast_with_messages, move, redrain_all  # noqa: F401  (fixture)
from webapp import reports as web_reports

pytestmark = pytest.mark.django_db

SHORT_HOST = "prly.localhost:8000"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
ANDROID = "Mozilla/5.0 (Linux; Android 13; SM-S901B) AppleWebKit/537.36 Chrome/112.0 Mobile Safari/537.36"
PREVIEW = "WhatsApp/2.23.20.0"  # a link preview fetcher: a bot click


@pytest.fixture(autouse=True)
def _short_keys(settings):
    # our own Redis keys (REDIS_KEY_PREFIX is per engineer), emptied: nothing else's clicks in our buffer
    settings.SHORT_LINK_DOMAIN = SHORT_HOST
    settings.REDIS_KEY_PREFIX = f"{settings.REDIS_KEY_PREFIX}-tests"
    keys = list(redis_client().scan_iter(f"{conf.redis_key_prefix()}:*", count=1000))
    if keys:
        redis_client().delete(*keys)


def _click(code: str, user_agent: str = IPHONE, ip: str = "198.51.100.7") -> None:
    assert Client(HTTP_HOST=SHORT_HOST).get(f"/{code}", HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip).status_code == 302


def _flush(replay: list[bytes] = ()) -> list[bytes]:  # type: ignore[assignment]
    """Write the buffered clicks, with `replay`: entries written already, handed to the writer again in
    the same batch (a crash between its commit and trimming the buffer). Returns the entries written."""
    key = conf.clicks_buffer_key()
    if replay:
        redis_client().rpush(key, *replay)
    entries = redis_client().lrange(key, 0, -1)
    clicks_flush()
    return entries


def _truth(blast, org, start, bucket):
    """The click figures counted from the clicks and links themselves, as the reports read them before the
    rollups: human clicks and bot clicks apart, unique clickers = contacts with a human click on a link of
    the blast, top links by target URL, the organization's clicks per day in its time zone."""
    links = list(Link.objects.filter(blast=blast))
    clicks = list(Click.objects.filter(link__organization=org).select_related("link"))
    mine = [c for c in clicks if c.link.blast_id == blast.pk]
    humans = [c for c in mine if not c.is_bot]
    buckets: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for c in mine:
        buckets[math.floor((c.clicked_at - start).total_seconds() / bucket)][int(c.is_bot)] += 1
    targets: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for link in links:
        targets[link.target_url][0] += 1
    for c in mine:
        cell = targets[c.link.target_url]
        cell[3 if c.is_bot else 1] += 1
        cell[2] += int(c.is_unique)
    days: dict = defaultdict(lambda: [0, 0])
    zone = ZoneInfo(org.time_zone)
    for c in clicks:
        days[c.clicked_at.astimezone(zone).date()][int(c.is_bot)] += 1
    return {
        "links": len(links),
        "clicks": len(humans),
        "bot_clicks": len(mine) - len(humans),
        "unique_clickers": len({c.link.contact_id for c in humans if c.link.contact_id}),
        "buckets": {k: tuple(v) for k, v in buckets.items()},
        "top": sorted(
            (
                {"target_url": t, "links": v[0], "clicks": v[1], "unique_clicks": v[2], "bot_clicks": v[3]}
                for t, v in targets.items()
            ),
            key=lambda r: (-r["clicks"], r["target_url"]),
        ),
        "days": {k: tuple(v) for k, v in days.items()},
    }


def _from_rollups(blast, org, start, bucket):
    totals = selectors.blast_click_totals(blast=blast)
    return {
        "links": totals["links"],
        "clicks": totals["clicks"],
        "bot_clicks": totals["bot_clicks"],
        "unique_clickers": totals["unique_clickers"],
        "buckets": selectors.blast_click_buckets(blast_id=blast.pk, start=start, bucket_seconds=bucket),
        "top": selectors.blast_top_links(blast_id=blast.pk),
        "days": selectors.organization_click_days(
            organization_id=org.pk, time_zone=org.time_zone, since=timezone.now() - timedelta(days=30)
        ),
    }


def _rollup_rows():
    return (
        sorted(
            ClickRollup.objects.exclude(clicks=0, bot_clicks=0).values_list(
                "id", "blast_id", "slot", "clicks", "bot_clicks"
            )
        ),
        sorted(
            BlastLinkRollup.objects.values_list("id", "target_url", "links", "clicks", "unique_clicks", "bot_clicks")
        ),
        sorted(BlastClicker.objects.values_list("id", "blast_id", "contact_id")),
    )


def test_the_report_click_figures_from_the_rollups_equal_the_clicks_themselves(
    org,
    blast_with_messages,  # noqa: F811  (the fixture imported above)
    django_capture_on_commit_callbacks,
):
    # given: a blast of 4 whose messages got their links from the send pipeline's link step (two URLs each)
    org.time_zone = "America/New_York"
    org.save()
    blast, msgs = blast_with_messages(4, status=S.SENDING)
    with django_capture_on_commit_callbacks(execute=True):
        links_shorten_for_messages(
            organization_id=org.pk,
            items=[
                LinkItem(m.id, m.contact_id, blast.pk, "Sale https://shop.example/sale and https://shop.example/faq")
                for m in msgs
            ],
        )
        # a link made by hand (API), clicked before it is pasted into a message of the blast, and one of no blast
        pasted = services.link_create(organization_id=org.pk, target_url="https://shop.example/pasted")
        loose = services.link_create(organization_id=org.pk, target_url="https://elsewhere.example/")
    link = {(x.message_id, x.target_url.rsplit("/", 1)[1]): x.code for x in Link.objects.filter(blast=blast)}
    a, b, c, d = msgs
    # when: clicks — a clicks sale twice and faq once, b sale once (from two phones), c only previewed by a
    # bot, nobody for d; the pasted link twice by people and once by a bot; the loose link once
    for code, ua, ip in (
        (link[(a.id, "sale")], IPHONE, "198.51.100.1"),
        (link[(a.id, "sale")], IPHONE, "198.51.100.1"),
        (link[(a.id, "faq")], IPHONE, "198.51.100.1"),
        (link[(b.id, "sale")], IPHONE, "198.51.100.2"),
        (link[(b.id, "sale")], ANDROID, "198.51.100.3"),
        (link[(c.id, "sale")], PREVIEW, "203.0.113.9"),
        (pasted.code, IPHONE, "198.51.100.4"),
        (pasted.code, ANDROID, "198.51.100.5"),
        (pasted.code, PREVIEW, "203.0.113.9"),
        (loose.code, IPHONE, "198.51.100.6"),
    ):
        _click(code, ua, ip)
    first = _flush()
    _flush(replay=first)  # the same batch again: nothing new
    # the pasted link goes out in d's message: the drain's link attribution gives it to the blast (with its clicks)
    Message.objects.filter(pk=d.pk).update(rendered_body=f"More: http://{SHORT_HOST}/{pasted.code}")
    move([d], S.SENT)
    events_drain()
    # more clicks after the attribution, replayed again; then every event handed to the processors again
    _click(pasted.code, IPHONE, "198.51.100.4")
    _click(link[(d.id, "faq")], ANDROID, "198.51.100.8")
    _flush(replay=first)  # new clicks and old ones in one batch: only the new count
    redrain_all()
    # and b is erased: the targets of b's links lose their path (their clicks stay), so the top links move
    links_redact_for_contact(organization_id=org.pk, contact_id=b.contact_id)

    # then: every click figure of the reports, from the rollups, equals the count from the rows themselves
    start = message_reports.slot_start(timezone.now() - timedelta(hours=1))
    truth = _truth(blast, org, start, 60)
    assert truth["clicks"] == 9 and truth["bot_clicks"] == 2 and truth["unique_clickers"] == 3  # a, b, d
    assert truth["links"] == 9 and any(t["target_url"] == "https://shop.example/" for t in truth["top"])
    for bucket in (10, 60, 3600):
        assert _from_rollups(blast, org, start, bucket) == _truth(blast, org, start, bucket)
    # the backfill finds nothing to change: the same rows, with the same ids
    before = _rollup_rows()
    assert click_rollups_rebuild(organization_id=org.pk) == 0
    assert _rollup_rows() == before
    # and builds them from nothing (clicks from before the rollups)
    ClickRollup.objects.all().delete()
    BlastLinkRollup.objects.all().delete()
    BlastClicker.objects.all().delete()
    assert click_rollups_rebuild(organization_id=org.pk) > 0
    assert _from_rollups(blast, org, start, 60) == truth

    # the web report and the API's click report give the same figures
    blast.delivered_count = 4
    blast.save()
    api = APIClient()
    key = api_key_create(organization=org, name="t", scope=ApiKeyScope.SHORTENER).raw_key
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    from_api = api.get(f"/api/v1/blasts/{blast.pk}/clicks").json()
    summary = dict(web_reports.blast_report(blast=blast, organization=org).summary)
    assert from_api["clicks"] == 9 and summary["Clicks"] == "9"
    assert from_api["unique_clickers"] == 3 and summary["Unique clicks"] == "3"
    assert from_api["bot_clicks"] == 2 and summary["Bot clicks (excluded)"] == "2"
    assert from_api["click_through_rate"] == 0.75 and summary["Click-through rate"] == "75.0 %"
    assert from_api["links"] == 9 and from_api["messages_with_links"] == 4
