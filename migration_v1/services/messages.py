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

import psycopg
from django.db import connection, transaction

from messaging.models import Contact, Conversation, Message
from messaging.phone import try_normalize

from ..models import V1Message, V1MessageMedia
from .convert import STATUS_MAP, decode_body, row_json, v1_time
from .engine import IDMAP_TABLE, QUARANTINE_TABLE, Context, insert_columns, progress_bar, temp_table, v1_raw

TABLE = "Messages"
V1_COLUMNS = [V1Message._meta.get_field(f).column for f in (
    "message_id", "conversation_id", "line_id", "contact_phone", "direction", "body", "status",
    "provider_message_id", "error_code", "sent_by_user_id", "blast_id", "created_on", "status_updated_on",
)]
MEDIA_TABLE = V1MessageMedia._meta.db_table
_SELECT = ", ".join(f'"{c}"' for c in V1_COLUMNS)

_TEMP_COLUMNS = [
    ("v1_id", "bigint"), ("v1_conv", "integer"), ("v1_line", "integer"), ("e164", "text"), ("direction", "text"),
    ("body", "text"), ("status", "text"), ("v1_status", "smallint"), ("pmid", "text"), ("err", "text"),
    ("v1_sent_by", "integer"), ("v1_blast", "integer"), ("created_at", "timestamptz"), ("status_at", "timestamptz"),
]
_MEDIA_COLUMNS = [("v1_message_id", "bigint"), ("ord", "integer"), ("url", "text"), ("content_type", "text")]


def _transform(ctx: Context, rows: list[tuple], phones: dict) -> tuple[list[tuple], list[tuple]]:
    """v1 rows → (temp-table rows, quarantined (v1_id, reason, detail, row))."""
    out, bad = [], []
    append = out.append
    for row in rows:
        mid, conv, line, phone, direction, body, status, pmid, err, sent_by, blast, created, status_on = row
        d = (direction or "").strip().upper()
        if d == "I":
            dirv, st = "in", "received"
        elif d == "O":
            dirv, st = "out", STATUS_MAP.get(status)
            if st is None or st == "received":
                bad.append((mid, "unknown_outbound_status", f"Status={status}", row_json(V1_COLUMNS, row)))
                continue
        else:
            bad.append((mid, "bad_direction", f"Direction={direction!r}", row_json(V1_COLUMNS, row)))
            continue
        text, problem = decode_body(body)
        if problem:
            bad.append((mid, problem, "", row_json(V1_COLUMNS, row)))
            continue
        e164 = phones.get(phone, False)
        if e164 is False:
            e164 = phones[phone] = try_normalize(phone)
        if conv is None and e164 is None:
            bad.append((mid, "junk_phone", "no conversation and ContactPhone is not a number",
                        row_json(V1_COLUMNS, row)))
            continue
        append((mid, conv, line, e164, dirv, text, st, status, pmid or "", err or "", sent_by, blast,
                v1_time(created), v1_time(status_on)))
    return out, bad


def _copy(cur, name: str, columns: list[tuple[str, str]], rows) -> None:
    with cur.copy(f"COPY {name} ({', '.join(c for c, _ in columns)}) FROM STDIN (FORMAT BINARY)") as cp:
        cp.set_types([t for _, t in columns])
        for row in rows:
            cp.write_row(row)


def _sql_parts() -> dict[str, tuple[str, str, list]]:
    contact = insert_columns(Contact, {
        "organization_id": "s.org_id", "phone_number": "s.e164", "created_at": "s.created_at", "updated_at": "now()",
    })
    conversation = insert_columns(Conversation, {
        "organization_id": "s.org_id", "line_id": "s.line_id", "contact_id": "s.contact_id", "status": "'closed'",
        "created_at": "s.created_at",
    })
    message = insert_columns(Message, {
        "organization_id": "cv.organization_id", "line_id": "cv.line_id", "conversation_id": "cv.id",
        "contact_id": "cv.contact_id", "blast_id": "b.id", "direction": "r.direction", "body": "r.body",
        "media": "coalesce(md.media, '[]'::jsonb)", "status": "r.status",
        "carrier_batch_id": "r.pmid",
        # The MSISDN the carrier was given: with the batch id, the key the status backfill matches on.
        "carrier_recipient": "CASE WHEN r.pmid <> '' AND r.direction = 'out' "
                             "THEN ltrim(coalesce(r.e164, ct.phone_number), '+') ELSE '' END",
        "error_code": "r.err",
        "error_reason": "CASE WHEN r.v1_status IN (0, 1) THEN 'v1: never sent (' || "
                        "(CASE r.v1_status WHEN 0 THEN 'Pending' ELSE 'Queued' END) || ')' ELSE '' END",
        "sent_by_id": "um.v2_id", "created_at": "r.created_at",
        "sent_at": "CASE WHEN r.status IN ('sent', 'delivered', 'undelivered') THEN r.created_at END",
        "delivered_at": "CASE WHEN r.status = 'delivered' THEN coalesce(r.status_at, r.created_at) END",
        "failed_at": "CASE WHEN r.status IN ('failed', 'undelivered') THEN coalesce(r.status_at, r.created_at) END",
        "received_at": "CASE WHEN r.status = 'received' THEN r.created_at END",
        "status_updated_at": "coalesce(r.status_at, r.created_at)", "v1_id": "r.v1_id",
    })
    return {"contact": contact, "conversation": conversation, "message": message}


