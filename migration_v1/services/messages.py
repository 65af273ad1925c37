"""The big table: v1 Messages (+ MessageMedia) → Message, set-based.

Per batch (keyset on MessageId): one binary SELECT on v1, a Python pass for what SQL cannot do right
(America/Chicago fold rule, libphonenumber, body bytes), one binary COPY into a temp table, then in v2
SQL: drop rows already migrated, create the contacts/conversations that conversation-less rows need,
and one INSERT ... SELECT that resolves conversation, line, contact, blast, sender and media by joining
the id map — no per-row round trip. Rows no join can place are quarantined whole. No outbox events are
written: derived fields are recomputed once at the end (services.derived).
"""

from __future__ import annotations

import time
from typing import NamedTuple

import psycopg
from django.db import connection, connections, transaction

from config.sql import TimedCursor
from messaging.models import Contact, Conversation, ConversationStatus, Message
from messaging.phone import try_normalize
from messaging.status import S, sql_literals

from ..db import V1_ALIAS, dsn_for
from ..models import V1Message, V1MessageMedia
from .bulk import bulk_begin, bulk_end
from .convert import STATUS_MAP, clean_text, decode_body, phone_extension, row_json, v1_time_sql
from .engine import (
    IDMAP_TABLE,
    QUARANTINE_TABLE,
    Context,
    insert_columns,
    progress_bar,
    temp_table,
    trust_references,
    v1_raw,
)
from .pipeline import BatchReader, pipeline_run

TABLE = "Messages"
V1_COLUMNS: list[str] = [
    str(V1Message._meta.get_field(f).column)  # type: ignore[union-attr]
    for f in (
        "message_id",
        "conversation_id",
        "line_id",
        "contact_phone",
        "direction",
        "body",
        "status",
        "provider_message_id",
        "error_code",
        "sent_by_user_id",
        "blast_id",
        "created_on",
        "status_updated_on",
    )
]
MEDIA_TABLE = V1MessageMedia._meta.db_table
_SELECT = ", ".join(f'"{c}"' for c in V1_COLUMNS)

_TEMP_COLUMNS = [
    ("v1_id", "bigint"),
    ("v1_conv", "integer"),
    ("v1_line", "integer"),
    ("e164", "text"),
    ("direction", "text"),
    ("body", "text"),
    ("status", "text"),
    ("v1_status", "smallint"),
    ("pmid", "text"),
    ("err", "text"),
    ("v1_sent_by", "integer"),
    ("v1_blast", "integer"),
    # v1 wall clock as read; converted to UTC in SQL (convert.v1_time_sql), not per row in Python.
    ("created_wall", "timestamp"),
    ("status_wall", "timestamp"),
]
_CREATED_AT = v1_time_sql("t.created_wall")
_STATUS_AT = v1_time_sql("t.status_wall")
_MEDIA_COLUMNS = [("v1_message_id", "bigint"), ("ord", "integer"), ("url", "text"), ("content_type", "text")]


# v2 lengths of the text columns copied from v1 (longer → quarantined `too_long`, never cut).
_PMID_MAX, _ERR_MAX = 100, 32
# Positions of the v1 text columns that may arrive as bytea (the preflight says which do).
_TEXT_POSITIONS = {"ContactPhone": 3, "Direction": 4, "ProviderMessageId": 7, "ErrorCode": 8}


def _decode_row(row: tuple, positions: list[int]) -> tuple[tuple, str | None, str]:
    """A row with its bytea text columns decoded: (row, problem, column)."""
    values = list(row)
    for i in positions:
        values[i], problem = clean_text(values[i])
        if problem:
            return row, problem, V1_COLUMNS[i]
    return tuple(values), None, ""


