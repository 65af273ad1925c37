"""Writing events and waking the drain: the one writer of the outbox. See docs/postprocessing.md."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from django.core.cache import cache
from django.db import connection

from config.wakeup import wake_on_commit_call

from ..events import check_event_type
from ..models import Event

log = logging.getLogger(__name__)

# At most one drain enqueued per this many seconds from event writers, however many events they write:
# the beat tick (every second) is the floor, this only shortens the wait after a quiet spell. One
# publish costs ~1 ms (docs/performance.md: kombu builds a client per publish), so per-event tasks are out.
KICK_DEBOUNCE_SECONDS = 1
_KICK_KEY = "postprocessing:drain-kick"


def outbox_insert(select: str) -> str:
    """Statement text that writes outbox events: the INSERT into the event table for the rows `select`
    yields as (type, message_id, payload jsonb), in the order it gives them (one message's events in
    the order they were written).

    The one way rows reach the outbox: `events_record` runs it, and a domain statement composes it
    (messaging's status apply writes its events in a CTE of the same statement as the status change,
    so an event exists if and only if its change committed)."""
    return f"INSERT INTO {Event._meta.db_table} (type, message_id, payload) {select}"


def events_record(*, type: str, message_ids: Sequence[int] | None = None, payload: dict[str, Any] | None = None) -> int:
    """Record events of `type` (a declared EventType; an unknown name raises UnknownEventType).

    One row per message id, each with the same payload, or one row without a message when
    `message_ids` is None. Call it inside the transaction that makes the change: the rows commit or
    roll back with it. The drain is woken after commit. Returns the number of rows written.
    """
    check_event_type(type)
    body = json.dumps(payload or {})
    with connection.cursor() as cursor:
        if message_ids is None:
            cursor.execute(outbox_insert("SELECT %s, NULL, %s::jsonb"), [type, body])
            written = 1
        else:
            ids = sorted(set(int(i) for i in message_ids))
            if not ids:
                return 0
            # unnest ... ORDER BY keeps one message's events in the order they are written.
            cursor.execute(
                outbox_insert("SELECT %s, m, %s::jsonb FROM unnest(%s::bigint[]) AS m ORDER BY m"), [type, body, ids]
            )
            written = len(ids)
    drain_kick()
    return written


def drain_kick() -> None:
    """Wake a drain after the current transaction commits, debounced through Redis (SET NX + TTL).

    Cheap enough for every status write: one Redis round trip, and a task publish at most once per
    KICK_DEBOUNCE_SECONDS across all processes. Never raises (`wake_on_commit_call` logs a Redis or
    broker failure): the beat tick is the safety net.
    """
    wake_on_commit_call(_kick_debounced)


def _kick_debounced() -> None:
    if cache.add(_KICK_KEY, 1, timeout=KICK_DEBOUNCE_SECONDS):
        drain_kick_now()


def drain_kick_now() -> None:
    """Enqueue one drain task now (no debounce, no commit wait): the drain's own continuation."""
    from ..tasks import drain

    drain.apply_async()
