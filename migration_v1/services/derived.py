"""Derived fields after a migration: conversation last message, blast counters.

Migrated messages are inserted directly, without post-processing outbox events (a million events would
only recompute the same values a million times). Instead the post-processing recompute runs once per
migrated organization (or line) at the end; every UPDATE there is guarded by IS DISTINCT FROM, so a
rerun writes nothing.
"""

from __future__ import annotations

import time

from django.db import connection, transaction

from messaging.services.recompute import derived_recompute

from .engine import Context, progress_bar

# The audience of a migrated blast is whoever v1 sent it to (v2's recipient_count is set at launch).
_RECIPIENTS = """
UPDATE messaging_blast b SET recipient_count = s.n
FROM (SELECT blast_id, count(DISTINCT contact_id) AS n FROM messaging_message
      WHERE organization_id = %s AND blast_id IS NOT NULL GROUP BY blast_id) s
WHERE b.id = s.blast_id AND b.v1_id IS NOT NULL AND b.recipient_count IS DISTINCT FROM s.n
"""


def derived_refresh(ctx: Context) -> None:
    started = time.perf_counter()
    try:
        _refresh(ctx)
    finally:
        ctx.table("derived").seconds += time.perf_counter() - started


def _refresh(ctx: Context) -> None:
    stats = ctx.table("derived")
    if not ctx._dirty and ctx.derived_current():
        # Nothing changed since the derived fields were last rebuilt for this scope.
        stats.bump("skipped_unchanged")
        return
    with connection.cursor() as cur:
        if ctx.scope.kind == "all":
            cur.execute("SELECT id FROM organizations_organization WHERE v1_id IS NOT NULL ORDER BY id")
        else:
            cur.execute(
                "SELECT id FROM organizations_organization WHERE v1_id = ANY(%s) ORDER BY id", [ctx.account_ids]
            )
        org_ids = [r[0] for r in cur.fetchall()]
        line_id = None
        if ctx.scope.kind == "line":
            cur.execute("SELECT id FROM messaging_line WHERE v1_id = %s", [ctx.scope.id])
            row = cur.fetchone()
            line_id = row[0] if row else None
    # One bar per kind of row for the whole step (not one per organization): each shows once.
    bars: dict[str, object] = {}

    def progress(label, total):
        bar = bars.get(label)
        if bar is None:
            bar = bars[label] = progress_bar(ctx, f"derived {label}", 0)
        bar.total += total  # type: ignore[attr-defined]
        bar.refresh()  # type: ignore[attr-defined]
        return bar.update  # type: ignore[attr-defined]

    for org_id in org_ids:
        result = derived_recompute(organization_id=org_id, line_id=line_id, progress=progress)
        stats.written += result.conversations_changed
        stats.read += result.conversations + result.blasts
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(_RECIPIENTS, [org_id])
            stats.bump("blast_recipient_counts_set", cur.rowcount)
    for bar in bars.values():
        bar.close()  # type: ignore[attr-defined]
    with transaction.atomic():
        ctx.set_checkpoint("derived", 1)
