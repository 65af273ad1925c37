"""v1 → v2 migration (docs/migration_v1.md).

- `v1_migrate(*, scope, batch_size, dry_run, progress, from_start, stop_after) -> report dict`
- `v1_verify(*, scope) -> report dict`
Both store a MigrationRun (visible in the admin) unless dry_run.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from ..models import MigrationRun, RunStatus
from .bulk import BulkLoadRefused, bulk_recover
from .derived import derived_refresh
from .engine import Context, Scope, SimulatedCrash, resolve_scope
from .errors import ScopeNotFound, V1InputError, V1SchemaError, V1Unavailable
from .messages import migrate_messages
from .preflight import v1_preflight
from .runs import run_hold, run_release, runs_mark_abandoned, safe_error
from .specs import TABLE_SPECS
from .verify import v1_verify

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_WRITERS",
    "BulkLoadRefused",
    "Scope",
    "ScopeNotFound",
    "V1InputError",
    "V1SchemaError",
    "V1Unavailable",
    "SimulatedCrash",
    "v1_migrate",
    "v1_verify",
]

# Rows per batch (and per transaction), and concurrent message writers (measurements:
# docs/performance.md, "v1 migration batch and writers"). Small batches lose to the per-batch cost
# of hashing the id map and the contact/conversation tables in the message join. Memory grows with
# batch × (writers + reader queue + 1) ≈ 6 batches in flight: at 1M messages peak RSS 592 MiB with
# 50k×3, so 20k×3 (~270 MiB) leaves room below 1 GiB for any --batch-size up to ~60k.
# With --bulk-load (no secondary index maintenance) the per-batch cost of hashing the id map and the
# contact/conversation tables dominates instead, and bigger batches pay off: at 1M messages, 20k×3
# 38.6k rows/s (peak 296 MiB) vs 50k×3 50.5k rows/s (peak 445 MiB) — hence 50k.
DEFAULT_BATCH_SIZE = 50_000
DEFAULT_WRITERS = 3

# The order matters: each step resolves its references through the rows of the steps before it.
STEPS: list[tuple[str, Callable[[Context], None]]] = [
    *((spec.table, spec) for spec in TABLE_SPECS),
    ("Messages", migrate_messages),
    ("derived", derived_refresh),
]


def _run_steps(ctx: Context) -> None:
    for _, step in STEPS:
        step(ctx)


def v1_migrate(
    *,
    scope: Scope | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    progress: bool = False,
    from_start: bool = False,
    stop_after: tuple[str, int] | None = None,
    trust_references: bool = True,
    writers: int = DEFAULT_WRITERS,
    bulk_load: bool = False,
) -> dict:
    """Migrate the scope. Idempotent and resumable (checkpoints per scope and table; `from_start`
    ignores them and relies on the v1_id/id-map skips alone). `stop_after=(table, n)` raises
    SimulatedCrash after n committed batches of that table (tests of resumption). `bulk_load`: drop
    and rebuild the secondary indexes of messaging_message around the Messages step (services.bulk;
    only for a v2 that is not live yet, refused otherwise; ignored by dry runs)."""
    scope = scope or Scope()
    ctx = Context(
        scope=scope,
        batch_size=batch_size,
        dry_run=dry_run,
        progress=progress,
        from_start=from_start,
        stop_after=stop_after,
        trust_references=trust_references,
        writers=writers,
        bulk_load=bulk_load and not dry_run,
    )
    # Before anything is read or written: v1 reachable, every table and column there and readable.
    ctx.schema = v1_preflight()
    resolve_scope(ctx)
    options = {"batch_size": batch_size, "dry_run": dry_run, "from_start": from_start, "bulk_load": bulk_load}
    started = time.perf_counter()
    if dry_run:
        # Everything is done for real inside one transaction that is then rolled back: the report
        # counts exactly what a real run would write, and nothing stays.
        with transaction.atomic():
            _run_steps(ctx)
            transaction.set_rollback(True)
        report = ctx.report()
        report["seconds"] = round(time.perf_counter() - started, 3)
        return report
    # A bulk load that crashed before rebuilding its indexes: rebuild them before anything else.
    recovered = bulk_recover()
    abandoned = runs_mark_abandoned()
    run = MigrationRun.objects.create(scope=scope.key, mode="migrate", options=options)
    run_hold(run.pk)
    ctx.run_id = run.pk
    if recovered:
        ctx.bulk["recovered_indexes"] = recovered
    try:
        _run_steps(ctx)
    except BaseException as exc:
        run.status, run.error = RunStatus.FAILED, safe_error(exc)
        raise
    else:
        run.status = RunStatus.SUCCEEDED
    finally:
        run.report = {**ctx.report(), "run_id": run.pk, "seconds": round(time.perf_counter() - started, 3)}
        if abandoned:
            run.report["abandoned_runs_marked_failed"] = abandoned
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "error", "report", "finished_at"])
        run_release(run.pk)
    return run.report
