"""A realistic two-year history, loaded set-based (bench/bench_history.py; docs/performance.md, "History").

At scale 1: 10,000,000 messages over two years, 2,000,000 contacts, 1,000,000 conversations, 50
organizations with a skewed size (organization k holds a share ~ 1/(k+1)^0.8: the biggest ~15 % of
everything, the smallest ~0.7 %), 1 to 20 lines each (173 in all), ~7,000 blasts of 1,000 recipients,
per-recipient short links in a fifth of the blasts and a click on a tenth of those links, and the last
30 days of stored delivery reports. (No post-processing events: events_prune keeps 7 days of done ones, which no
index but the table's key holds, and postprocessing.services.record.outbox_insert is their one writer.)
Statuses as a platform has them: outbound 93 % delivered, 3 % undelivered, 1.5 % failed, 1 % blocked, 1 % sent
without a final report (unknown after three days: the reconciler's verdict), 0.03 % stuck in `sending`
(~3,000); inbound `received`.

Rows are made by PostgreSQL itself (INSERT … SELECT over generate_series, in chunks of CHUNK messages,
each its own transaction), not streamed from Python through COPY: no row is built, formatted and parsed
twice, and the Python process is not the bound. Every index, constraint and trigger of
production stays in place during the load (the work queue's trigger fills messaging_message_inflight
with the `sending`/`sent` rows), and rows go in in time order, as a platform writes them. Ids of
contacts, conversations and messages are given explicitly (base + position) so the arithmetic that
places a message also names its conversation, contact and line; the sequences are moved past them.
A VACUUM (ANALYZE) at the end stands for the two years of autovacuum the history had.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.db import connection

from carriers.models import CarrierAccount, Provider, WebhookKind, WebhookState
from messaging.models import BlastStatus, ConversationStatus, Direction, Line
from messaging.status import MessageStatus as S
from organizations.models import Organization

FULL_MESSAGES = 10_000_000
ORG_PREFIX = "history-"
ORGS = 50
BLAST_SIZE = 1000  # recipients per history blast (one carrier batch each)
# Messages per INSERT statement (one transaction): big enough that the statement overhead and the work
# queue trigger's per-statement pass are noise, small enough that a transition table and the WAL of one
# statement stay in the hundreds of MB.
CHUNK = 250_000
DAYS = 730
HASH = 2654435761  # Knuth's multiplicative hash; odd and prime to 62, so codes below are unique
CODE_SPACE = 62**8

TABLES = (
    "messaging_message",
    "messaging_message_inflight",
    "messaging_conversation",
    "messaging_contact",
    "messaging_blast",
    "shortener_link",
    "shortener_click",
    "shortener_linkvisitor",
    "carriers_webhookevent",
)


@dataclass
class Plan:
    scale: float
    messages: int
    orgs: list[int] = field(default_factory=list)
    org_cum: list[float] = field(default_factory=list)  # block → organization, by weight
    contacts: list[int] = field(default_factory=list)  # per organization
    contact_start: list[int] = field(default_factory=list)
    conversations: list[int] = field(default_factory=list)
    conv_start: list[int] = field(default_factory=list)
    line_start: list[int] = field(default_factory=list)
    line_n: list[int] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    cbase: int = 0
    vbase: int = 0
    bbase: int = 0
    mbase: int = 0


def plan(scale: float) -> Plan:
    p = Plan(scale=scale, messages=round(FULL_MESSAGES * scale))
    weights = [1 / (k + 1) ** 0.8 for k in range(ORGS)]
    total = sum(weights)
    acc = 0.0
    for k, w in enumerate(weights):
        p.org_cum.append(acc)
        acc += w / total
        contacts = max(2 * BLAST_SIZE // 10, round(2_000_000 * scale * w / total))
        p.contact_start.append(sum(p.contacts))
        p.contacts.append(contacts)
        p.conv_start.append(sum(p.conversations))
        p.conversations.append(contacts // 2)
        p.line_n.append(1 + round(19 * w / weights[0]) if k else 20)
    return p


def _max_id(cursor, table: str) -> int:
    cursor.execute(f"SELECT COALESCE(max(id), 0) FROM {table}")  # noqa: S608 - table from TABLES
    return cursor.fetchone()[0]


def _setval(cursor, table: str) -> None:
    cursor.execute(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"  # noqa: S608 - ours
    )


def _tenants(p: Plan, stamp: int) -> None:
    for k in range(ORGS):
        org = Organization.objects.create(name=f"{ORG_PREFIX}{stamp}-{k:02d}", quiet_hours_enabled=False)
        account = CarrierAccount.objects.create(
            organization=org,
            name="History carrier",
            provider=Provider.SANDBOX,
            config={"service_plan_id": "history", "api_token": "history-token", "base_url": "http://127.0.0.1:9"},
        )
        p.orgs.append(org.id)
        p.line_start.append(len(p.lines))
        made = Line.objects.bulk_create(
            [
                Line(
                    organization=org,
                    carrier_account=account,
                    name=f"history line {j}",
                    phone_number=f"+1830{2_000_000 + k * 100 + j:07d}",
                    is_active=False,  # archived: their numbers do not reserve anything live
                )
                for j in range(p.line_n[k])
            ]
        )
        p.lines.extend(line.id for line in made)


_ARRAYS = """
    %(orgs)s::bigint[] AS orgs, %(contact_start)s::bigint[] AS cstart, %(conv_start)s::bigint[] AS vstart,
    %(conversations)s::bigint[] AS vn, %(line_start)s::int[] AS lstart, %(line_n)s::int[] AS ln,
    %(lines)s::bigint[] AS lines