# Conversation-less rows (most blast messages, some old rows) attach by (line, normalized number).
_BY_PHONE = """
    SELECT DISTINCT ON (l.organization_id, t.e164) l.organization_id AS org_id, l.id AS line_id, t.e164, t.created_at
    FROM mig_msgs t JOIN messaging_line l ON l.v1_id = t.v1_line
    WHERE t.v1_conv IS NULL AND t.e164 IS NOT NULL
    ORDER BY l.organization_id, t.e164, t.v1_id
"""


def _write_batch(ctx: Context, cur, parts, out: list[tuple], media: list[tuple], by_id: dict[int, tuple]) -> None:
    stats = ctx.table(TABLE)
    temp_table(cur, "mig_msgs", ", ".join(f"{c} {t}" for c, t in _TEMP_COLUMNS))
    temp_table(cur, "mig_media", ", ".join(f"{c} {t}" for c, t in _MEDIA_COLUMNS))
    _copy(cur, "mig_msgs", _TEMP_COLUMNS, out)
    _copy(cur, "mig_media", _MEDIA_COLUMNS, media)
    cur.execute("DELETE FROM mig_msgs t USING messaging_message m WHERE m.v1_id = t.v1_id")
    skipped = cur.rowcount
    stats.skipped += skipped
    if skipped == len(out):
        return
    cols, exprs, params = parts["contact"]
    cur.execute(f"""INSERT INTO messaging_contact ({cols}) SELECT {exprs} FROM ({_BY_PHONE}) s
        WHERE NOT EXISTS (SELECT 1 FROM messaging_contact c WHERE c.organization_id = s.org_id AND c.phone_number = s.e164)
        ON CONFLICT DO NOTHING""", params)
    stats.bump("contacts_created_for_unknown_numbers", cur.rowcount)
    cols, exprs, params = parts["conversation"]
    cur.execute(f"""INSERT INTO messaging_conversation ({cols}) SELECT DISTINCT ON (s.line_id, s.contact_id) {exprs}
        FROM (SELECT DISTINCT ON (l.id, c.id) l.organization_id AS org_id, l.id AS line_id, c.id AS contact_id,
                     t.created_at
              FROM mig_msgs t JOIN messaging_line l ON l.v1_id = t.v1_line
              JOIN messaging_contact c ON c.organization_id = l.organization_id AND c.phone_number = t.e164
              WHERE t.v1_conv IS NULL ORDER BY l.id, c.id, t.v1_id) s
        WHERE NOT EXISTS (SELECT 1 FROM messaging_conversation x WHERE x.line_id = s.line_id AND x.contact_id = s.contact_id)
        ON CONFLICT DO NOTHING""", params)
    stats.bump("conversations_created_for_conversationless_messages", cur.rowcount)
    cols, exprs, params = parts["message"]
    cur.execute(f"""WITH ins AS (
        INSERT INTO messaging_message ({cols}) SELECT {exprs} FROM (
            SELECT t.*, CASE WHEN t.v1_conv IS NOT NULL THEN cm.v2_id ELSE cv2.id END AS conv_id
            FROM mig_msgs t
            LEFT JOIN {IDMAP_TABLE} cm ON t.v1_conv IS NOT NULL AND cm.v1_table = 'Conversations' AND cm.v1_id = t.v1_conv
            LEFT JOIN messaging_line l ON t.v1_conv IS NULL AND l.v1_id = t.v1_line
            LEFT JOIN messaging_contact c ON c.organization_id = l.organization_id AND c.phone_number = t.e164
            LEFT JOIN messaging_conversation cv2 ON cv2.line_id = l.id AND cv2.contact_id = c.id
        ) r
        JOIN messaging_conversation cv ON cv.id = r.conv_id
        JOIN messaging_contact ct ON ct.id = cv.contact_id
        LEFT JOIN messaging_blast b ON b.v1_id = r.v1_blast AND b.organization_id = cv.organization_id
        LEFT JOIN {IDMAP_TABLE} um ON um.v1_table = 'Users' AND um.v1_id = r.v1_sent_by
        LEFT JOIN (SELECT v1_message_id, jsonb_agg(jsonb_build_object('url', url, 'content_type', content_type)
                                                   ORDER BY ord) AS media
                   FROM mig_media GROUP BY v1_message_id) md ON md.v1_message_id = r.v1_id
        ORDER BY r.v1_id
        ON CONFLICT (v1_id) DO NOTHING
        RETURNING media)
        SELECT count(*), coalesce(sum(jsonb_array_length(media)), 0) FROM ins""", params)
    written, media_written = cur.fetchone()
    stats.written += written
    ctx.table("MessageMedia").written += media_written
    if written + skipped < len(out):
        _quarantine_unplaced(ctx, cur, by_id, media)


