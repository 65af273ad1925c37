"""Derived fields after a migration: conversation last message, blast counters.

Migrated messages are inserted directly, without post-processing outbox events (a million events would
only recompute the same values a million times). Instead the post-processing recompute runs once per
migrated organization (or line) at the end; every UPDATE there is guarded by IS DISTINCT FROM, so a
rerun writes nothing.
"""

from __future__ import annotations

import time

from django.db import connection, transaction

from messaging.status import CARRIER_ACCEPTED, S, sql_literals

from .engine import Context, progress_bar


def _recompute():
    try:  # owned by post-processing; the fallback keeps the tool usable without it
        from postprocessing.services import derived_recompute
    except ImportError:  # pragma: no cover - exercised only before post-processing existed
        return None
    return derived_recompute


_FALLBACK_CONVERSATIONS = """
UPDATE messaging_conversation c SET last_message_at = s.at, last_message_preview = left(s.body, 160)
FROM (SELECT DISTINCT ON (m.conversation_id) m.conversation_id, m.created_at AS at, m.body
      FROM messaging_message m WHERE m.organization_id = %s
      ORDER BY m.conversation_id, m.created_at DESC, m.id DESC) s
WHERE c.id = s.conversation_id AND (c.last_message_at IS DISTINCT FROM s.at
      OR c.last_message_preview IS DISTINCT FROM left(s.body, 160))
"""

_FALLBACK_BLASTS = f"""
UPDATE messaging_blast b SET sent_count = s.sent, delivered_count = s.delivered, failed_count = s.failed,
    undelivered_count = s.undelivered, delivery_rate = CASE WHEN s.sent > 0 THEN s.delivered::float / s.sent END
FROM (SELECT blast_id, count(*) FILTER (WHERE status IN ({sql_literals(CARRIER_ACCEPTED)})) AS sent,
             count(*) FILTER (WHERE status = {sql_literals(S.DELIVERED)}) AS delivered,
             count(*) FILTER (WHERE status = {sql_literals(S.FAILED)}) AS failed,
             count(*) FILTER (WHERE status = {sql_literals(S.UNDELIVERED)}) AS undelivered
      FROM messaging_message WHERE organization_id = %s AND blast_id IS NOT NULL GROUP BY blast_id) s
WHERE b.id = s.blast_id AND (b.sent_count, b.delivered_count, b.failed_count, b.undelivered_count)
      IS DISTINCT FROM (s.sent, s.delivered, s.failed, s.undelivered)
"""

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
    recompute = _recompute()
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
        if recompute is not None:
            result = recompute(organization_id=org_id, line_id=line_id, progress=progress)
            stats.written += result.conversations_changed
            stats.read += result.conversations + result.blasts
        else:
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute(_FALLBACK_CONVERSATIONS, [org_id])
                stats.written += cur.rowcount
                cur.execute(_FALLBACK_BLASTS, [org_id])
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(_RECIPIENTS, [org_id])
            stats.bump("blast_recipient_counts_set", cur.rowcount)
    for bar in bars.values():
        bar.close()  # type: ignore[attr-defined]
    with transaction.atomic():
        ctx.set_checkpoint("derived", 1)