"""

_CONTACTS_SQL = f"""
INSERT INTO messaging_contact
    (id, organization_id, phone_number, sender_kind, first_name, last_name, email, custom_fields, created_at,
     updated_at)
SELECT %(cbase)s + g, a.orgs[k], '+1' || (200 + k) || (2000000 + g - a.cstart[k]), 'phone',
       'First' || (g - a.cstart[k]), (ARRAY['Smith','Garcia','Nguyen','Johnson','Brown'])[1 + g %% 5], '',
       jsonb_build_object('city', (ARRAY['Austin','Dallas','Houston'])[1 + g %% 3]),
       %(start)s::timestamptz + (g::float8 / %(total)s) * %(span)s::interval,
       %(start)s::timestamptz + (g::float8 / %(total)s) * %(span)s::interval
FROM (SELECT {_ARRAYS}) a,
     LATERAL (SELECT g, width_bucket(g, a.cstart) AS k FROM generate_series(0, %(total)s - 1) g) s
"""  # noqa: S608 — this module's constants and fragments only; values bound

_CONVERSATIONS_SQL = f"""
INSERT INTO messaging_conversation
    (id, organization_id, line_id, contact_id, status, last_message_at, last_message_preview, created_at)
SELECT %(vbase)s + g, a.orgs[k], a.lines[a.lstart[k] + (g - a.vstart[k]) %% a.ln[k] + 1],
       %(cbase)s + a.cstart[k] + (g - a.vstart[k]),
       CASE WHEN g %% 10 < 3 THEN %(open)s ELSE %(closed)s END, NULL, '', %(start)s::timestamptz
FROM (SELECT {_ARRAYS}) a,
     LATERAL (SELECT g, width_bucket(g, a.vstart) AS k FROM generate_series(0, %(total)s - 1) g) s
"""  # noqa: S608 — this module's constants and fragments only; values bound

# A block of BLAST_SIZE consecutive messages belongs to one organization (by weight); 7 blocks in 10 are
# a blast (from one of its lines, to that line's conversations), the others conversation traffic
# (alternately inbound and an answer, on one conversation per pair).
_BLOCKS = f"""
FROM (SELECT {_ARRAYS}) a,
     LATERAL (
        SELECT b, width_bucket(((b * {HASH}) %% 4294967296) / 4294967296.0, %(org_cum)s::float8[]) AS k,
               (b * 40503) %% 10 < 7 AS is_blast
        FROM generate_series(%(b_lo)s::bigint, %(b_hi)s::bigint - 1) b
     ) blk