def _quarantine_unplaced(ctx: Context, cur, by_id: dict[int, tuple], media: list[tuple]) -> None:
    cur.execute(f"""SELECT t.v1_id, CASE
            WHEN t.v1_conv IS NOT NULL AND EXISTS (SELECT 1 FROM {QUARANTINE_TABLE} q
                 WHERE q.v1_table = 'Conversations' AND q.v1_id = t.v1_conv) THEN 'conversation_quarantined'
            WHEN t.v1_conv IS NOT NULL THEN 'broken_reference_conversation'
            WHEN EXISTS (SELECT 1 FROM {QUARANTINE_TABLE} q WHERE q.v1_table = 'Lines' AND q.v1_id = t.v1_line)
                THEN 'line_quarantined'
            WHEN NOT EXISTS (SELECT 1 FROM messaging_line l WHERE l.v1_id = t.v1_line) THEN 'broken_reference_line'
            ELSE 'unresolved_contact' END
        FROM mig_msgs t WHERE NOT EXISTS (SELECT 1 FROM messaging_message m WHERE m.v1_id = t.v1_id)""")
    unplaced = cur.fetchall()
    media_by_msg: dict[int, list] = {}
    for mid, _, url, ctype in media:
        media_by_msg.setdefault(mid, []).append({"Url": url, "ContentType": ctype})
    items = []
    for v1_id, reason in unplaced:
        row = row_json(V1_COLUMNS, by_id[v1_id])
        row["MessageMedia"] = media_by_msg.get(v1_id, [])
        items.append((v1_id, reason, "", row))
    ctx.quarantine(TABLE, items)


def _scope_sql(ctx: Context) -> tuple[str, list]:
    if ctx.scope.kind == "all":
        return "", []
    return ' AND "LineId" = ANY(%s)', [ctx.line_ids]


def migrate_messages(ctx: Context) -> None:
    stats = ctx.table(TABLE)
    media_stats = ctx.table("MessageMedia")
    started = time.perf_counter()
    last = ctx.checkpoint(TABLE)
    scope_sql, scope_params = _scope_sql(ctx)
    v1 = v1_raw()
    with v1.cursor() as vc:
        vc.execute(f'SELECT count(*) FROM "{V1Message._meta.db_table}" WHERE "MessageId" > %s{scope_sql}',
                   [last, *scope_params])
        total = vc.fetchone()[0]
    parts = _sql_parts()
    phones: dict = {}
    with progress_bar(ctx, TABLE, total) as bar:
        while True:
            # A server-binding cursor: binary results (bytea and timestamps without text parsing).
            with psycopg.Cursor(v1) as vc:
                vc.execute(
                    f'SELECT {_SELECT} FROM "{V1Message._meta.db_table}" WHERE "MessageId" > %s{scope_sql} '
                    f'ORDER BY "MessageId" LIMIT %s',
                    [last, *scope_params, ctx.batch_size], binary=True,
                )
                rows = vc.fetchall()
                if not rows:
                    break
                lo, hi = rows[0][0], rows[-1][0]
                vc.execute(f'SELECT "MessageId", "MessageMediaId", "Url", "ContentType" FROM "{MEDIA_TABLE}" '
                           f'WHERE "MessageId" BETWEEN %s AND %s ORDER BY "MessageMediaId"', [lo, hi], binary=True)
                media = vc.fetchall()
            out, bad = _transform(ctx, rows, phones)
            media_stats.read += len(media)
            by_id = {row[0]: row for row in rows}
            with transaction.atomic(), connection.cursor() as cur:
                ctx.quarantine(TABLE, _with_media(bad, media))
                if out:
                    _write_batch(ctx, cur, parts, out, media, by_id)
                last = hi
                ctx.set_checkpoint(TABLE, last)
            stats.read += len(rows)
            bar.update(len(rows))
            ctx.batch_committed(TABLE)
    if ctx.scope.kind == "all":
        _quarantine_orphan_media(ctx)
    stats.seconds += time.perf_counter() - started


def _with_media(bad: list[tuple], media: list[tuple]) -> list[tuple]:
    if not bad:
        return bad
    ids = {b[0] for b in bad}
    for mid, _, url, ctype in media:
        if mid in ids:
            for b in bad:
                if b[0] == mid:
                    b[3].setdefault("MessageMedia", []).append({"Url": url, "ContentType": ctype})
    return bad


def _quarantine_orphan_media(ctx: Context) -> None:
    """Media rows of no v1 message (only visible to a whole-database run)."""
    cols = ["MessageMediaId", "MessageId", "Url", "ContentType"]
    with v1_raw().cursor() as vc:
        vc.execute(f"""SELECT {", ".join(f'mm."{c}"' for c in cols)} FROM "{MEDIA_TABLE}" mm
                       WHERE NOT EXISTS (SELECT 1 FROM "{V1Message._meta.db_table}" m
                                         WHERE m."MessageId" = mm."MessageId")""")
        rows = vc.fetchall()
    with transaction.atomic():
        ctx.quarantine("MessageMedia", [(r[0], "broken_reference_message", "", row_json(cols, r)) for r in rows])
