"""Short links found in a sent message, attributed to that message (and its blast and contact).

The send pipeline's link step already creates links attributed per message
(`shortener.services.links_shorten_for_messages`); this processor covers the rest: links that exist
unattributed (created before the message, pasted by hand, shortened by an API client) and appear in
the rendered body of a sent message. It only fills attribution that is empty (a link with a message
keeps it; a blast or contact its creator set is kept), so it is idempotent and never steals a link from
the message it was made for; a link that gets its blast here brings its clicks into the blast's click
rollups (services/rollups.py), once. One UPDATE per batch: short codes are pulled
out of the bodies with a regular expression in SQL and joined to the links of the same organization.

The shortener owns the link table, so the processor lives here and registers through the post-processing
registry from ShortenerConfig.ready, at its place in the lock order (messaging/processors/__init__.py).
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from config.sql import binding_cursor
from messaging.processors import RANK
from postprocessing.events import EventType
from postprocessing.registry import EventRow, processor

from .codes import CODE_CHARS, CODE_PATTERN
from .models import Link
from .services.rollups import rollups_move_attributed

# A short link in a body: scheme://host/code (host: the organization's own short domain or the default),
# the code by the one pattern of codes.py, ending where the URL's path segment ends (a longer run such as
# "abc1234-x" is no code, as the redirect would refuse it too).
_CODE_RE = rf"https?://([A-Za-z0-9.:-]+)/({CODE_PATTERN})(?![{CODE_CHARS}_-])"


_SQL = f"""
WITH found AS (
    SELECT DISTINCT ON (m.organization_id, x.match[2])
           m.organization_id, m.id AS message_id, m.blast_id, m.contact_id, x.match[1] AS host, x.match[2] AS code
    FROM messaging_message m
    JOIN organizations_organization o ON o.id = m.organization_id
    CROSS JOIN LATERAL regexp_matches(m.rendered_body, %(re)s, 'g') AS x(match)
    WHERE m.id = ANY(%(ids)s::bigint[]) AND m.rendered_body <> ''
      AND lower(x.match[1]) IN (lower(%(default_domain)s), lower(NULLIF(o.short_link_domain, '')))
    ORDER BY m.organization_id, x.match[2], m.id
), old AS (
    -- the links to fill, locked, with what they had (a blast they already had is kept)
    SELECT l.id, l.blast_id FROM {Link._meta.db_table} l
    JOIN found f ON l.code = f.code AND l.organization_id = f.organization_id
    WHERE l.message_id IS NULL ORDER BY l.id FOR UPDATE OF l
)
UPDATE {Link._meta.db_table} l SET message_id = f.message_id, blast_id = COALESCE(l.blast_id, f.blast_id),
    contact_id = COALESCE(l.contact_id, f.contact_id)
FROM found f, old o
WHERE l.code = f.code AND l.organization_id = f.organization_id AND l.message_id IS NULL AND o.id = l.id
RETURNING l.id, o.blast_id, l.blast_id, l.contact_id, l.target_url,
    l.click_count, l.unique_click_count, l.bot_click_count
"""  # noqa: S608 — table name from the model; values bound


@processor(EventType.MESSAGE_SENT, name="link_attribution", rank=RANK["link_attribution"])
def link_attribution(events: list[EventRow]) -> None:
    ids = [e.message_id for e in events if e.message_id is not None]
    if not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(_SQL, {"ids": ids, "re": _CODE_RE, "default_domain": settings.SHORT_LINK_DOMAIN})
        filled = cursor.fetchall()
    # A link that has just got its blast brings its links, counters and clicks into the blast's rollups;
    # one that has just got its contact, the contact into the blast's clickers (services/rollups.py).
    # Each link is filled once (message_id IS NULL), so a retried batch moves nothing twice.
    moved = [r for r in filled if r[2] is not None]
    if moved:
        with binding_cursor() as cursor:
            rollups_move_attributed(cursor, moved)