"""  # noqa: S608 — this module's constants and fragments only; values bound

_BLASTS_SQL = f"""
INSERT INTO messaging_blast
    (id, organization_id, line_id, name, body, status, created_at, launched_at, completed_at, recipient_count,
     opted_out_count, sent_count, delivered_count, failed_count, undelivered_count, delivery_rate, prepare_seen)
SELECT %(bbase)s + b, a.orgs[k], a.lines[a.lstart[k] + b %% a.ln[k] + 1], 'History blast ' || b,
       'Hi {{first_name}}, our sale starts now. Reply STOP to opt out', %(completed)s,
       %(start)s::timestamptz + (b * {BLAST_SIZE})::float8 / %(total)s * %(span)s::interval,
       %(start)s::timestamptz + (b * {BLAST_SIZE})::float8 / %(total)s * %(span)s::interval,
       %(start)s::timestamptz + ((b + 1) * {BLAST_SIZE})::float8 / %(total)s * %(span)s::interval,
       {BLAST_SIZE}, 0, {BLAST_SIZE}, 930, 15, 30, 0.93, {BLAST_SIZE}
{_BLOCKS}
WHERE is_blast
"""  # noqa: S608 — this module's constants and fragments only; values bound


def _code(x: str) -> str:
    """The 8-character short code of the number x (base 62 of a bijection of x mod 62^8)."""
    alphabet = "'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'"
    v = f"(({x}) * {HASH} + 12345) %% {CODE_SPACE}"
    return " || ".join(f"substr({alphabet}, ((({v}) / {62**n}) %% 62 + 1)::int, 1)" for n in range(8))


# One chunk of messages [lo, hi), and in the same statement the links of the link blasts' messages
# (a fifth of the blasts) and a click (with its visitor) on every tenth link.
_MESSAGES_SQL = f"""
WITH src AS (
    SELECT m.*, a.lines[a.lstart[m.k] + m.j %% a.ln[m.k] + 1] AS line_id, a.orgs[m.k] AS org_id,
           %(vbase)s + a.vstart[m.k] + m.j AS conversation_id, %(cbase)s + a.cstart[m.k] + m.j AS contact_id,
           '+1' || (200 + m.k) || (2000000 + m.j) AS phone
    FROM (SELECT {_ARRAYS}) a,
    LATERAL (
        SELECT i, b, k, is_blast, r, t, dir,
               CASE WHEN is_blast
                    THEN b %% a.ln[k] + a.ln[k] * ((b * 7919 + i %% {BLAST_SIZE}) %% greatest(1, a.vn[k] / a.ln[k]))
                    ELSE ((i / 2) * {HASH} %% 4294967296) %% a.vn[k] END AS j
        FROM (
            SELECT i, i / {BLAST_SIZE} AS b,
                   width_bucket((((i / {BLAST_SIZE}) * {HASH}) %% 4294967296) / 4294967296.0,
                                %(org_cum)s::float8[]) AS k,
                   ((i / {BLAST_SIZE}) * 40503) %% 10 < 7 AS is_blast,
                   (i * {HASH}) %% 10007 AS r,
                   %(start)s::timestamptz + (i::float8 / %(total)s) * %(span)s::interval AS t,
                   CASE WHEN ((i / {BLAST_SIZE}) * 40503) %% 10 < 7 OR i %% 2 = 1 THEN %(out)s ELSE %(in)s END
                       AS dir
            FROM generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) i
        ) x
    ) m
), gen AS (
    SELECT src.*, %(mbase)s + i AS id,
           CASE WHEN dir = %(in)s THEN %(received)s
                WHEN r < 3 THEN %(sending)s
                WHEN r < 9300 THEN %(delivered)s
                WHEN r < 9600 THEN %(undelivered)s
                WHEN r < 9750 THEN %(failed)s
                WHEN r < 9850 THEN %(blocked)s
                WHEN r < 9950 THEN CASE WHEN t > now() - interval '3 days' THEN %(sent)s ELSE %(unknown)s END
                ELSE %(delivered)s END AS status,
           is_blast AND b %% 5 = 0 AS has_link
    FROM src
), msg AS (
    INSERT INTO messaging_message
        (id, organization_id, line_id, conversation_id, contact_id, blast_id, direction, body, rendered_body, media,
         status, segments, encoding, carrier_batch_id, carrier_recipient, client_reference, carrier_status,
         error_code, error_reason, send_attempts, send_batch_ref, created_at, prepared_at, sending_at, sent_at,
         delivered_at, failed_at, received_at, status_updated_at)
    SELECT id, org_id, line_id, conversation_id, contact_id, CASE WHEN is_blast THEN %(bbase)s + b END, dir,
           CASE WHEN is_blast THEN 'Hi {{first_name}}, our sale starts now. Reply STOP to opt out'
                WHEN dir = %(in)s THEN 'Is the store open on Sunday?' ELSE 'Yes, 10 to 6. See you!' END,
           CASE WHEN has_link THEN 'Hi First' || j || ', our sale starts now: https://' || %(domain)s || '/'
                                   || {_code("id")} || ' Reply STOP to opt out'
                WHEN is_blast THEN 'Hi First' || j || ', our sale starts now. Reply STOP to opt out'
                WHEN dir = %(in)s THEN 'Is the store open on Sunday?' ELSE 'Yes, 10 to 6. See you!' END,
           '[]', status, 1, 'GSM-7',
           CASE WHEN dir = %(in)s OR status IN (%(sending)s, %(blocked)s) THEN ''
                WHEN is_blast THEN 'HB' || lpad(b::text, 24, '0') ELSE 'HM' || lpad(i::text, 24, '0') END,
           CASE WHEN dir = %(in)s OR status = %(blocked)s THEN '' ELSE phone END,
           CASE WHEN is_blast THEN 'bl:' || (%(bbase)s + b) || ':' || i END,
           CASE status WHEN %(delivered)s THEN 'Delivered' WHEN %(undelivered)s THEN 'Expired'
                       WHEN %(failed)s THEN 'Failed' ELSE '' END,
           CASE WHEN status = %(failed)s THEN '402' ELSE '' END, '',
           CASE WHEN dir = %(out)s AND status <> %(blocked)s THEN 1 ELSE 0 END,
           CASE WHEN dir = %(in)s OR status = %(blocked)s THEN ''
                WHEN is_blast THEN 'b:' || lpad(to_hex(b), 32, '0') ELSE 'b:m' || lpad(to_hex(i), 31, '0') END,
           t, CASE WHEN dir = %(out)s THEN t END,
           CASE WHEN dir = %(out)s AND status <> %(blocked)s THEN t + interval '1 second' END,
           CASE WHEN dir = %(out)s AND status NOT IN (%(sending)s, %(blocked)s) THEN t + interval '2 seconds' END,
           CASE WHEN status = %(delivered)s THEN t + interval '6 seconds' END,
           CASE WHEN status IN (%(failed)s, %(undelivered)s) THEN t + interval '9 seconds' END,
           CASE WHEN dir = %(in)s THEN t END,
           t + interval '6 seconds'
    FROM gen
    ORDER BY i
    RETURNING id, organization_id, contact_id, blast_id, created_at, client_reference, rendered_body
), lnk AS (
    INSERT INTO shortener_link
        (code, organization_id, target_url, fallback_url, message_id, contact_id, blast_id, created_at,
         click_count, unique_click_count, bot_click_count, last_clicked_at)
    SELECT {_code("id")}, organization_id, 'https://shop.example.com/sale?utm_source=sms&m=' || id, '', id,
           contact_id, blast_id, created_at,
           CASE WHEN id %% 10 = 0 THEN 1 ELSE 0 END, CASE WHEN id %% 10 = 0 THEN 1 ELSE 0 END, 0,
           CASE WHEN id %% 10 = 0 THEN created_at + interval '7 minutes' END
    FROM msg WHERE rendered_body LIKE '%%://%%'
    RETURNING id, contact_id, last_clicked_at
), visitors AS (
    INSERT INTO shortener_linkvisitor (link_id, visitor, first_clicked_at)
    SELECT id, 'c' || contact_id, last_clicked_at FROM lnk WHERE last_clicked_at IS NOT NULL
)
INSERT INTO shortener_click
    (link_id, uid, clicked_at, method, user_agent, referrer, ip_prefix, visitor_hash, is_bot, bot_reason, is_unique)