def _transform(
    rows: list[tuple], phones: dict, positions: list[int] | None = None
) -> tuple[list[tuple], list[tuple], dict[str, list[int]]]:
    """v1 rows → (temp-table rows, quarantined (v1_id, reason, detail, row), candidate decisions:
    code → ids, recorded for the rows that are then written)."""
    out: list[tuple] = []
    bad: list[tuple] = []
    notes: dict[str, list[int]] = {"phone_extension_dropped": [], "never_sent_migrated_canceled": []}
    append = out.append
    for row in rows:
        if positions:
            row, problem, column = _decode_row(row, positions)
            if problem:
                bad.append((row[0], problem, column, row_json(V1_COLUMNS, row)))
                continue
        mid, conv, line, phone, direction, body, status, pmid, err, sent_by, blast, created, status_on = row
        d = (direction or "").strip().upper()
        if d == "I":
            dirv, st = "in", "received"
        elif d == "O":
            dirv, st = "out", STATUS_MAP.get(status)  # type: ignore[assignment]
            if st is None or st == "received":
                bad.append((mid, "unknown_outbound_status", f"Status={status}", row_json(V1_COLUMNS, row)))
                continue
            if status in (0, 1):
                notes["never_sent_migrated_canceled"].append(mid)
        else:
            bad.append((mid, "bad_direction", f"Direction={direction!r}", row_json(V1_COLUMNS, row)))
            continue
        if created is None:
            bad.append((mid, "missing_value", "CreatedOn is NULL", row_json(V1_COLUMNS, row)))
            continue
        text, problem = decode_body(body)
        if problem:
            bad.append((mid, problem, "", row_json(V1_COLUMNS, row)))
            continue
        if (pmid is not None and len(pmid) > _PMID_MAX) or (err is not None and len(err) > _ERR_MAX):
            column = "ProviderMessageId" if pmid is not None and len(pmid) > _PMID_MAX else "ErrorCode"
            bad.append((mid, "too_long", column, row_json(V1_COLUMNS, row)))
            continue
        known = phones.get(phone)
        if known is None:
            known = phones[phone] = (try_normalize(phone), bool(phone_extension(phone)))
        e164, extension = known
        if conv is None and e164 is None:
            bad.append(
                (mid, "junk_phone", "no conversation and ContactPhone is not a number", row_json(V1_COLUMNS, row))
            )
            continue
        if extension and e164 is not None:
            notes["phone_extension_dropped"].append(mid)
        append(
            (
                mid,
                conv,
                line,
                e164,
                dirv,
                text,
                st,
                status,
                pmid or "",
                err or "",
                sent_by,
                blast,
                created,
                status_on,
            )
        )
    return out, bad, notes


def _copy(cur, name: str, columns: list[tuple[str, str]], rows) -> None:
    with cur.copy(f"COPY {name} ({', '.join(c for c, _ in columns)}) FROM STDIN (FORMAT BINARY)") as cp:
        cp.set_types([t for _, t in columns])
        for row in rows:
            cp.write_row(row)


def _sql_parts() -> dict[str, tuple[str, str, list]]:
    contact = insert_columns(
        Contact,
        {
            "organization_id": "s.org_id",
            "phone_number": "s.e164",
            "created_at": "s.created_at",
            "updated_at": "now()",
        },
    )
    conversation = insert_columns(
        Conversation,
        {
            "organization_id": "s.org_id",
            "line_id": "s.line_id",
            "contact_id": "s.contact_id",
            "status": sql_literals(ConversationStatus.CLOSED),
            "created_at": "s.created_at",
        },
    )
    message = insert_columns(
        Message,
        {
            "organization_id": "cv.organization_id",
            "line_id": "cv.line_id",
            "conversation_id": "cv.id",
            "contact_id": "cv.contact_id",
            "blast_id": "b.id",
            "direction": "r.direction",
            "body": "r.body",
            "rendered_body": "r.body",  # v1 kept the text as sent: the one field to show (docs/messaging.md)
            "media": "coalesce(md.media, '[]'::jsonb)",
            "status": "r.status",
            "carrier_batch_id": "r.pmid",
            # The MSISDN the carrier was given: with the batch id, the key the status backfill matches on.
            "carrier_recipient": "CASE WHEN r.pmid <> '' AND r.direction = 'out' "
            "THEN ltrim(coalesce(r.e164, ct.phone_number), '+') ELSE '' END",
            "error_code": "r.err",
            "error_reason": "CASE WHEN r.v1_status IN (0, 1) THEN 'v1: never sent (' || "
            "(CASE r.v1_status WHEN 0 THEN 'Pending' ELSE 'Queued' END) || ')' ELSE '' END",
            "sent_by_id": "u.id",
            "created_at": "r.created_at",
            "sent_at": f"CASE WHEN r.status IN ({sql_literals(S.SENT, S.DELIVERED, S.UNDELIVERED)})"
            " THEN r.created_at END",
            "delivered_at": f"CASE WHEN r.status = {sql_literals(S.DELIVERED)}"
            " THEN coalesce(r.status_at, r.created_at) END",
            "failed_at": f"CASE WHEN r.status IN ({sql_literals(S.FAILED, S.UNDELIVERED)})"
            " THEN coalesce(r.status_at, r.created_at) END",
            "received_at": f"CASE WHEN r.status = {sql_literals(S.RECEIVED)} THEN r.created_at END",
            "status_updated_at": "coalesce(r.status_at, r.created_at)",
            "v1_id": "r.v1_id",
        },
    )
    return {"contact": contact, "conversation": conversation, "message": message}


