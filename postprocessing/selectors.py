"""Post-processing reads: backlog, lag, dead letters. See docs/postprocessing.md."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.db import connection

from config.sql import sql_literals

from .models import EventState

_PENDING = sql_literals(EventState.PENDING)  # text, not a parameter: the partial index event_pending matches it


@dataclass(frozen=True)
class BacklogStats:
    pending: int  # events not yet drained
    lag_seconds: float  # age of the oldest pending event (0 when none)
    retrying: int  # (event, processor) pairs waiting for a retry
    dead: int  # dead letters
    dead_by_processor: dict[str, int]

    def as_dict(self) -> dict:
        return asdict(self)


def backlog_stats() -> BacklogStats:
    """Three small queries, all on partial indexes (event_pending, evproc_processor_state)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT count(*),
                   COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - (
                       SELECT created_at FROM postprocessing_event WHERE state = {_PENDING} ORDER BY id LIMIT 1)), 0)
            FROM postprocessing_event WHERE state = {_PENDING}
            """  # noqa: S608 — states via sql_literals; values bound
        )
        pending, lag = cursor.fetchone()
        cursor.execute("SELECT processor, state, count(*) FROM postprocessing_eventprocessing GROUP BY 1, 2")
        rows = cursor.fetchall()
    dead_by = {p: n for p, s, n in rows if s == "dead"}
    retrying = sum(n for _, s, n in rows if s == "retry")
    return BacklogStats(
        pending=pending,
        lag_seconds=max(0.0, float(lag)),
        retrying=retrying,
        dead=sum(dead_by.values()),
        dead_by_processor=dead_by,
    )
