"""The click rollups (shortener.models.ClickRollup, BlastLinkRollup, BlastClicker): written beside their
source rows, and rebuilt from them. See docs/shortener.md ("Rollups").

Every write here runs in the transaction that writes the source rows and counts only what that statement
really wrote — the clicks the click writer's INSERT ... ON CONFLICT (uid) DO NOTHING returned, the links
links_create's INSERT returned, the links link attribution's UPDATE moved — so a replayed click batch or a
retried drain batch adds nothing, exactly as for the link counters beside them. Increments are upserts in
key order (writers lock rollup rows in one order and cannot deadlock).

`click_rollups_rebuild` recomputes an organization's rollups from its clicks and links (the repair tool and
the backfill: `manage.py recompute_click_rollups`), writing only the cells that differ.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction

from ..models import ClickRollup

SLOT = ClickRollup.SLOT_SECONDS

_SLOTS_SQL = """
    INSERT INTO shortener_clickrollup AS r (organization_id, blast_id, slot, clicks, bot_clicks)
    SELECT * FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[], %b::integer[], %b::integer[])
    ON CONFLICT (organization_id, slot, blast_id)
    DO UPDATE SET clicks = r.clicks + EXCLUDED.clicks, bot_clicks = r.bot_clicks + EXCLUDED.bot_clicks
"""
_TARGETS_SQL = """
    INSERT INTO shortener_blastlinkrollup AS r (blast_id, target_url, links, clicks, unique_clicks, bot_clicks)
    SELECT * FROM unnest(%b::bigint[], %b::text[], %b::integer[], %b::integer[], %b::integer[], %b::integer[])
    ON CONFLICT (blast_id, md5(target_url))
    DO UPDATE SET links = r.links + EXCLUDED.links, clicks = r.clicks + EXCLUDED.clicks,
                  unique_clicks = r.unique_clicks + EXCLUDED.unique_clicks,
                  bot_clicks = r.bot_clicks + EXCLUDED.bot_clicks
"""
_CLICKERS_SQL = """
    INSERT INTO shortener_blastclicker (blast_id, contact_id)
    SELECT * FROM unnest(%b::bigint[], %b::bigint[])
    ON CONFLICT (blast_id, contact_id) DO NOTHING
"""


def slot_of(at: datetime) -> int:
    return int(at.timestamp()) // SLOT


@dataclass(frozen=True, slots=True)
class NewClick:
    """A click the writer's INSERT has just written."""

    organization_id: int
    blast_id: int | None
    contact_id: int | None
    target_url: str
    clicked_at: datetime
    is_bot: bool
    is_unique: bool


def rollups_add_clicks(cursor, clicks: Iterable[NewClick]) -> None:
    """Count newly written clicks into the rollups (up to three statements per batch)."""
    slots: dict[tuple[int, int, int | None], list[int]] = defaultdict(lambda: [0, 0])
    targets: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    clickers: set[tuple[int, int]] = set()
    for c in clicks:
        slots[(c.organization_id, slot_of(c.clicked_at), c.blast_id)][int(c.is_bot)] += 1
        if c.blast_id is None:
            continue
        cell = targets[(c.blast_id, c.target_url)]
        if c.is_bot:
            cell[3] += 1
        else:
            cell[1] += 1
            cell[2] += int(c.is_unique)
            if c.contact_id is not None:
                clickers.add((c.blast_id, c.contact_id))
    _upsert_slots(cursor, slots)
    _upsert_targets(cursor, targets)
    if clickers:
        keys = sorted(clickers)
        cursor.execute(_CLICKERS_SQL, [[b for b, _ in keys], [c for _, c in keys]])


def rollups_add_links(cursor, links: Iterable[tuple[int | None, str]]) -> None:
    """Count newly created links (blast id, target URL) into their blast's targets (one statement)."""
    targets: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for blast_id, target_url in links:
        if blast_id is not None:
            targets[(blast_id, target_url)][0] += 1
    _upsert_targets(cursor, targets)


def rollups_retarget(cursor, links: Iterable[tuple[int | None, str, str, int, int, int]]) -> None:
    """Links whose target URL has just changed (blast id, old target, new target, clicks, unique clicks, bot
    clicks): their blast's targets move with them (one statement)."""
    targets: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for blast_id, old, new, clicks, uniques, bots in links:
        if blast_id is None or old == new:
            continue
        for target, sign in ((old, -1), (new, 1)):
            cell = targets[(blast_id, target)]
            for i, n in enumerate((1, clicks, uniques, bots)):
                cell[i] += sign * n
    _upsert_targets(cursor, targets)