# Conversation-less rows (most blast messages, some old rows) attach by (line, normalized number);
# first_msg names the v1 message that made a contact or conversation necessary (decisions).
_BY_PHONE = f"""
    SELECT DISTINCT ON (l.organization_id, t.e164) l.organization_id AS org_id, l.id AS line_id, t.e164,
           {_CREATED_AT} AS created_at, t.v1_id AS first_msg
    FROM mig_msgs t JOIN messaging_line l ON l.v1_id = t.v1_line
    WHERE t.v1_conv IS NULL AND t.e164 IS NOT NULL
    ORDER BY l.organization_id, t.e164, t.v1_id
"""  # noqa: S608 — table/column names from model metadata and module constants; values bound


def _already(ctx: Context, cur, out: list[tuple]) -> tuple[set[int], set[int]]:
    """Ids of the batch already migrated / already quarantined. A range probe of the v1_id index,
    then (only if it finds any) the ids themselves: a batch that is entirely migrated costs two
    index scans and writes nothing, not even its temp table."""
    lo, hi = out[0][0], out[-1][0]
    cur.execute(
        f"""SELECT (SELECT count(*) FROM messaging_message WHERE v1_id BETWEEN %s AND %s)
                         + (SELECT count(*) FROM {QUARANTINE_TABLE} WHERE v1_table = 'Messages'
                            AND v1_id BETWEEN %s AND %s)""",  # noqa: S608 — table/column names from model metadata and module constants; values bound
        [lo, hi, lo, hi],
    )
    done: set[int] = set()
    held: set[int] = set()
    if cur.fetchone()[0]:
        ids = [r[0] for r in out]
        cur.execute(
            f"""SELECT v1_id, true FROM messaging_message WHERE v1_id = ANY(%s::bigint[])
                        UNION ALL SELECT v1_id, false FROM {QUARANTINE_TABLE}
                        WHERE v1_table = 'Messages' AND v1_id = ANY(%s::bigint[])""",  # noqa: S608 — table/column names from model metadata and module constants; values bound
            [ids, ids],
        )
        for v1_id, migrated in cur.fetchall():
            (done if migrated else held).add(v1_id)
    return done, held


def _write_batch(
    ctx: Context, cur, parts, out: list[tuple], media: list[tuple], by_id: dict[int, tuple]
) -> tuple[set[int], set[int], set[int]]:
    """Write one batch. Returns (v1 ids written, ids newly quarantined, ids skipped as done before)."""
    stats = ctx.table(TABLE)
    cur = TimedCursor(cur, ctx.add_timing)
    done, held = _already(ctx, cur, out)
    with ctx.lock:
        stats.skipped += len(done) + len(held)
        stats.bump("already_quarantined", len(held))
    if len(done) + len(held) == len(out):
        return set(), set(), done | held
    if done or held:
        out = [row for row in out if row[0] not in done and row[0] not in held]
    # The joins below hash ~20k-row inputs; the default 4 MB work_mem spills their sort to disk.
    cur.execute("SET LOCAL work_mem = '64MB'")
    if ctx.trust_references:
        trust_references(cur)
    temp_table(cur, "mig_msgs", ", ".join(f"{c} {t}" for c, t in _TEMP_COLUMNS))
    temp_table(cur, "mig_media", ", ".join(f"{c} {t}" for c, t in _MEDIA_COLUMNS))
    _copy(cur, "mig_msgs", _TEMP_COLUMNS, out)
    _copy(cur, "mig_media", _MEDIA_COLUMNS, media)
    inserted = _insert_pass(ctx, cur, parts)
    placed = {r[0] for r in inserted}
    quarantined: set[int] = set()
    if len(placed) < len(out):
        rest = [row for row in out if row[0] not in placed]
        rehomed, quarantined = _unplaced(ctx, cur, parts, by_id, media, rest)
        inserted += rehomed
        placed |= {r[0] for r in rehomed}
    _decide_references(ctx, inserted, out)
    with ctx.lock:
        stats.written += len(inserted)
        ctx.table("MessageMedia").written += sum(r[1] for r in inserted)
    return placed, quarantined, done | held