SELECT id, 'h' || id, last_clicked_at, 'GET', 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)', '',
       '203.0.113.0/24', md5(contact_id::text)::varchar(32), false, '', true
FROM lnk WHERE last_clicked_at IS NOT NULL
"""  # noqa: S608 — this module's constants and fragments only; values bound

# Each conversation's first and last message, as post-processing keeps them (recompute_derived's result).
_DERIVED_SQL = """
UPDATE messaging_conversation c
SET last_message_at = x.last_at, created_at = x.first_at, last_message_preview = 'Hi, our sale starts now.'
FROM (SELECT conversation_id, max(created_at) AS last_at, min(created_at) AS first_at
      FROM messaging_message WHERE id >= %(mbase)s GROUP BY conversation_id) x
WHERE c.id = x.conversation_id
"""

# The stored reports of the last 30 days: what the retention keeps (WEBHOOK_EVENT_RETENTION_DAYS, docs/carriers.md).
_WEBHOOKS_SQL = """
INSERT INTO carriers_webhookevent (account_id, kind, body, received_at, state, attempts, processed_at, error)
SELECT a.id, %(delivery)s,
       convert_to(json_build_object('type', 'recipient_delivery_report_sms', 'batch_id', m.carrier_batch_id,
                  'recipient', ltrim(m.carrier_recipient, '+'), 'code', 0, 'status', m.carrier_status,
                  'at', m.status_updated_at)::text, 'UTF8'),
       m.status_updated_at, %(processed)s, 1, m.status_updated_at, ''
