"""Run records: a run that is killed does not stay `running` for ever.

Each run holds a session advisory lock keyed by its id on the v2 connection that created it, for as
long as it runs. PostgreSQL releases the lock when that session ends, whatever ended it (kill -9, a
lost machine). Before a run starts (and when the admin lists runs), every record still `running`
whose lock can be taken belongs to no live process: it is marked failed, with that reason.
"""

from __future__ import annotations

from django.db import connection
from django.utils import timezone

from ..models import MigrationRun, RunStatus

# Two-key advisory locks (class, run id); the class is "v1" in ASCII, apart from bulk.ADVISORY_KEY
# (a one-key lock: the two forms do not share keys).
RUN_LOCK_CLASS = 0x7631
ABANDONED = "abandoned: its process ended without finishing (killed or lost); a rerun resumes"


def safe_error(exc: BaseException) -> str:
    """Only the first line: database errors put the failing row (which may hold a provider config)
    in their DETAIL lines."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first}"[:500]


def run_hold(run_id: int) -> None:
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s, %s)", [RUN_LOCK_CLASS, run_id])


def run_release(run_id: int) -> None:
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_unlock(%s, %s)", [RUN_LOCK_CLASS, run_id])


def runs_mark_abandoned() -> list[int]:
    """Mark failed every `running` record whose process is gone. Returns their ids."""
    abandoned = []
    for run_id in MigrationRun.objects.filter(status=RunStatus.RUNNING).values_list("pk", flat=True):
        with connection.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s, %s)", [RUN_LOCK_CLASS, run_id])
            (free,) = cur.fetchone()
            if not free:
                continue  # a live process holds it
            cur.execute("SELECT pg_advisory_unlock(%s, %s)", [RUN_LOCK_CLASS, run_id])
        updated = MigrationRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
            status=RunStatus.FAILED, error=ABANDONED, finished_at=timezone.now()
        )
        if updated:
            abandoned.append(run_id)
    return abandoned