def _insert_pass(ctx: Context, cur, parts) -> list[tuple]:
    """Synthetic contacts and conversations for conversation-less rows, then every message of the
    temp table that its references place. Returns (v1_id, media count, blast_id, sent_by_id) written."""
    stats = ctx.table(TABLE)
    cols, exprs, params = parts["contact"]
    cur.execute(
        f"""WITH s AS ({_BY_PHONE}), ins AS (
            INSERT INTO messaging_contact ({cols}) SELECT {exprs} FROM s
            WHERE NOT EXISTS (SELECT 1 FROM messaging_contact c
                              WHERE c.organization_id = s.org_id AND c.phone_number = s.e164)
            ORDER BY s.org_id, s.e164
            ON CONFLICT DO NOTHING RETURNING organization_id, phone_number)
        SELECT s.first_msg FROM ins JOIN s ON s.org_id = ins.organization_id AND s.e164 = ins.phone_number""",  # noqa: S608 — table/column names from model metadata and module constants; values bound
        params,
    )
    created = [r[0] for r in cur.fetchall()]
    with ctx.lock:
        stats.bump("contacts_created_for_unknown_numbers", len(created))
    ctx.decide(TABLE, "contact_created_for_unknown_number", created)
    cols, exprs, params = parts["conversation"]
    cur.execute(
        f"""WITH s AS (
            SELECT DISTINCT ON (l.id, c.id) l.organization_id AS org_id, l.id AS line_id, c.id AS contact_id,
                   {_CREATED_AT} AS created_at, t.v1_id AS first_msg
            FROM mig_msgs t JOIN messaging_line l ON l.v1_id = t.v1_line
            JOIN messaging_contact c ON c.organization_id = l.organization_id AND c.phone_number = t.e164
            WHERE t.v1_conv IS NULL ORDER BY l.id, c.id, t.v1_id), ins AS (
            INSERT INTO messaging_conversation ({cols}) SELECT {exprs} FROM s
            WHERE NOT EXISTS (SELECT 1 FROM messaging_conversation x
                              WHERE x.line_id = s.line_id AND x.contact_id = s.contact_id)
            ORDER BY s.line_id, s.contact_id
            ON CONFLICT DO NOTHING RETURNING line_id, contact_id)
        SELECT s.first_msg FROM ins JOIN s ON s.line_id = ins.line_id AND s.contact_id = ins.contact_id""",  # noqa: S608 — table/column names from model metadata and module constants; values bound
        params,
    )
    created = [r[0] for r in cur.fetchall()]
    with ctx.lock:
        stats.bump("conversations_created_for_conversationless_messages", len(created))
    ctx.decide(TABLE, "conversation_created_for_conversationless_message", created)
    cols, exprs, params = parts["message"]
    # A message with a ConversationId is placed only when its own LineId is its conversation's line
    # (or NULL: then the conversation's line, reported); a mismatch is re-homed or quarantined by
    # _unplaced. The blast must be of the same organization, else the reference is dropped (reported).
    cur.execute(
        f"""INSERT INTO messaging_message ({cols}) SELECT {exprs} FROM (
            SELECT t.*, CASE WHEN t.v1_conv IS NOT NULL THEN cm.v2_id ELSE cv2.id END AS conv_id,
                   l.id AS own_line, {_CREATED_AT} AS created_at, {_STATUS_AT} AS status_at
            FROM mig_msgs t
            LEFT JOIN {IDMAP_TABLE} cm
                ON t.v1_conv IS NOT NULL AND cm.v1_table = 'Conversations' AND cm.v1_id = t.v1_conv
            LEFT JOIN messaging_line l ON l.v1_id = t.v1_line
            LEFT JOIN messaging_contact c
                ON t.v1_conv IS NULL AND c.organization_id = l.organization_id AND c.phone_number = t.e164
            LEFT JOIN messaging_conversation cv2 ON cv2.line_id = l.id AND cv2.contact_id = c.id
        ) r
        JOIN messaging_conversation cv ON cv.id = r.conv_id AND (r.v1_line IS NULL OR cv.line_id = r.own_line)
        JOIN messaging_contact ct ON ct.id = cv.contact_id
        LEFT JOIN messaging_blast b ON b.v1_id = r.v1_blast AND b.organization_id = cv.organization_id
        LEFT JOIN {IDMAP_TABLE} um ON um.v1_table = 'Users' AND um.v1_id = r.v1_sent_by
        LEFT JOIN auth_user u ON u.id = um.v2_id
        LEFT JOIN (SELECT v1_message_id, jsonb_agg(jsonb_build_object('url', url, 'content_type', content_type)
                                                   ORDER BY ord) AS media
                   FROM mig_media GROUP BY v1_message_id) md ON md.v1_message_id = r.v1_id
        ORDER BY r.v1_id
        ON CONFLICT (v1_id) WHERE v1_id IS NOT NULL DO NOTHING
        RETURNING v1_id, jsonb_array_length(media), blast_id, sent_by_id""",  # noqa: S608 — table/column names from model metadata and module constants; values bound
        params,
    )
    return cur.fetchall()


