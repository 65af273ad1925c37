"""Publishing a wake-up: the database holds the work, the broker only says "look now".

Work whose row is committed must not fail because the broker is down, flushed or refusing a publish
(a FLUSHDB of the Redis broker drops kombu's routing table, and every publish then raises "Cannot route
message" until a worker declares its queues again): the sweepers in config/beat.py find the row and
wake a worker later (docs/recovery.md). So a publish after commit logs its failure and returns.

The one way to enqueue after commit (tests/test_architecture.py refuses `transaction.on_commit`
elsewhere, the shortener's link-cache fill aside): `wake_on_commit(task, args)`, or its callable form
`wake_on_commit_call(fn)` for a site whose after-commit step is more than one publish.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction

log = logging.getLogger("parley.wakeup")


def wake(task, args: list | tuple = (), **options) -> bool:
    """`task.apply_async(args=args, **options)`; False (logged) when the broker refused it."""
    try:
        task.apply_async(args=list(args), **options)
    except Exception as exc:  # noqa: BLE001 - any broker failure: the periodic sweep re-kicks from the row
        log.warning("wake-up %s not published (%s: %s); the sweeper re-kicks it", task.name, type(exc).__name__, exc)
        return False
    return True


def wake_on_commit(task, args: list | tuple = (), **options) -> None:
    """`wake(task, args)` once the current transaction commits (at once outside a transaction): a task
    must never look for rows its caller has not committed yet."""
    args = list(args)
    transaction.on_commit(lambda: wake(task, args, **options))


def wake_on_commit_call(fn: Callable[[], object]) -> None:
    """The callable form of `wake_on_commit`: `fn()` once the current transaction commits, for a step
    that decides after commit whether to publish (a Redis debounce: the webhook apply, the drain kick),
    publishes several tasks (a blast's chunks) or must follow the commit in this process (the blast's
    opted-out recount). Whatever it raises — Redis, the broker, the database — is logged, never raised:
    the change is committed, and the sweeper or processor named at the call site redoes the step."""
    transaction.on_commit(lambda: _call_logged(fn))


def _call_logged(fn: Callable[[], object]) -> None:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - after commit nothing may fail the committed change; see above
        name = getattr(fn, "__qualname__", None) or repr(fn)
        log.warning("after-commit %s failed (%s: %s); its sweeper redoes it", name, type(exc).__name__, exc)
