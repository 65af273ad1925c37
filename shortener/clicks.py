"""Clicks: buffered in Redis on the request path, written to PostgreSQL in batches off it.

Request side (`click_payload`): a small JSON array RPUSHed to `<prefix>:sl:clicks` in the same pipeline
as the link lookup — one Redis round-trip per redirect. The full IP never leaves the process: only its
/24 (IPv4) or /48 (IPv6) network and an HMAC of IP + user agent (keyed by SECRET_KEY) are buffered.

Writer side (`clicks_flush`, task "shortener.flush_clicks", beat every second): reads up to
FLUSH_BATCH entries, flags bots, and in one transaction inserts visitors, clicks and counter updates
set-based, counts them into the reports' rollups (services/rollups.py), emits link.clicked events, then
trims the buffer. Idempotent: every click carries a random
uid and is inserted ON CONFLICT (uid) DO NOTHING, so a batch replayed after a crash between commit and
trim is not counted twice. See docs/shortener.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import NamedTuple, cast

from django.conf import settings
from django.db import transaction

from config.sql import binding_cursor

from . import conf
from .cache import redis_client
from .services.rollups import NewClick, rollups_add_clicks

log = logging.getLogger(__name__)

UA_MAX = 512
REFERRER_MAX = 1024
# Entries read per batch. 5,000 clicks are one ~2 MB LRANGE and 3 statements of ~50 ms together
# (measured in bench/bench_redirect.py); larger batches only make the transaction longer.
FLUSH_BATCH = 5000
# A flush run stops after this many batches so a backlog cannot pin a worker; beat comes back in 1 s.
FLUSH_MAX_BATCHES = 40
FLUSH_LOCK_MS = 60_000

# Link-preview fetchers crawlerdetect (0.4) does not know, as (substring, name). Checked in
# bench/tests against crawlerdetect: it already flags facebookexternalhit (also iMessage's preview
# fetcher, which sends "facebookexternalhit/1.1 Facebot Twitterbot/1.0"), WhatsApp, Twitterbot,
# Slackbot, TelegramBot, Discordbot, LinkedInBot, SkypeUriPreview, Googlebot, Google-PageRenderer,
# BingPreview, MicrosoftPreview, Applebot, Embedly, Iframely, curl, python-requests, okhttp.
PREVIEW_FETCHERS: tuple[tuple[str, str], ...] = (
    ("snapchat", "snapchat"),
    ("viber", "viber"),
    ("kakaotalk-scrap", "kakaotalk"),
    ("google-safety", "google-safety"),  # Gmail's link safety check
    ("google-messages", "google-messages"),  # RCS / Google Messages preview fetcher
    ("com.apple.safari.searchhelper", "apple-searchhelper"),
    ("signal", "signal"),
)


# --- request side --------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _visitor_key() -> bytes:
    return hashlib.sha256(b"shortener.visitor:" + settings.SECRET_KEY.encode()).digest()


def client_ip(meta: Mapping) -> str:
    header = getattr(settings, "SHORT_LINK_CLIENT_IP_HEADER", "")  # e.g. HTTP_X_FORWARDED_FOR behind a proxy
    if header and meta.get(header):
        return meta[header].split(",", 1)[0].strip()
    return meta.get("REMOTE_ADDR", "")


def ip_prefix(ip: str) -> str:
    """The /24 of an IPv4 address, the /48 of an IPv6 one: enough for rough geography and abuse
    spotting, not enough to name a subscriber."""
    if not ip:
        return ""
    if ":" not in ip:
        parts = ip.split(".")
        return f"{parts[0]}.{parts[1]}.{parts[2]}.0/24" if len(parts) == 4 else ""
    import ipaddress

    try:
        return str(ipaddress.IPv6Network((ip.split("%", 1)[0], 48), strict=False))
    except ValueError:
        return ""


def visitor_hash(ip: str, user_agent: str) -> str:
    return hmac.new(_visitor_key(), f"{ip}|{user_agent}".encode(), hashlib.sha256).hexdigest()[:32]


def click_payload(meta: Mapping, code: str, method: str) -> bytes:
    ip = client_ip(meta)
    ua = meta.get("HTTP_USER_AGENT", "")[:UA_MAX]
    return json.dumps(
        [
            secrets.token_hex(8),
            code,
            round(time.time(), 3),
            method,
            ua,
            meta.get("HTTP_REFERER", "")[:REFERRER_MAX],
            ip_prefix(ip),
            visitor_hash(ip, ua),
        ],
        separators=(",", ":"),
    ).encode()


# --- bot detection -------------------------------------------------------------------------------

_detector: list = []


@lru_cache(maxsize=4096)
def bot_reason(method: str, user_agent: str) -> str:
    """'' for a person; else why not: head_request, empty_user_agent, preview:<name>, crawler:<match>."""
    if method == "HEAD":
        return "head_request"
    if not user_agent.strip():
        return "empty_user_agent"
    lowered = user_agent.lower()
    for needle, name in PREVIEW_FETCHERS:
        if needle in lowered:
            return f"preview:{name}"
    if not _detector:
        from crawlerdetect import CrawlerDetect

        _detector.append(CrawlerDetect())
    detector = _detector[0]
    if detector.isCrawler(user_agent):
        matches = detector.getMatches()
        match = matches if isinstance(matches, str) else ",".join(matches or [])
        return f"crawler:{match}"[:64]
    return ""


# --- writer side ---------------------------------------------------------------------------------

_LINKS_SQL = (
    "SELECT code, id, contact_id, message_id, blast_id, organization_id FROM shortener_link WHERE code = ANY(%b)"
)

_VISITORS_SQL = """
    INSERT INTO shortener_linkvisitor (link_id, visitor, first_clicked_at)
    SELECT * FROM unnest(%b::bigint[], %b::varchar[], %b::timestamptz[])
    ON CONFLICT (link_id, visitor) DO NOTHING
    RETURNING link_id, visitor