def _decide_references(ctx: Context, inserted: list[tuple], out: list[tuple]) -> None:
    """Name the written messages whose references were not copied as they are."""
    if not inserted:
        return
    rows = {row[0]: row for row in out}
    blast, sender, line = [], [], []
    for v1_id, _, blast_id, sent_by_id in inserted:
        row = rows[v1_id]
        if row[11] is not None and blast_id is None:
            blast.append(v1_id)
        if row[10] is not None and sent_by_id is None:
            sender.append(v1_id)
        if row[2] is None and row[1] is not None:
            line.append(v1_id)
    ctx.decide(TABLE, "unknown_or_foreign_blast_dropped", sorted(blast))
    ctx.decide(TABLE, "unknown_sender_dropped", sorted(sender))
    ctx.decide(TABLE, "null_line_id_placed_on_conversation_line", sorted(line))


# Why a row the insert did not place stays out; 'rehome' rows are migrated on their own line.
_UNPLACED_SQL = f"""
    SELECT t.v1_id, CASE
        WHEN t.v1_conv IS NOT NULL AND x.cv_id IS NULL AND EXISTS (SELECT 1 FROM {QUARANTINE_TABLE} q
             WHERE q.v1_table = 'Conversations' AND q.v1_id = t.v1_conv) THEN 'conversation_quarantined'
        WHEN t.v1_conv IS NOT NULL AND x.cv_id IS NULL THEN 'broken_reference_conversation'
        WHEN l.id IS NULL AND EXISTS (SELECT 1 FROM {QUARANTINE_TABLE} q
             WHERE q.v1_table = 'Lines' AND q.v1_id = t.v1_line) THEN 'line_quarantined'
        WHEN l.id IS NULL THEN 'broken_reference_line'
        WHEN x.cv_id IS NOT NULL AND l.organization_id <> x.org_id THEN 'line_in_other_account'
        WHEN x.cv_id IS NOT NULL THEN 'rehome'
        ELSE 'unresolved_contact' END,
        x.phone_number
    FROM unnest(%s::bigint[], %s::int[], %s::int[]) AS t(v1_id, v1_conv, v1_line)
    LEFT JOIN LATERAL (
        SELECT cv.id AS cv_id, cv.organization_id AS org_id, ct.phone_number
        FROM {IDMAP_TABLE} cm JOIN messaging_conversation cv ON cv.id = cm.v2_id
        JOIN messaging_contact ct ON ct.id = cv.contact_id
        WHERE cm.v1_table = 'Conversations' AND cm.v1_id = t.v1_conv
        OFFSET 0
    ) x ON true
    LEFT JOIN messaging_line l ON l.v1_id = t.v1_line
"""  # noqa: S608 — table/column names from model metadata and module constants; values bound
# One index probe per unplaced row (LATERAL, fenced by OFFSET 0): with the id map's statistics
# stale during a load, the planner hashed the whole map and probed every conversation and contact
# instead — 0.4 s per batch, 25-29 s over 1M messages with ~1% unplaced.


