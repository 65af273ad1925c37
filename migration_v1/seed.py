"""Synthetic v1 databases: `manage.py v1_seed`, the tests and the benchmark.

Everything is generated inside PostgreSQL with generate_series (no row crosses into Python), so a
million messages take seconds. The data is deterministic for given sizes, and carries every known
problem of the spec in the proportions of `PROBLEMS` (documented in docs/migration_v1.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
from psycopg import sql

SCHEMA_SQL = Path(__file__).with_name("sql") / "v1_schema.sql"
# The spec's schema as written (text bodies, no NOT NULL): see the file's header.
SPEC_SCHEMA_SQL = Path(__file__).with_name("sql") / "v1_schema_spec.sql"
SCHEMAS = {"project": SCHEMA_SQL, "spec": SPEC_SCHEMA_SQL}

# Share of rows carrying each known problem: "1 in N" rows (chosen by id arithmetic).
PROBLEMS = {
    "account_name_padded": "1 in 3 accounts",
    "account_time_zone": "Windows ids cycled over all 7 + NULL",
    "user_email_messy": "every admin email mixed case with spaces",
    "user_in_two_accounts": "support staff in every account, 1 in 4 agents also in the previous account",
    "user_duplicate_in_account": "1 in 5 accounts has the admin twice",
    "user_deleted": "1 in 3 accounts has a deleted agent",
    "line_phone_formats": "5 formats, cycled",
    "line_provider_variants": "Sinch, SINCH, 'sinch ', NULL; Bandwidth 1 in 7 lines, Twilio 1 in 11",
    "line_deleted": "1 in 9 lines",
    "line_junk_number": "one extra line (account 1) whose number is a placeholder, with a Sinch secret",
    "contact_junk_phone": "1 in 97 contacts (N/A, empty, 7 digits, NULL)",
    "contact_duplicate_number": "1 in 33 contacts repeats an earlier contact's number in another format",
    "contact_opted_out": "1 in 20 contacts",
    "conversation_duplicate": "1 in 50 conversations has a v1-bug twin",
    "conversation_deleted": "1 in 31",
    "message_blast_without_conversation": "1 in 5 messages are blast messages, ConversationId NULL",
    "message_old_without_conversation": "1 in 97 conversation messages have ConversationId NULL",
    "message_broken_conversation": "1 in 2003 messages point at a ConversationId that does not exist",
    "message_direction_lowercase": "1 in 211",
    "message_body_null_picture_only": "1 in 101 (with media)",
    "message_body_nul": "1 in 9973 bodies hold a NUL",
    "message_body_bad_utf8": "1 in 9973 bodies hold a byte sequence that is not UTF-8",
    "message_stuck_sending": "2 in 100 outbound messages",
    "message_dst_fold_gap": "1 in 1000 at an ambiguous autumn time, 1 in 1000 inside the spring gap",
    "media_orphan": "3 media rows point at no message",
}


@dataclass(frozen=True)
class SeedSizes:
    accounts: int
    users_per_account: int
    lines_per_account: int
    contacts_per_account: int
    conversations: int
    blasts: int
    messages: int

    @classmethod
    def for_messages(
        cls,
        messages: int,
        *,
        accounts: int | None = None,
        contacts: int | None = None,
        blasts: int | None = None,
        lines_per_account: int = 3,
        users_per_account: int = 5,
    ):
        # Proportions of a typical v1 client: ~10 messages per contact, ~50k messages per account.
        accounts = accounts or max(2, messages // 50_000)
        contacts = contacts or max(20 * accounts, messages // 10)
        cpa = max(10, contacts // accounts)
        return cls(
            accounts=accounts,
            users_per_account=users_per_account,
            lines_per_account=lines_per_account,
            contacts_per_account=cpa,
            conversations=cpa * accounts + cpa * accounts // 10,
            blasts=blasts or max(2, messages // 20_000),
            messages=messages,
        )


def admin_dsn(dsn: str) -> str:
    return psycopg.conninfo.make_conninfo(dsn, dbname="postgres")


# Databases made here carry this comment; an existing database without it is never dropped (it could
# be a real v1 copy that V1_DATABASE_URL points at) unless force=True.
SEED_COMMENT = "parley synthetic v1 (migration_v1.seed)"


class NotASeedDatabase(RuntimeError):
    pass


def create_database(dsn: str, *, reset: bool, force: bool = False) -> None:
    name = str(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"])
    with psycopg.connect(admin_dsn(dsn), autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if row and reset:
            if row[0] != SEED_COMMENT and not force:
                raise NotASeedDatabase(f"database {name!r} was not made by v1_seed; refusing to drop it (--force)")
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            row = None
        if not row:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            comment = sql.SQL("COMMENT ON DATABASE {} IS {}")
            conn.execute(comment.format(sql.Identifier(name), sql.Literal(SEED_COMMENT)))


def drop_database(dsn: str) -> None:
    name = str(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"])
    with psycopg.connect(admin_dsn(dsn), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# Contact number n → E.164 digits (10, NANP): area 737, exchanges 200..999, all valid for libphonenumber.
_NUM10 = "('737' || (200 + ({n} / 10000) % 800)::text || lpad(({n} % 10000)::text, 4, '0'))"


def _fmt(num10: str, variant: str) -> str:
    """The five free-form shapes v1 stored, chosen by `variant` (0..4)."""
    return f"""(CASE ({variant}) % 5
        WHEN 0 THEN '+1' || {num10}
        WHEN 1 THEN '1' || {num10}
        WHEN 2 THEN {num10}
        WHEN 3 THEN '(' || substr({num10}, 1, 3) || ') ' || substr({num10}, 4, 3) || '-' || substr({num10}, 7)
        ELSE substr({num10}, 1, 3) || '.' || substr({num10}, 4, 3) || '.' || substr({num10}, 7) END)"""


def _statements(s: SeedSizes, *, text_body: bool = False) -> list[str]:
    A, U, L, CPA = s.accounts, s.users_per_account, s.lines_per_account, s.contacts_per_account
    C = CPA * A
    V = C + C // 10  # base conversations; the duplicates are appended after V
    line_num10 = "('512' || (300 + (l / 10000) % 700)::text || lpad((l % 10000)::text, 4, '0'))"
    contact_n = f"(CASE WHEN k % 33 = 0 AND k > {A} THEN k - {A} ELSE k END)"
    return [
        # Accounts: padded names, Windows time zones (NULL = Central), fold/gap creation times.
        f"""INSERT INTO "Accounts" SELECT a,
            CASE WHEN a % 3 = 0 THEN '  ' || 'Client ' || a || ' Dental  ' ELSE 'Client ' || a || ' Realty' END,
            (ARRAY[NULL, 'Eastern Standard Time', 'Central Standard Time', 'Mountain Standard Time',
                   'US Mountain Standard Time', 'Pacific Standard Time', 'Alaskan Standard Time',
                   'Hawaiian Standard Time'])[a % 8 + 1],
            a % 10 <> 7,
            CASE a WHEN 1 THEN timestamp '2019-11-03 01:30:00' WHEN 2 THEN timestamp '2019-03-10 02:30:00'
                   ELSE timestamp '2016-01-01' + a * interval '1 day 3 hours' END
            FROM generate_series(1, {A}) a""",  # noqa: S608 — v1 table and column names from the unmanaged models; values bound or generated
        # Users: k=1 admin (messy email), k=2..U-1 agents, k=U support staff shared by all accounts.
        f"""INSERT INTO "Users" SELECT (a - 1) * {U} + k, a,
            CASE WHEN k = 1 THEN '  Admin.' || a || '@Client' || a || '.Example.com '
                 WHEN k = {U} THEN 'Support.' || (a % 3) || '@Parley-Staff.example'
                 WHEN k = 2 AND a % 4 = 0 THEN 'agent2.' || (a - 1) || '@client' || (a - 1) || '.example.com'
                 ELSE 'agent' || k || '.' || a || '@client' || a || '.example.com' END,
            'First' || k, CASE WHEN k % 2 = 0 THEN NULL ELSE 'Last' || a END,
            CASE WHEN k = 1 THEN 1 WHEN k = {U} THEN 3 ELSE 2 END,
            k = {U} - 1 AND a % 3 = 0,
            timestamp '2016-02-01' + ((a - 1) * {U} + k) * interval '5 hours'
            FROM generate_series(1, {A}) a, generate_series(1, {U}) k""",  # noqa: S608 — v1 table and column names from the unmanaged models; values bound or generated
        # The same admin entered twice in one account (different case).
        f"""INSERT INTO "Users" SELECT {A * U} + a, a, upper('admin.' || a || '@client' || a || '.example.com'),
            'Again', NULL, 1, false, timestamp '2017-01-01' FROM generate_series(1, {A}) a WHERE a % 5 = 2""",  # noqa: S608 — v1 table and column names from the unmanaged models; values bound or generated
        # Lines: free-form numbers, provider spellings, secrets in ProviderConfig, deleted lines.
        f"""INSERT INTO "Lines" SELECT l, (l - 1) / {L} + 1,
            {_fmt(line_num10, "l")},
            CASE WHEN l % 4 = 0 THEN NULL ELSE 'Line ' || l END,
            CASE WHEN l % 7 = 3 THEN 'Bandwidth' WHEN l % 11 = 4 THEN 'Twilio'
                 ELSE (ARRAY['Sinch', 'SINCH', 'sinch ', NULL])[l % 4 + 1] END,
            CASE WHEN l % 7 = 3 THEN '{{"accountId": "bw-' || l || '", "username": "api", "password": "bwpass-'
                                     || md5('bw' || l) || '"}}'
                 WHEN l % 11 = 4 THEN '{{"accountSid": "AC' || md5('tw' || l) || '", "authToken": "'
                                      || md5('twtok' || l) || '"}}'
                 ELSE '{{"servicePlanId": "plan' || ((l - 1) / {L} + 1) || CASE WHEN l % {L} = 2 THEN 'b' ELSE '' END
                      || '", "apiToken": "sinchtok-' || md5('tok' || ((l - 1) / {L} + 1)) || '", "region": "us"}}' END,
            l % 9 = 5,
            timestamp '2016-03-01' + l * interval '1 day'
            FROM generate_series(1, {A * L}) l""",  # noqa: S608 — v1 table and column names from the unmanaged models; values bound or generated
        f"""INSERT INTO "Lines" VALUES ({A * L + 1}, 1, 'TBD', 'Placeholder', 'Sinch',
            '{{"servicePlanId": "planX", "apiToken": "sinchtok-junkline-secret", "region": "us"}}', false,
            timestamp '2018-05-05')""",  # noqa: S608 — v1 table and column names from the unmanaged models; values bound or generated
        # Contacts: junk numbers, same number twice in one account in two formats, opt-outs.
        f"""INSERT INTO "Contacts" SELECT k, (k - 1) % {A} + 1,
            CASE WHEN k % 97 = 13 THEN (ARRAY['N/A', '', '5550100', NULL, '000'])[(k / 97) % 5 + 1]
                 ELSE {_fmt(_NUM10.format(n=contact_n), "k + 2")} END,
            'Pat' || k, CASE WHEN k % 3 = 0 THEN NULL ELSE 'Rivera' END,
            CASE WHEN k % 4 = 0 THEN 'pat' || k || '@mail.example' END,
            k % 20 = 3,
            CASE WHEN k % 20 = 3 AND k % 40 <> 3 THEN timestamp '2020-06-01' + k * interval '1 minute' END,
            timestamp '2017-01-01' + k * interval '7 minutes'
            FROM generate_series(1, {C}) k""",  # noqa: S608 — v1 table and column names from the unmanaged models; values bound or generated
        # Conversations: contact k, line chosen by its number (so duplicate contacts land on the same
        # line and merge); then the v1-bug twins of 1 in 50.
        f"""INSERT INTO "Conversations" SELECT v, ((ct - 1) % {A}) * {L} + ((n + r) % {L}) + 1, ct,
            v % 4 = 0, CASE WHEN v % 3 = 0 THEN ((ct - 1) % {A}) * {U} + 2 END,
            CASE WHEN v % 2 = 0 THEN timestamp '2018-01-01' END,
            v % 31 = 5,
            timestamp '2017-06-01' + v * interval '3 minutes'
            FROM (SELECT v, (v - 1) % {C} + 1 AS ct, (v - 1) / {C} AS r FROM generate_series(1, {V}) v) s,
                 LATERAL (SELECT CASE WHEN s.ct % 33 = 0 AND s.ct > {A} THEN s.ct - {A} ELSE s.ct END AS n) nn""",  # noqa: S608 — v1 table and column names from the unmanaged models; values bound or generated
        f"""INSERT INTO "Conversations" SELECT {V} + row_number() OVER (ORDER BY "ConversationId"),
            "LineId", "ContactId", false, NULL, NULL, false, "CreatedOn" + interval '1 day'
            FROM "Conversations" WHERE "ConversationId" % 50 = 7""",  # noqa: S608 — v1 table and column names from the unmanaged models; values bound or generated
        f"""INSERT INTO "Blasts" SELECT b, (b - 1) % {A} + 1, ((b - 1) % {A}) * {L} + 1,
            CASE WHEN b % 2 = 0 THEN 'Promo ' || b END,
            'Hi! Our spring sale starts today, reply STOP to opt out. #' || b,
            ((b - 1) % {A}) * {U} + 1, timestamp '2019-01-01' + b * interval '2 days',
            CASE WHEN b % 10 <> 9 THEN timestamp '2019-01-01' + b * interval '2 days' + interval '1 hour' END
            FROM generate_series(1, {s.blasts}) b""",  # noqa: S608 — v1 table and column names from the unmanaged models; values bound or generated
        _messages_sql(s, V, text_body=text_body),
        # Media: picture-only messages and 1 in 53 others; three orphans.
        f"""INSERT INTO "MessageMedia" SELECT row_number() OVER (ORDER BY i), i,
            'https://media.v1.example/' || i || '.jpg', CASE WHEN i % 2 = 0 THEN 'image/jpeg' END
            FROM generate_series(1::bigint, {s.messages}) i WHERE i % 101 = 50 OR i % 53 = 0""",  # noqa: S608 — v1 table and column names from the unmanaged models; values bound or generated
        f"""INSERT INTO "MessageMedia" SELECT (SELECT coalesce(max("MessageMediaId"), 0) FROM "MessageMedia") + j,
            {s.messages} + 1000 + j, 'https://media.v1.example/orphan' || j || '.png', 'image/png'
            FROM generate_series(1, 3) j""",  # noqa: S608 — v1 table and column names from the unmanaged models; values bound or generated
    ]


def _messages_sql(s: SeedSizes, V: int, *, text_body: bool = False) -> str:
    A, L, U = s.accounts, s.lines_per_account, s.users_per_account
    B = s.blasts
    CPA = s.contacts_per_account
    digits = """right(regexp_replace(ct."PhoneNumber", '\\D', '', 'g'), 10)"""
    # A text Body cannot hold a NUL or bytes that are not UTF-8: those rows then carry plain text.
    if text_body:
        nul, bad = "convert_to('Hello there', 'UTF8')", "convert_to('Café au lait?', 'UTF8')"
    else:
        nul = "convert_to('Hello', 'UTF8') || '\\x00'::bytea || convert_to(' there', 'UTF8')"
        bad = "convert_to('Caf', 'UTF8') || '\\xe9'::bytea || convert_to(' au lait?', 'UTF8')"
    # Outbound status by i % 100: 0-1 stuck Sending, 2-4 Failed, 5-7 Undelivered, 8 Sent, 9 Pending,
    # 10 Queued, others Delivered.
    status = """CASE WHEN dir = 'I' THEN 7 ELSE CASE
        WHEN i % 100 < 2 THEN 2 WHEN i % 100 < 5 THEN 5 WHEN i % 100 < 8 THEN 6 WHEN i % 100 = 8 THEN 3
        WHEN i % 100 = 9 THEN 0 WHEN i % 100 = 10 THEN 1 ELSE 4 END END"""
    return f"""
    INSERT INTO "Messages"
    SELECT i,
        CASE WHEN is_blast THEN NULL WHEN i % 2003 = 7 THEN 99999999 WHEN i % 97 = 41 THEN NULL
             ELSE cv."ConversationId" END,
        CASE WHEN is_blast THEN b."LineId" ELSE cv."LineId" END,
        CASE WHEN ct."PhoneNumber" IS NULL OR length({digits}) < 10 THEN coalesce(ct."PhoneNumber", '')
             ELSE {_fmt(digits, "i")} END,
        CASE WHEN i % 211 = 17 THEN lower(dir) ELSE dir END,
        {"convert_from(" if text_body else ""}CASE WHEN i % 101 = 50 THEN NULL
             WHEN i % 9973 = 1 THEN {nul}
             WHEN i % 9973 = 2 THEN {bad}
             WHEN is_blast THEN convert_to(b."Body", 'UTF8')
             WHEN dir = 'I' THEN convert_to((ARRAY['Yes, see you then', 'What time do you open?', 'STOP',
                 'Thanks! 👍', 'Can I reschedule to Tuesday?'])[i % 5 + 1], 'UTF8')
             ELSE convert_to('Hi Pat, this is a reminder about your appointment #' || i
                 || CASE WHEN i % 7 = 0 THEN ' — café opens at 9 ☕' ELSE '' END, 'UTF8') END{
        ", 'UTF8')" if text_body else ""
    },
        st,
        CASE WHEN dir = 'O' AND st >= 2 THEN CASE WHEN is_blast
             THEN substr(md5('blast' || b."BlastId" || '-' || (i / 5000)), 1, 26)
             ELSE substr(md5('m' || i), 1, 26) END END,
        CASE WHEN st IN (5, 6) THEN (ARRAY['30003', '30005', '402'])[i % 3 + 1] END,
        CASE WHEN dir = 'O' AND NOT is_blast THEN ((cv."LineId" - 1) / {L}) * {U} + 1 + i % 3 END,
        CASE WHEN is_blast THEN b."BlastId" END,
        created,
        CASE WHEN st IN (0, 1) OR dir = 'I' THEN NULL ELSE created + interval '7 seconds' END
    FROM (
        SELECT i, i % 5 = 0 AS is_blast,
            CASE WHEN i % 5 <> 0 AND i % 3 = 0 THEN 'I' ELSE 'O' END AS dir,
            CASE WHEN i % 1000 = 1 THEN timestamp '2021-11-07 01:00:00' + (i % 3600) * interval '1 second'
                 WHEN i % 1000 = 2 THEN timestamp '2021-03-14 02:00:00' + (i % 3600) * interval '1 second'
                 ELSE timestamp '2019-01-01' + i * interval '23 seconds' END AS created
        FROM generate_series(1::bigint, {s.messages}) i
    ) g
    CROSS JOIN LATERAL (SELECT {status} AS st) sts
    LEFT JOIN "Conversations" cv ON NOT is_blast AND cv."ConversationId" = (i * 7919) % {V} + 1
    LEFT JOIN "Blasts" b ON is_blast AND b."BlastId" = (i / 5) % {B} + 1
    LEFT JOIN "Contacts" ct ON ct."ContactId" = CASE WHEN is_blast
        THEN b."AccountId" + {A} * (((i / 5) * 13) % {CPA}) ELSE cv."ContactId" END
    """  # noqa: S608 — v1 table and column names from the unmanaged models; values bound or generated


def v1_seed(
    *,
    dsn: str,
    sizes: SeedSizes,
    reset: bool = True,
    force: bool = False,
    schema: str = "project",
    body_type: str | None = None,
) -> dict:
    """Create (or recreate) the v1 database at `dsn` and fill it. Returns row counts per table.

    `schema`: "project" (sql/v1_schema.sql, Body bytea) or "spec" (sql/v1_schema_spec.sql, the
    spec's types, Body text); `body_type` "bytea" or "text" overrides the Body column's type."""
    if schema not in SCHEMAS:
        raise ValueError(f"schema must be one of {sorted(SCHEMAS)}")
    body_type = body_type or ("text" if schema == "spec" else "bytea")
    if body_type not in ("bytea", "text"):
        raise ValueError("body_type must be bytea or text")
    create_database(dsn, reset=reset, force=force)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMAS[schema].read_text())
        if body_type != ("text" if schema == "spec" else "bytea"):
            using = "convert_to(\"Body\", 'UTF8')" if body_type == "bytea" else "convert_from(\"Body\", 'UTF8')"
            conn.execute(f'ALTER TABLE "Messages" ALTER COLUMN "Body" TYPE {body_type} USING {using}')
        for statement in _statements(sizes, text_body=body_type == "text"):
            conn.execute(statement)
        conn.execute("ANALYZE")
        counts = {}
        for table in ("Accounts", "Users", "Lines", "Contacts", "Conversations", "Blasts", "Messages", "MessageMedia"):
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
            counts[table] = row[0] if row else 0
    return {"schema": schema, "body_type": body_type, "sizes": asdict(sizes), "counts": counts}