"""

_CLICKS_SQL = """
    INSERT INTO shortener_click
        (link_id, uid, clicked_at, method, user_agent, referrer, ip_prefix, visitor_hash, is_bot, bot_reason,
         is_unique)
    SELECT * FROM unnest(%b::bigint[], %b::varchar[], %b::timestamptz[], %b::varchar[], %b::varchar[],
                         %b::varchar[], %b::varchar[], %b::varchar[], %b::boolean[], %b::varchar[], %b::boolean[])
    ON CONFLICT (uid) DO NOTHING
    RETURNING id, link_id, uid
"""

# Sorted by link id: concurrent writers (there is one, under a lock, but a manual run may overlap)
# then lock link rows in the same order and cannot deadlock.
_COUNTERS_SQL = """
    UPDATE shortener_link AS l
    SET click_count = l.click_count + v.humans,
        unique_click_count = l.unique_click_count + v.uniques,
        bot_click_count = l.bot_click_count + v.bots,
        last_clicked_at = GREATEST(l.last_clicked_at, v.last_at)
    FROM unnest(%b::bigint[], %b::integer[], %b::integer[], %b::integer[], %b::timestamptz[])
        AS v(id, humans, uniques, bots, last_at)
    WHERE l.id = v.id
    RETURNING l.id, l.blast_id, l.contact_id, l.target_url
"""


class _Link(NamedTuple):
    """The link a buffered click's code names (_LINKS_SQL without the code)."""

    id: int
    contact_id: int | None
    message_id: int | None
    blast_id: int | None
    organization_id: int


class _Click(NamedTuple):
    """One buffered click of a known link, ready for the batch's statements."""

    link: _Link
    uid: str
    clicked_at: datetime
    method: str
    user_agent: str
    referrer: str
    ip_prefix: str
    visitor_hash: str
    bot_reason: str  # '' for a person
    visitor: str  # the key of uniqueness: c<contact id> or h<visitor hash>


def _well_formed(row) -> bool:
    return (
        isinstance(row, list)
        and len(row) == 8
        and isinstance(row[2], int | float)
        and all(isinstance(row[i], str) for i in (0, 1, 3, 4, 5, 6, 7))
    )


def _parse(raw: list[bytes]) -> list[list]:
    """Entries that are not what click_payload writes are dropped (and logged), never retried: one bad
    entry must not block the buffer behind it."""
    out = []
    for entry in raw:
        try:
            row = json.loads(entry)
        except ValueError:
            row = None
        if _well_formed(row):
            out.append(row)
        else:
            log.warning("shortener: dropped an unreadable click entry")
    return out