def _unplaced(
    ctx: Context, cur, parts, by_id: dict[int, tuple], media: list[tuple], rows: list[tuple]
) -> tuple[list[tuple], set[int]]:
    """Rows the insert did not place. Rule (docs, "References"): a message whose LineId is another
    line of its conversation's account is migrated on that line (its conversation there with the
    same contact, created closed if missing) — v1 sent it from that line; every other unplaced row
    is quarantined with its reason. Returns (re-homed rows written, ids newly quarantined)."""
    cur.execute(_UNPLACED_SQL, [[r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]])
    verdicts = cur.fetchall()
    rehome = {v1_id: phone for v1_id, reason, phone in verdicts if reason == "rehome"}
    written: list[tuple] = []
    if rehome:
        # Keep only the re-homed rows, attached by (own line, the conversation's contact number).
        cur.execute(
            "DELETE FROM mig_msgs t WHERE NOT EXISTS (SELECT 1 FROM unnest(%s::bigint[]) AS u(v1_id) "
            "WHERE u.v1_id = t.v1_id)",
            [list(rehome)],
        )
        cur.execute(
            "UPDATE mig_msgs t SET v1_conv = NULL, e164 = x.phone "
            "FROM unnest(%s::bigint[], %s::text[]) AS x(v1_id, phone) WHERE t.v1_id = x.v1_id",
            [list(rehome), list(rehome.values())],
        )
        written = _insert_pass(ctx, cur, parts)
        ctx.decide(TABLE, "line_differs_from_conversation_rehomed_to_own_line", sorted(r[0] for r in written))
    placed = {r[0] for r in written}
    media_by_msg: dict[int, list] = {}
    for mid, _, url, ctype in media:
        media_by_msg.setdefault(mid, []).append({"Url": url, "ContentType": ctype})
    items = []
    for v1_id, reason, _ in verdicts:
        if v1_id in placed:
            continue
        row = row_json(V1_COLUMNS, by_id[v1_id])
        row["MessageMedia"] = media_by_msg.get(v1_id, [])
        items.append((v1_id, "unresolved_contact" if reason == "rehome" else reason, "", row))
    return written, ctx.quarantine(TABLE, items)


def _scope_sql(ctx: Context) -> tuple[str, list]:
    if ctx.scope.kind == "all":
        return "", []
    return ' AND "LineId" = ANY(%s)', [ctx.line_ids]


_ALREADY_SQL = f"""SELECT v1_id, true FROM messaging_message WHERE v1_id BETWEEN %s AND %s
    UNION ALL SELECT v1_id, false FROM {QUARANTINE_TABLE} WHERE v1_table = 'Messages' AND v1_id BETWEEN %s AND %s"""  # noqa: S608 — table/column names from model metadata and module constants; values bound


class MessageBatch(NamedTuple):
    """One batch as the reader hands it to a writer."""

    rows: list[tuple]  # v1 rows read (V1_COLUMNS)
    media: list[tuple]  # their v1 media rows
    out: list[tuple]  # temp-table rows (_TEMP_COLUMNS)
    bad: list[tuple]  # quarantine items
    hi: int  # highest v1 id of the range: the checkpoint once committed
    n_ids: int  # ids read
    pre_done: int  # already migrated (dropped before reading)
    pre_held: int  # already quarantined (dropped before reading)
    notes: dict[str, list[int]]  # candidate decisions: code → ids


class _MessageBatches:
    """The reader's step (pipeline.BatchReader): the next batch of v1 Messages after `last`."""

    def __init__(self, *, scope_sql: str, scope_params: list, last: int, batch_size: int, positions: list[int]):
        self.scope_sql, self.scope_params = scope_sql, scope_params
        self.last, self.batch_size, self.positions = last, batch_size, positions
        self.phones: dict = {}

    def __call__(self, conn, v2=None) -> MessageBatch | None:
        """The next batch, or None after the last.

        Ids first (index-only), then — when v2 is reachable outside the writers' transactions — the ids
        already migrated or quarantined are dropped before their rows are even fetched: a rerun over
        migrated data reads ids and probes the v1_id index, nothing more."""
        table = V1Message._meta.db_table
        # Server-side binding: binary results (bytea and timestamps without text parsing).
        with psycopg.Cursor(conn) as vc:
            vc.execute(
                f'SELECT "MessageId" FROM "{table}" WHERE "MessageId" > %s{self.scope_sql} '  # noqa: S608 — table/column names from model metadata and module constants; values bound
                f'ORDER BY "MessageId" LIMIT %s',
                [self.last, *self.scope_params, self.batch_size],
                binary=True,
            )
            ids = [r[0] for r in vc.fetchall()]
            if not ids:
                return None
            lo, hi = ids[0], ids[-1]
            done: set[int] = set()
            held: set[int] = set()
            if v2 is not None:
                for v1_id, migrated in v2.execute(_ALREADY_SQL, [lo, hi, lo, hi]).fetchall():
                    (done if migrated else held).add(v1_id)
            todo = [i for i in ids if i not in done and i not in held] if (done or held) else ids
            rows: list[tuple] = []
            media: list[tuple] = []
            if len(todo) == len(ids):
                vc.execute(
                    f'SELECT {_SELECT} FROM "{table}" WHERE "MessageId" BETWEEN %s AND %s{self.scope_sql} '  # noqa: S608 — table/column names from model metadata and module constants; values bound
                    f'ORDER BY "MessageId"',
                    [lo, hi, *self.scope_params],
                    binary=True,
                )
                rows = vc.fetchall()
            elif todo:
                vc.execute(
                    f'SELECT {_SELECT} FROM "{table}" WHERE "MessageId" = ANY(%s) ORDER BY "MessageId"',  # noqa: S608 — table/column names from model metadata and module constants; values bound
                    [todo],
                    binary=True,
                )
                rows = vc.fetchall()
            if rows:
                vc.execute(
                    f'SELECT "MessageId", "MessageMediaId", "Url", "ContentType" FROM "{MEDIA_TABLE}" '  # noqa: S608 — table/column names from model metadata and module constants; values bound
                    f'WHERE "MessageId" BETWEEN %s AND %s ORDER BY "MessageMediaId"',
                    [rows[0][0], rows[-1][0]],
                    binary=True,
                )
                media = vc.fetchall()
                # The id range also holds messages of other lines (scoped runs) or already migrated
                # ones: only the media of the rows read belong to this batch.
                wanted = {r[0] for r in rows}
                media = [m for m in media if m[0] in wanted]
        out, bad, notes = _transform(rows, self.phones, self.positions)
        self.last = hi
        return MessageBatch(rows, media, out, bad, hi, len(ids), len(done), len(held), notes)


