"""Publishing a wake-up: the database holds the work, the broker only says "look now".

Work whose row is committed must not fail because the broker is down, flushed or refusing a publish
(a FLUSHDB of the Redis broker drops kombu's routing table, and every publish then raises "Cannot route
message" until a worker declares its queues again): the sweepers in config/beat.py find the row and
wake a worker later (docs/recovery.md). So a publish after commit logs its failure and returns.
"""

from __future__ import annotations

import logging

from django.db import transaction

log = logging.getLogger("parley.wakeup")


def wake(task, args: list | tuple, **options) -> bool:
    """`task.apply_async(args=args, **options)`; False (logged) when the broker refused it."""
    try:
        task.apply_async(args=list(args), **options)
    except Exception as exc:  # noqa: BLE001 - any broker failure: the periodic sweep re-kicks from the row
        log.warning("wake-up %s not published (%s: %s); the sweeper re-kicks it", task.name, type(exc).__name__, exc)
        return False
    return True


def wake_on_commit(task, args: list | tuple, **options) -> None:
    """`wake(task, args)` once the current transaction commits (at once outside a transaction): a task
    must never look for rows its caller has not committed yet. The one way to enqueue after commit."""
    args = list(args)
    transaction.on_commit(lambda: wake(task, args, **options))
