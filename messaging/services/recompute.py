"""Rebuild derived fields (conversation last message, blast counters) from the messages themselves.

Unlike the processors this may move a value backwards: it is the repair tool for after a migration or
a bug, so the truth is whatever the messages say now. Runs in keyset-paginated batches, one short
transaction each, so it can run on a live system; a concurrent drain only ever writes the same truth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection, transaction

from ..processors.blast import blasts_recount
from ..processors.conversation import HAS_GONE_OUT, LAST_MESSAGE_AT, PREVIEW_CHARS

# Conversations per transaction: each costs one index probe (msg_conversation_recent) for its newest
# message. Measured (bench_postprocessing, 33,334 blanked conversations, batches of 1000): 2.0 s, ~16.7k
# conversations/s on the shared 2-core machine, so a batch's transaction (and its row locks) lasts ~60 ms.
RECOMPUTE_BATCH_SIZE = 1000

_CONVERSATION_SQL = f"""
UPDATE messaging_conversation c SET last_message_at = s.at, last_message_preview = COALESCE(s.preview, '')
FROM (
    SELECT c2.id, lm.at, lm.preview FROM messaging_conversation c2
    LEFT JOIN LATERAL (
        SELECT {LAST_MESSAGE_AT} AS at, left(m.rendered_body, {PREVIEW_CHARS}) AS preview
        FROM messaging_message m WHERE m.conversation_id = c2.id AND {HAS_GONE_OUT}
        ORDER BY {LAST_MESSAGE_AT} DESC, m.id DESC LIMIT 1
    ) lm ON true
    WHERE c2.id = ANY(%s::bigint[])
) s
WHERE c.id = s.id
  AND (c.last_message_at IS DISTINCT FROM s.at OR c.last_message_preview IS DISTINCT FROM COALESCE(s.preview, ''))
"""  # noqa: S608 — statuses via sql_literals, fragments and table names are module constants; values bound


@dataclass
class RecomputeResult:
    conversations: int = 0
    conversations_changed: int = 0
    blasts: int = 0


def derived_recompute(
    *,
    organization_id: int | None = None,
    line_id: int | None = None,
    blast_id: int | None = None,
    conversations: bool = True,
    blasts: bool = True,
    batch_size: int = RECOMPUTE_BATCH_SIZE,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
) -> RecomputeResult:
    """Rebuild conversation last-message fields and blast counters/completion, optionally scoped.

    `blast_id` scopes to that blast and the conversations its messages are in. `progress(label, total)`
    returns an `update(n)` callback (the command passes tqdm's). Reused by the migration tool.
    """
    result = RecomputeResult()
    if conversations:
        conv_where, conv_params = _conversation_scope(organization_id, line_id, blast_id)
        update = _progress(progress, "conversations", _count("messaging_conversation c", conv_where, conv_params))
        for ids in _keyset("messaging_conversation c", conv_where, conv_params, batch_size):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(_CONVERSATION_SQL, [ids])
                result.conversations_changed += cursor.rowcount
            result.conversations += len(ids)
            update(len(ids))
    if blasts:
        b_where, b_params = _blast_scope(organization_id, line_id, blast_id)
        update = _progress(progress, "blasts", _count("messaging_blast c", b_where, b_params))
        # Blasts one transaction per few: a 20k-message blast recounts in milliseconds (see processors/blast.py).
        for ids in _keyset("messaging_blast c", b_where, b_params, max(1, batch_size // 100)):
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT id FROM messaging_blast WHERE id = ANY(%s::bigint[]) ORDER BY id FOR NO KEY UPDATE",
                        [ids],
                    )
                blasts_recount(blast_ids=ids)
            result.blasts += len(ids)
            update(len(ids))
    return result


def _conversation_scope(org: int | None, line: int | None, blast: int | None) -> tuple[str, list]:
    clauses, params = [], []
    if org is not None:
        clauses.append("c.organization_id = %s")
        params.append(org)
    if line is not None:
        clauses.append("c.line_id = %s")
        params.append(line)
    if blast is not None:
        clauses.append("c.id IN (SELECT m.conversation_id FROM messaging_message m WHERE m.blast_id = %s)")
        params.append(blast)
    return " AND ".join(clauses) or "true", params


def _blast_scope(org: int | None, line: int | None, blast: int | None) -> tuple[str, list]:
    clauses, params = [], []
    for column, value in (("organization_id", org), ("line_id", line), ("id", blast)):
        if value is not None:
            clauses.append(f"c.{column} = %s")
            params.append(value)
    return " AND ".join(clauses) or "true", params


def _count(table: str, where: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table} WHERE {where}", params)  # noqa: S608 (fixed fragments)
        return cursor.fetchone()[0]


def _keyset(table: str, where: str, params: list, size: int):
    last = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT c.id FROM {table} WHERE {where} AND c.id > %s ORDER BY c.id LIMIT %s",  # noqa: S608 — statuses via sql_literals, fragments and table names are module constants; values bound
                [*params, last, size],
            )
            ids = [r[0] for r in cursor.fetchall()]
        if not ids:
            return
        yield ids
        last = ids[-1]


def _progress(factory, label: str, total: int) -> Callable[[int], None]:
    if factory is None:
        return lambda n: None
    return factory(label, total)