def _upsert_slots(cursor, slots: dict) -> None:
    if not slots:
        return
    keys = sorted(slots, key=lambda k: (k[0], k[1], k[2] or 0))
    cursor.execute(
        _SLOTS_SQL,
        [
            [k[0] for k in keys],
            [k[2] for k in keys],
            [k[1] for k in keys],
            [slots[k][0] for k in keys],
            [slots[k][1] for k in keys],
        ],
    )


def _upsert_targets(cursor, targets: dict) -> None:
    if not targets:
        return
    keys = sorted(targets)
    cursor.execute(
        _TARGETS_SQL,
        [[k[0] for k in keys], [k[1] for k in keys], *[[targets[k][i] for k in keys] for i in range(4)]],
    )


# Links that link attribution has just given a blast (and a contact): their links, counters and clicks move
# from "no blast" to the blast. `moved` is the attribution UPDATE's RETURNING (only links it changed).
_MOVE_SLOTS_SQL = """
WITH moved AS (
    SELECT * FROM unnest(%(ids)b::bigint[], %(blasts)b::bigint[]) AS m(link_id, blast_id)
), cells AS (
    SELECT l.organization_id, m.blast_id, floor(extract(epoch FROM c.clicked_at) / %(slot)s)::bigint AS slot,
           count(*) FILTER (WHERE NOT c.is_bot) AS humans, count(*) FILTER (WHERE c.is_bot) AS bots
    FROM moved m JOIN shortener_link l ON l.id = m.link_id JOIN shortener_click c ON c.link_id = m.link_id
    GROUP BY 1, 2, 3
), taken AS (
    UPDATE shortener_clickrollup r SET clicks = r.clicks - s.humans, bot_clicks = r.bot_clicks - s.bots
    FROM (SELECT organization_id, slot, sum(humans) AS humans, sum(bots) AS bots FROM cells GROUP BY 1, 2) s
    WHERE r.organization_id = s.organization_id AND r.slot = s.slot AND r.blast_id IS NULL
)
INSERT INTO shortener_clickrollup AS r (organization_id, blast_id, slot, clicks, bot_clicks)
SELECT organization_id, blast_id, slot, humans, bots FROM cells ORDER BY 1, 3, 2
ON CONFLICT (organization_id, slot, blast_id)
DO UPDATE SET clicks = r.clicks + EXCLUDED.clicks, bot_clicks = r.bot_clicks + EXCLUDED.bot_clicks
"""


def rollups_move_attributed(cursor, rows: list[tuple]) -> None:
    """`rows`: (link id, blast id before, blast id now, contact id, target URL, clicks, unique clicks, bot
    clicks) of links that link attribution has just filled (it fills each link once). A link that had no
    blast brings its links, counters and clicks into its new blast's rollups; a clicked link's contact
    joins the blast's clickers (a no-op when it is there already)."""
    targets: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    clickers = set()
    clicked = []
    for link_id, blast_before, blast_id, contact_id, target, clicks, uniques, bots in rows:
        if clicks and contact_id is not None:
            clickers.add((blast_id, contact_id))
        if blast_before is not None:
            continue
        cell = targets[(blast_id, target)]
        for i, n in enumerate((1, clicks, uniques, bots)):
            cell[i] += n
        if clicks or bots:
            clicked.append((link_id, blast_id))
    # Tables in the click writer's order (slots, targets, clickers), as the rebuild locks them: no two of
    # these writers, nor one of them and the rebuild, wait for each other the other way round.
    if clicked:
        cursor.execute(
            _MOVE_SLOTS_SQL, {"ids": [c[0] for c in clicked], "blasts": [c[1] for c in clicked], "slot": SLOT}
        )
    _upsert_targets(cursor, targets)
    if clickers:
        keys = sorted(clickers)
        cursor.execute(_CLICKERS_SQL, [[b for b, _ in keys], [c for _, c in keys]])


