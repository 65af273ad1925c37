"""Reads of the shortener: the redirect's cache fill, link counts, click reports."""

from __future__ import annotations

import json
import time

from django.db import connection
from django.db.models import Count, Q, Sum

from . import conf
from .cache import NEGATIVE, link_payload, redis_client
from .models import Click, Link


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


def blast_click_report(*, blast) -> dict:
    """Clicks (human), unique clickers (distinct contacts with a human click), bot clicks, links, and
    click-through rate = unique clickers / delivered messages (None before anything is delivered)."""
    totals = Link.objects.filter(blast=blast).aggregate(
        links=Count("id"),
        clicks=Sum("click_count", default=0),
        bot_clicks=Sum("bot_click_count", default=0),
        unique_clickers=Count("contact_id", distinct=True, filter=Q(click_count__gt=0)),
        messages_with_links=Count("message_id", distinct=True),
    )
    delivered = blast.delivered_count
    totals["delivered"] = delivered
    totals["click_through_rate"] = round(totals["unique_clickers"] / delivered, 4) if delivered else None
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


# Reports (webapp/reports.py). Human clicks and bot clicks apart; each one query with a small answer.
_BLAST_CLICK_BUCKETS_SQL = """
SELECT floor(extract(epoch FROM c.clicked_at - %(start)s) / %(bucket)s)::int,
       count(*) FILTER (WHERE NOT c.is_bot), count(*) FILTER (WHERE c.is_bot)
FROM shortener_click c JOIN shortener_link l ON l.id = c.link_id
WHERE l.blast_id = %(blast)s
GROUP BY 1
"""


def blast_click_buckets(*, blast_id: int, start, bucket_seconds: int) -> dict[int, tuple[int, int]]:
    """{bucket: (human clicks, bot clicks)} of the blast's links, bucket n from `start` as in
    messaging.reports.blast_message_rows."""
    with connection.cursor() as cursor:
        cursor.execute(_BLAST_CLICK_BUCKETS_SQL, {"blast": blast_id, "start": start, "bucket": bucket_seconds})
        return {bucket: (human, bots) for bucket, human, bots in cursor.fetchall()}


def blast_top_links(*, blast_id: int, limit: int = 10) -> list[dict]:
    """The blast's link targets by human clicks (a per-recipient link each; grouped by target URL)."""
    rows = (
        Link.objects.filter(blast_id=blast_id)
        .order_by()
        .values("target_url")
        .annotate(
            n_links=Count("id"),
            n_clicks=Sum("click_count", default=0),
            n_unique=Sum("unique_click_count", default=0),
            n_bots=Sum("bot_click_count", default=0),
        )
        .order_by("-n_clicks", "target_url")[:limit]
    )
    return [
        {
            "target_url": r["target_url"],
            "links": r["n_links"],
            "clicks": r["n_clicks"],
            "unique_clicks": r["n_unique"],
            "bot_clicks": r["n_bots"],
        }
        for r in rows
    ]


_ORG_CLICK_DAYS_SQL = """
SELECT (c.clicked_at AT TIME ZONE %(zone)s)::date,
       count(*) FILTER (WHERE NOT c.is_bot), count(*) FILTER (WHERE c.is_bot)
FROM shortener_click c JOIN shortener_link l ON l.id = c.link_id
WHERE l.organization_id = %(org)s AND c.clicked_at >= %(since)s
GROUP BY 1
"""


def organization_click_days(*, organization_id: int, time_zone: str, since) -> dict:
    """{day: (human clicks, bot clicks)} on the organization's links since `since`, days in `time_zone`."""
    with connection.cursor() as cursor:
        cursor.execute(_ORG_CLICK_DAYS_SQL, {"zone": time_zone, "org": organization_id, "since": since})
        return {day: (human, bots) for day, human, bots in cursor.fetchall()}