def clicks_write(*, entries: list[bytes]) -> int:
    """Writes one batch of buffered clicks; returns how many new click rows it inserted."""
    rows = _parse(entries)
    if not rows:
        return 0
    with binding_cursor() as cursor:
        cursor.execute(_LINKS_SQL, [list({code for _uid, code, *_rest in rows})])
        links = {code: _Link(*link) for code, *link in cursor}
    # Unknown codes (scanners, typos) are not clicks of anything: dropped here, not on the request path.
    clicks: list[_Click] = []
    for uid, code, ts, method, ua, ref, prefix, vhash in rows:
        link = links.get(code)
        if link is None:
            continue
        reason = bot_reason(method, ua)
        # Unique by contact for attributed links (a forwarded link still counts its contact once), by the
        # keyed hash of IP + user agent otherwise.
        visitor = f"c{link.contact_id}" if link.contact_id else f"h{vhash}"
        clicked_at = datetime.fromtimestamp(ts, UTC)
        clicks.append(_Click(link, uid, clicked_at, method, ua, ref, prefix, vhash, reason, visitor))
    if not clicks:
        return 0
    with transaction.atomic(), binding_cursor() as cursor:
        humans = [c for c in clicks if not c.bot_reason]
        new_visitors: set[tuple[int, str]] = set()
        if humans:
            cursor.execute(
                _VISITORS_SQL,
                [[c.link.id for c in humans], [c.visitor for c in humans], [c.clicked_at for c in humans]],
            )
            new_visitors = {(link_id, visitor) for link_id, visitor in cursor}
        unique_flags = []
        for c in clicks:
            key = (c.link.id, c.visitor)
            is_unique = not c.bot_reason and key in new_visitors
            if is_unique:
                new_visitors.discard(key)  # only the first click of the batch for that visitor
            unique_flags.append(is_unique)
        cursor.execute(
            _CLICKS_SQL,
            [
                [c.link.id for c in clicks],
                [c.uid for c in clicks],
                [c.clicked_at for c in clicks],
                [c.method[:8] for c in clicks],
                [c.user_agent for c in clicks],
                [c.referrer for c in clicks],
                [c.ip_prefix for c in clicks],
                [c.visitor_hash for c in clicks],
                [bool(c.bot_reason) for c in clicks],
                [c.bot_reason for c in clicks],
                unique_flags,
            ],
        )
        inserted = {uid: click_id for click_id, _link_id, uid in cursor}
        counters: dict[int, list] = {}
        events = []
        written: list[tuple[_Click, bool]] = []
        for c, is_unique in zip(clicks, unique_flags, strict=True):
            click_id = inserted.get(c.uid)
            if click_id is None:  # replayed entry, already written
                continue
            written.append((c, is_unique))
            entry = counters.setdefault(c.link.id, [0, 0, 0, c.clicked_at])
            if c.bot_reason:
                entry[2] += 1
            else:
                entry[0] += 1
                entry[1] += int(is_unique)
                events.append((c.link, is_unique))
            entry[3] = max(entry[3], c.clicked_at)
        if counters:
            ids = sorted(counters)
            cursor.execute(
                _COUNTERS_SQL,
                [
                    ids,
                    [counters[i][0] for i in ids],
                    [counters[i][1] for i in ids],
                    [counters[i][2] for i in ids],
                    [counters[i][3] for i in ids],
                ],
            )
            # The links as they are under the row lock just taken: link attribution may have given one
            # its blast since _LINKS_SQL read it (and then waits for this batch to move its clicks).
            now = {link_id: (blast_id, contact_id, target) for link_id, blast_id, contact_id, target in cursor}
            # The reports' rollups, from the same clicks as the counters (only those this batch wrote).
            rollups_add_clicks(
                cursor,
                (
                    NewClick(c.link.organization_id, *now[c.link.id], c.clicked_at, bool(c.bot_reason), is_unique)
                    for c, is_unique in written
                ),
            )
        _emit_clicked(events)
    return len(inserted)


def _emit_clicked(events: list[tuple[_Link, bool]]) -> None:
    """link.clicked post-processing events for human clicks, in the same transaction (outbox).

    events_record writes one row per message id with one shared payload, so per batch: one row per
    message whose link had a human click (payload: {"source": "shortener"}; the counts are on the
    links, shortener.selectors.message_click_counts), and one row per organization for clicks of
    unattributed links (message_id NULL, payload {"organization_id", "links": [{"link_id", "clicks",
    "unique"}]}). Imported lazily so the click writer does not depend on the drain's import graph."""
    if not events:
        return
    from postprocessing.events import EventType
    from postprocessing.services import events_record

    message_ids = sorted({link.message_id for link, _unique in events if link.message_id})
    if message_ids:
        events_record(type=EventType.LINK_CLICKED, message_ids=message_ids, payload={"source": "shortener"})
    loose: dict[int, dict[int, list[int]]] = {}
    for link, is_unique in events:
        if not link.message_id:
            counts = loose.setdefault(link.organization_id, {}).setdefault(link.id, [0, 0])
            counts[0] += 1
            counts[1] += int(is_unique)
    for org_id, links in sorted(loose.items()):
        events_record(
            type=EventType.LINK_CLICKED,
            payload={
                "source": "shortener",
                "organization_id": org_id,
                "links": [{"link_id": k, "clicks": v[0], "unique": v[1]} for k, v in sorted(links.items())],
            },
        )


def clicks_flush(*, batch_size: int = FLUSH_BATCH, max_batches: int = FLUSH_MAX_BATCHES) -> int:
    """Drains the click buffer in batches; one runner at a time (a Redis lock), others return 0.

    Entries are read (LRANGE), written, and only then trimmed (LTRIM): a crash in between replays the
    batch, which the uid makes harmless."""
    client = redis_client()
    lock_key = f"{conf.redis_key_prefix()}:flush-lock"
    token = uuid.uuid4().hex
    if not client.set(lock_key, token, nx=True, px=FLUSH_LOCK_MS):
        return 0
    buffer_key = conf.clicks_buffer_key()
    written = 0
    try:
        for _ in range(max_batches):
            entries = cast(list[bytes], client.lrange(buffer_key, 0, batch_size - 1))
            if not entries:
                break
            written += clicks_write(entries=entries)
            client.ltrim(buffer_key, len(entries), -1)
            if len(entries) < batch_size:
                break
    finally:
        # Release only our own lock (compare-and-delete), in case it expired and another runner took it.
        client.eval(
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
            1,
            lock_key,
            token,
        )
    return written