# The rebuild: the rollups recomputed from the organization's links and clicks; cells that differ are
# written, cells that are gone deleted, the rest left alone (as the blast recount keeps BlastRollup). The
# tables are locked against the writers above first (SHARE ROW EXCLUSIVE: they wait, readers do not), so
# no click or link committed between this rebuild's reads and its writes is lost or counted twice. Rows at
# zero (what link attribution and an erasure leave where counts moved away) are left alone: they add nothing.
_LOCK_SQL = (
    "LOCK TABLE shortener_clickrollup, shortener_blastlinkrollup, shortener_blastclicker IN SHARE ROW EXCLUSIVE MODE"
)
_REBUILD_SLOTS_SQL = """
WITH cells AS (
    SELECT l.organization_id, l.blast_id, floor(extract(epoch FROM c.clicked_at) / %(slot)s)::bigint AS slot,
           count(*) FILTER (WHERE NOT c.is_bot) AS clicks, count(*) FILTER (WHERE c.is_bot) AS bot_clicks
    FROM shortener_link l JOIN shortener_click c ON c.link_id = l.id
    WHERE l.organization_id = %(org)s GROUP BY 1, 2, 3
), kept AS (
    INSERT INTO shortener_clickrollup AS r (organization_id, blast_id, slot, clicks, bot_clicks)
    SELECT * FROM cells ORDER BY 1, 3, 2
    ON CONFLICT (organization_id, slot, blast_id)
    DO UPDATE SET clicks = EXCLUDED.clicks, bot_clicks = EXCLUDED.bot_clicks
    WHERE (r.clicks, r.bot_clicks) <> (EXCLUDED.clicks, EXCLUDED.bot_clicks)
    RETURNING 1
), gone AS (
    DELETE FROM shortener_clickrollup r WHERE r.organization_id = %(org)s AND (r.clicks, r.bot_clicks) <> (0, 0)
      AND NOT EXISTS (SELECT 1 FROM cells c WHERE c.slot = r.slot AND c.blast_id IS NOT DISTINCT FROM r.blast_id)
    RETURNING 1
)
SELECT (SELECT count(*) FROM kept) + (SELECT count(*) FROM gone)
"""
_REBUILD_TARGETS_SQL = """
WITH cells AS (
    SELECT blast_id, target_url, count(*) AS links, sum(click_count) AS clicks,
           sum(unique_click_count) AS unique_clicks, sum(bot_click_count) AS bot_clicks
    FROM shortener_link WHERE organization_id = %(org)s AND blast_id IS NOT NULL GROUP BY 1, 2
), kept AS (
    INSERT INTO shortener_blastlinkrollup AS r (blast_id, target_url, links, clicks, unique_clicks, bot_clicks)
    SELECT * FROM cells ORDER BY 1, md5(target_url)
    ON CONFLICT (blast_id, md5(target_url))
    DO UPDATE SET links = EXCLUDED.links, clicks = EXCLUDED.clicks, unique_clicks = EXCLUDED.unique_clicks,
                  bot_clicks = EXCLUDED.bot_clicks
    WHERE (r.links, r.clicks, r.unique_clicks, r.bot_clicks)
          <> (EXCLUDED.links, EXCLUDED.clicks, EXCLUDED.unique_clicks, EXCLUDED.bot_clicks)
    RETURNING 1
), gone AS (
    DELETE FROM shortener_blastlinkrollup r WHERE r.blast_id IN (SELECT DISTINCT blast_id FROM cells)
      AND (r.links, r.clicks, r.unique_clicks, r.bot_clicks) <> (0, 0, 0, 0)
      AND NOT EXISTS (SELECT 1 FROM cells c WHERE c.blast_id = r.blast_id AND c.target_url = r.target_url)
    RETURNING 1
)
SELECT (SELECT count(*) FROM kept) + (SELECT count(*) FROM gone)
"""
_REBUILD_CLICKERS_SQL = """
WITH cells AS (
    SELECT DISTINCT blast_id, contact_id FROM shortener_link
    WHERE organization_id = %(org)s AND blast_id IS NOT NULL AND contact_id IS NOT NULL AND click_count > 0
), kept AS (
    INSERT INTO shortener_blastclicker (blast_id, contact_id) SELECT * FROM cells ORDER BY 1, 2
    ON CONFLICT (blast_id, contact_id) DO NOTHING
    RETURNING 1
), gone AS (
    DELETE FROM shortener_blastclicker r
    WHERE r.blast_id IN (SELECT DISTINCT blast_id FROM shortener_link
                         WHERE organization_id = %(org)s AND blast_id IS NOT NULL)
      AND NOT EXISTS (SELECT 1 FROM cells c WHERE c.blast_id = r.blast_id AND c.contact_id = r.contact_id)
    RETURNING 1
)
SELECT (SELECT count(*) FROM kept) + (SELECT count(*) FROM gone)
"""


def click_rollups_rebuild(*, organization_id: int) -> int:
    """Recompute the organization's click rollups from its links and clicks (one transaction); returns
    how many rollup rows it wrote or deleted (0: they were exact)."""
    changed = 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_LOCK_SQL)
        for sql in (_REBUILD_SLOTS_SQL, _REBUILD_TARGETS_SQL, _REBUILD_CLICKERS_SQL):
            cursor.execute(sql, {"org": organization_id, "slot": SLOT})
            changed += cursor.fetchone()[0]
    return changed
