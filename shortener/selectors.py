"""Reads of the shortener: the redirect's cache fill, link counts, click reports."""

from __future__ import annotations

import json
import math
import time

from django.db import connection
from django.db.models import Count, Sum

from . import conf
from .cache import NEGATIVE, link_payload, redis_client
from .models import BlastLinkRollup, Click, ClickRollup, Link


def link_for_redirect(*, code: str) -> dict | None:
    """The redirect's view of a link ({"i", "u", "f", "e"}), from the database."""
    row = Link.objects.filter(code=code).values_list("id", "target_url", "fallback_url", "expires_at").first()
    if row is None:
        return None
    link_id, target_url, fallback_url, expires_at = row
    return json.loads(
        link_payload(
            link_id=link_id,
            target_url=target_url,
            fallback_url=fallback_url or conf.default_fallback_url(),
            expires_at=expires_at,
        )
    )


def link_cache_fill(*, code: str) -> dict | None:
    """Cache miss: one query, then cache the link (or, briefly, that the code is unknown)."""
    data = link_for_redirect(code=code)
    client = redis_client()
    key = conf.link_cache_key(code)
    if data is None:
        client.set(key, NEGATIVE, ex=conf.NEGATIVE_CACHE_TTL_SECONDS)
        return None
    ttl = conf.CACHE_TTL_SECONDS
    if data["e"] is not None:
        # An expired link stays cached a day past its expiry (its fallback is still served from cache).
        ttl = max(60, min(ttl, int(data["e"] - time.time()) + 86400))
    client.set(key, json.dumps(data, separators=(",", ":")), ex=ttl)
    return data


def links_for_organization(*, organization_id: int):
    return Link.objects.filter(organization_id=organization_id)


def clicks_for_link(*, link: Link):
    return Click.objects.filter(link=link)


_BLAST_CLICK_TOTALS_SQL = """
SELECT COALESCE(sum(r.links), 0)::int, COALESCE(sum(r.clicks), 0)::int, COALESCE(sum(r.bot_clicks), 0)::int,
       (SELECT count(*) FROM shortener_blastclicker c WHERE c.blast_id = %(blast)s)::int
FROM shortener_blastlinkrollup r WHERE r.blast_id = %(blast)s
"""


def blast_click_totals(*, blast) -> dict:
    """Links, clicks (human), unique clickers (distinct contacts with a human click), bot clicks, and
    click-through rate = unique clickers / delivered messages (None before anything is delivered). One
    query on the blast's rollups (BlastLinkRollup, BlastClicker), whatever its number of links."""
    with connection.cursor() as cursor:
        cursor.execute(_BLAST_CLICK_TOTALS_SQL, {"blast": blast.pk})
        links, clicks, bot_clicks, unique_clickers = cursor.fetchone()
    delivered = blast.delivered_count
    return {
        "links": links,
        "clicks": clicks,
        "bot_clicks": bot_clicks,
        "unique_clickers": unique_clickers,
        "delivered": delivered,
        "click_through_rate": round(unique_clickers / delivered, 4) if delivered else None,
    }


def blast_click_report(*, blast) -> dict:
    """The API's report: blast_click_totals and the messages with a link (this one reads the blast's links)."""
    totals = blast_click_totals(blast=blast)
    totals["messages_with_links"] = Link.objects.filter(blast=blast).aggregate(n=Count("message_id", distinct=True))[
        "n"
    ]
    return totals


def message_click_counts(*, message_ids: list[int]) -> dict[int, dict[str, int]]:
    """{message_id: {"clicks", "unique_clicks", "bot_clicks"}} for message reports (one query)."""
    rows = (
        Link.objects.filter(message_id__in=message_ids)
        .values("message_id")
        .annotate(sum_clicks=Sum("click_count"), sum_unique=Sum("unique_click_count"), sum_bots=Sum("bot_click_count"))
    )
    return {
        r["message_id"]: {"clicks": r["sum_clicks"], "unique_clicks": r["sum_unique"], "bot_clicks": r["sum_bots"]}
        for r in rows
    }


def links_of_messages(*, organization_id: int, message_ids: list[int]) -> dict[int, list[Link]]:
    """The short links made for these messages, by message (the thread shows each with its clicks). One
    query on link_message."""
    found: dict[int, list[Link]] = {}
    links = Link.objects.filter(organization_id=organization_id, message_id__in=message_ids).order_by("id")
    for link in links.only("id", "code", "target_url", "message_id", "click_count", "unique_click_count"):
        assert link.message_id is not None  # filtered on it
        found.setdefault(link.message_id, []).append(link)
    return found


# Reports (webapp/reports.py). Human clicks and bot clicks apart; each one query on a rollup
# (models.ClickRollup, BlastLinkRollup: services/rollups.py), so its cost does not grow with the blast.
_BLAST_CLICK_BUCKETS_SQL = """
SELECT floor((r.slot * %(slot)s - extract(epoch FROM %(start)s::timestamptz)) / %(bucket)s)::int,
       sum(r.clicks)::int, sum(r.bot_clicks)::int
FROM shortener_clickrollup r
WHERE r.blast_id = %(blast)s
GROUP BY 1
HAVING sum(r.clicks) + sum(r.bot_clicks) > 0
"""


def blast_click_buckets(*, blast_id: int, start, bucket_seconds: int) -> dict[int, tuple[int, int]]:
    """{bucket: (human clicks, bot clicks)} of the blast's links, bucket n from `start` as in
    messaging.reports.blast_message_rows (`start` and `bucket_seconds` whole ClickRollup slots)."""
    slot = ClickRollup.SLOT_SECONDS
    assert start.timestamp() % slot == 0 and bucket_seconds % slot == 0
    with connection.cursor() as cursor:
        cursor.execute(
            _BLAST_CLICK_BUCKETS_SQL, {"blast": blast_id, "start": start, "bucket": bucket_seconds, "slot": slot}
        )
        return {bucket: (human, bots) for bucket, human, bots in cursor.fetchall()}


def blast_top_links(*, blast_id: int, limit: int = 10) -> list[dict]:
    """The blast's link targets by human clicks (a per-recipient link each; grouped by target URL)."""
    rows = (
        BlastLinkRollup.objects.filter(blast_id=blast_id, links__gt=0)
        .order_by("-clicks", "target_url")
        .values_list("target_url", "links", "clicks", "unique_clicks", "bot_clicks")[:limit]
    )
    return [
        {"target_url": url, "links": links, "clicks": clicks, "unique_clicks": uniques, "bot_clicks": bots}
        for url, links, clicks, uniques, bots in rows
    ]


_ORG_CLICK_DAYS_SQL = """
SELECT (to_timestamp(r.slot * %(slot)s) AT TIME ZONE %(zone)s)::date, sum(r.clicks)::int, sum(r.bot_clicks)::int
FROM shortener_clickrollup r
WHERE r.organization_id = %(org)s AND r.slot >= %(since_slot)s
GROUP BY 1
HAVING sum(r.clicks) + sum(r.bot_clicks) > 0
"""


def organization_click_days(*, organization_id: int, time_zone: str, since) -> dict:
    """{day: (human clicks, bot clicks)} on the organization's links since `since` (a day's start: a slot
    boundary in any time zone), days in `time_zone`."""
    slot = ClickRollup.SLOT_SECONDS
    since_slot = math.ceil(since.timestamp() / slot)
    params = {"zone": time_zone, "org": organization_id, "since_slot": since_slot, "slot": slot}
    with connection.cursor() as cursor:
        cursor.execute(_ORG_CLICK_DAYS_SQL, params)
        return {day: (human, bots) for day, human, bots in cursor.fetchall()}