def _write_one(ctx: Context, parts, item: MessageBatch) -> int:
    """One batch in one transaction: quarantine, write, and (inline mode) the checkpoint. Returns hi id."""
    rows, all_media, out, bad, hi, n_ids, pre_done, pre_held, notes = item
    started = time.perf_counter()
    placed: set[int] = set()
    quarantined: set[int] = set()
    media, bad_media = _clean_media(all_media)
    if rows or not ctx.parallel:
        with transaction.atomic(), connection.cursor() as cur:
            ctx.quarantine("MessageMedia", bad_media)
            if ctx.bulk_load:
                # A crash loses at most the last unflushed commits: the checkpoint is in the same
                # transaction, so the rerun re-reads exactly those batches.
                cur.execute("SET LOCAL synchronous_commit = off")
            if out:
                placed, quarantined, _ = _write_batch(ctx, cur, parts, out, media, {row[0]: row for row in rows})
                if placed:
                    ctx.mark_dirty()
            # After the write: the batch's "already migrated or quarantined" probe must not see them.
            quarantined |= ctx.quarantine(TABLE, _with_media(bad, media))
            if not ctx.parallel:
                ctx.set_checkpoint(TABLE, hi)
    for code, ids in notes.items():
        ctx.decide(TABLE, code, [i for i in ids if i in placed])
    # Media rows follow their message: written with it, kept inside its quarantine row, or skipped.
    media_quarantined = sum(1 for m in media if m[0] in quarantined)
    with ctx.lock:
        ctx.timings["(batch transaction incl. COPY and commit)"] += time.perf_counter() - started
        stats = ctx.table(TABLE)
        stats.read += n_ids
        stats.skipped += pre_done + pre_held
        stats.bump("already_quarantined", pre_held)
        mstats = ctx.table("MessageMedia")
        mstats.read += len(all_media)  # the bad ones were counted by ctx.quarantine
        mstats.quarantined += media_quarantined
        # Not QuarantinedRow rows of their own: they are inside their message's row.
        mstats.bump("kept_in_quarantined_message_row", media_quarantined)
    media_written = sum(1 for m in media if m[0] in placed)
    with ctx.lock:
        mstats.skipped += len(media) - media_written - media_quarantined
    return hi