FROM messaging_message m JOIN carriers_carrieraccount a ON a.organization_id = m.organization_id
WHERE m.id >= %(from_id)s AND m.status IN (%(delivered)s, %(undelivered)s, %(failed)s)
  AND m.carrier_batch_id <> ''
ORDER BY m.id
"""


def _params(p: Plan, **extra) -> dict:
    from django.conf import settings

    return {
        "orgs": p.orgs,
        "contact_start": p.contact_start,
        "conv_start": p.conv_start,
        "conversations": p.conversations,
        "line_start": p.line_start,
        "line_n": p.line_n,
        "lines": p.lines,
        "org_cum": p.org_cum,
        "cbase": p.cbase,
        "vbase": p.vbase,
        "bbase": p.bbase,
        "mbase": p.mbase,
        "start": f"-{DAYS} days",
        "span": f"{DAYS} days -1 hour",
        "domain": settings.SHORT_LINK_DOMAIN,
        **{s.name.lower(): s.value for s in S},
        "in": Direction.INBOUND.value,
        "out": Direction.OUTBOUND.value,
        "open": ConversationStatus.OPEN.value,
        "closed": ConversationStatus.CLOSED.value,
        "completed": BlastStatus.COMPLETED.value,
        "delivery": WebhookKind.DELIVERY.value,
        "processed": WebhookState.PROCESSED.value,
        **extra,
    }


def _start_expr(params: dict) -> dict:
    """`start` as a timestamp: now() minus DAYS, fixed once for every statement of the load."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT now() - %s::interval", [f"{DAYS} days"])
        return {**params, "start": cursor.fetchone()[0]}


def load(scale: float, log=print) -> dict:
    """Loads the history (autocommit, a transaction per statement). Returns the seconds of each step."""
    p = plan(scale)
    steps: dict[str, float] = {}
    started = time.perf_counter()
    with connection.cursor() as cursor:
        p.cbase = _max_id(cursor, "messaging_contact") + 1
        p.vbase = _max_id(cursor, "messaging_conversation") + 1
        p.bbase = _max_id(cursor, "messaging_blast") + 1
        p.mbase = _max_id(cursor, "messaging_message") + 1
    _tenants(p, int(time.time()))
    params = _start_expr(_params(p))

    def step(name: str, sql: str, **extra) -> None:
        t = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(sql, {**params, **extra})
            rows = cursor.rowcount
        steps[name] = steps.get(name, 0.0) + time.perf_counter() - t
        log(f"  {name}: {rows:,} rows in {time.perf_counter() - t:.1f} s")

    step("contacts", _CONTACTS_SQL, total=sum(p.contacts))
    step("conversations", _CONVERSATIONS_SQL, total=sum(p.conversations))
    blocks = -(-p.messages // BLAST_SIZE)
    step("blasts", _BLASTS_SQL, total=p.messages, b_lo=0, b_hi=blocks)
    for lo in range(0, p.messages, CHUNK):
        hi = min(p.messages, lo + CHUNK)
        step("messages", _MESSAGES_SQL, total=p.messages, lo=lo, hi=hi)
        done = time.perf_counter() - started
        log(f"  {hi:,} of {p.messages:,} messages, {done:.0f} s, {hi / max(steps['messages'], 1e-9):,.0f} messages/s")
    step("conversation_derived", _DERIVED_SQL)
    recent = p.mbase + round(p.messages * (1 - 30 / DAYS))
    step("webhook_events_30d", _WEBHOOKS_SQL, from_id=recent)
    with connection.cursor() as cursor:
        for table in ("messaging_contact", "messaging_conversation", "messaging_blast", "messaging_message"):
            _setval(cursor, table)
    t = time.perf_counter()
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    steps["vacuum_analyze"] = time.perf_counter() - t
    log(f"  vacuum (analyze): {steps['vacuum_analyze']:.1f} s")
    total = time.perf_counter() - started
    return {
        "scale": scale,
        "messages": p.messages,
        "contacts": sum(p.contacts),
        "conversations": sum(p.conversations),
        "organizations": ORGS,
        "lines": len(p.lines),
        "seconds": round(total, 1),
        "messages_per_s": round(p.messages / steps["messages"]) if p.messages else None,
        "steps_s": {k: round(v, 1) for k, v in steps.items()},
        "biggest_org_id": p.orgs[0],
    }


def sizes() -> dict:
    """Database size, and per table its rows (estimate), heap and each index's size, in MB."""
    mb = 2**20
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        db = cursor.fetchone()[0]
        out: dict = {"database_mb": round(db / mb), "tables": {}}
        for table in TABLES:
            cursor.execute(
                "SELECT c.reltuples::bigint, pg_relation_size(c.oid), pg_total_relation_size(c.oid) "
                "FROM pg_class c WHERE c.relname = %s",
                [table],
            )
            rows, heap, total = cursor.fetchone()
            cursor.execute(
                "SELECT i.relname, pg_relation_size(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                "WHERE x.indrelid = %s::regclass ORDER BY pg_relation_size(i.oid) DESC",
                [table],
            )
            out["tables"][table] = {
                "rows": rows,
                "heap_mb": round(heap / mb, 1),
                "total_mb": round(total / mb, 1),
                "indexes_mb": {name: round(size / mb, 1) for name, size in cursor.fetchall()},
            }
    return out