def migrate_messages(ctx: Context) -> None:
    stats = ctx.table(TABLE)
    started = time.perf_counter()
    last = ctx.checkpoint(TABLE)
    scope_sql, scope_params = _scope_sql(ctx)
    with v1_raw().cursor() as vc:
        vc.execute(
            f'SELECT count(*) FROM "{V1Message._meta.db_table}" WHERE "MessageId" > %s{scope_sql}',  # noqa: S608 — table/column names from model metadata and module constants; values bound
            [last, *scope_params],
        )
        total = vc.fetchone()[0]
    parts = _sql_parts()
    # Inside a transaction (dry run, tests) other connections would not see this run's rows: one
    # writer, the caller's connection. Concurrent writers' synthetic contact/conversation inserts are
    # ordered by their unique keys: no deadlock.
    writers = 1 if connection.in_atomic_block else max(1, ctx.writers)
    ctx.parallel = writers > 1
    v1 = dsn_for(connections[V1_ALIAS].settings_dict)
    reader = BatchReader(
        name="migrate-v1-reader",
        # Inside a transaction the reader could not see this run's rows: no pre-filter on v2 then.
        dsns=[v1] if connection.in_atomic_block else [v1, dsn_for(connections["default"].settings_dict)],
        next_batch=_MessageBatches(
            scope_sql=scope_sql,
            scope_params=scope_params,
            last=last,
            batch_size=ctx.batch_size,
            # Text columns this v1 types as bytea (other than Body, which decode_body reads either way).
            positions=[
                _TEXT_POSITIONS[c]
                for c in (ctx.schema.bytea_columns(TABLE) if ctx.schema else [])
                if c in _TEXT_POSITIONS
            ],
        ),
    )
    definitions = bulk_begin(ctx.run_id) if ctx.bulk_load else []
    if ctx.bulk_load:
        ctx.bulk["dropped_indexes"] = [name for name, _ in definitions]
    try:
        with progress_bar(ctx, TABLE, total) as bar:
            pipeline_run(
                ctx,
                table=TABLE,
                reader=reader,
                write=lambda batch: _write_one(ctx, parts, batch),
                size=lambda batch: batch.n_ids,
                writers=writers,
                bar=bar,
            )
    finally:
        if ctx.bulk_load:
            # Even when the load failed: v2 must not be left without its indexes (and if this fails
            # too, the next run recreates them from the run record: bulk.bulk_recover).
            rebuild = bulk_end(ctx.run_id, definitions)
            ctx.bulk["index_rebuild_seconds"] = round(rebuild, 2)
            ctx.timings["(bulk-load: index rebuild)"] += rebuild
    if ctx.scope.kind == "all":
        _quarantine_orphan_media(ctx)
    stats.seconds += time.perf_counter() - started


_MEDIA_COLUMNS_V1 = ["MessageId", "MessageMediaId", "Url", "ContentType"]


def _clean_media(media: list[tuple]) -> tuple[list[tuple], list[tuple]]:
    """Media rows v2 can hold (texts decoded when v1 types them bytea), and the others as quarantine
    items: a NULL Url (`missing_value`), NUL or non-UTF-8 text. The message itself still migrates."""
    if not media:
        return media, []
    good: list[tuple] = []
    bad: list[tuple] = []
    for row in media:
        mid, media_id, url, ctype = row
        if isinstance(url, str) and (ctype is None or isinstance(ctype, str)) and "\x00" not in url:
            good.append(row)
            continue
        url, problem = clean_text(url)
        ctype, ctype_problem = clean_text(ctype)
        problem = problem or ctype_problem or (None if url is not None else "missing_value")
        if problem:
            detail = "Url is NULL" if problem == "missing_value" else ""
            bad.append((media_id, problem, detail, row_json(_MEDIA_COLUMNS_V1, row)))
        else:
            good.append((mid, media_id, url, ctype))
    return good, bad


def _with_media(bad: list[tuple], media: list[tuple]) -> list[tuple]:
    if not bad:
        return bad
    rows_by_id = {b[0]: b[3] for b in bad}
    for mid, _, url, ctype in media:
        if mid in rows_by_id:
            rows_by_id[mid].setdefault("MessageMedia", []).append({"Url": url, "ContentType": ctype})
    return bad


def _quarantine_orphan_media(ctx: Context) -> None:
    """Media rows of no v1 message (only visible to a whole-database run)."""
    cols = ["MessageMediaId", "MessageId", "Url", "ContentType"]
    with v1_raw().cursor() as vc:
        vc.execute(f"""SELECT {", ".join(f'mm."{c}"' for c in cols)} FROM "{MEDIA_TABLE}" mm
                       WHERE NOT EXISTS (SELECT 1 FROM "{V1Message._meta.db_table}" m
                                         WHERE m."MessageId" = mm."MessageId")""")  # noqa: S608 — table/column names from model metadata and module constants; values bound
        rows = vc.fetchall()
    ctx.table("MessageMedia").read += len(rows)
    with transaction.atomic():
        ctx.quarantine("MessageMedia", [(r[0], "broken_reference_message", "", row_json(cols, r)) for r in rows])
