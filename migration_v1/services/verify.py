"""`migrate_v1 --verify`: compare v1 and v2, per account and per line, and say exactly what differs.

Expected v2 count = v1 rows − quarantined − merged (the id map records every merge), compared with the
v2 rows that carry a v1_id. Message content: md5 of the bodies in v1 id order, computed in SQL on both
sides (v1: the raw bytes; v2: the UTF-8 of the text — equal exactly when the text arrived intact).
When a line's count or checksum differs, both sides are listed per message to name the ids.
"""

from __future__ import annotations

import time
from typing import Any

from django.db import connection
from django.utils import timezone

from ..models import MigrationRun, RunStatus
from .engine import IDMAP_TABLE, QUARANTINE_TABLE, Context, Scope, resolve_scope, v1_raw
from .preflight import v1_preflight
from .runs import run_hold, run_release, runs_mark_abandoned, safe_error

MAX_IDS = 20
SEP = "\\x1e"  # record separator between bodies: a body boundary cannot be faked by the bodies themselves


def _not_in(column: str) -> str:
    """Exclusion of a (large) id array as a hashed anti-join; `NOT (col = ANY(array))` scans the
    array for every row (measured: 150 s for 1M messages against 11k quarantined ids)."""
    return f'NOT EXISTS (SELECT 1 FROM unnest(%s::bigint[]) AS x(id) WHERE x.id = "{column}")'  # noqa: S608 — table/column names from model metadata and module constants; values bound


def _v2(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def _v1(sql: str, params: list) -> list[tuple]:
    with v1_raw().cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def _quarantined(table: str) -> list[int]:
    return [r[0] for r in _v2(f"SELECT v1_id FROM {QUARANTINE_TABLE} WHERE v1_table = %s", [table])]  # noqa: S608 — table/column names from model metadata and module constants; values bound


def _merged(table: str) -> list[int]:
    return [r[0] for r in _v2(f"SELECT v1_id FROM {IDMAP_TABLE} WHERE v1_table = %s AND merged", [table])]  # noqa: S608 — table/column names from model metadata and module constants; values bound


def _scope_sql(ctx: Context, column: str) -> tuple[str, list]:
    if ctx.scope.kind == "all":
        return "", []
    if column == "LineId":
        return f' AND "{column}" = ANY(%s)', [ctx.line_ids]
    return f' AND "{column}" = ANY(%s)', [ctx.account_ids]


def _bool_sql(ctx: Context, table: str, column: str) -> str:
    """A v1 boolean column as SQL boolean, NULL read as false (its v1 default), 0/1 integers too."""
    if ctx.schema and ctx.schema.column(table, column).data_type != "boolean":
        return f'(coalesce("{column}", 0) <> 0)'
    return f'coalesce("{column}", false)'


def _messages_source(ctx: Context) -> str:
    """v1 Messages as verify reads them: a NULL LineId is the line of the message's conversation
    (where the migration puts it: docs, "References")."""
    if not (ctx.schema and ctx.schema.column("Messages", "LineId").nullable):
        return '"Messages"'
    ((has_null,),) = _v1('SELECT EXISTS (SELECT 1 FROM "Messages" WHERE "LineId" IS NULL)', [])
    if not has_null:
        return '"Messages"'
    return """(SELECT m."MessageId", m."Body", coalesce(m."LineId", (SELECT c."LineId" FROM "Conversations" c
                WHERE c."ConversationId" = m."ConversationId")) AS "LineId" FROM "Messages" m) AS msgs"""


def _compare(differences: list[str], where: str, what: str, v1_count: int, expected: int, v2_count: int) -> dict:
    entry = {"v1": v1_count, "expected": expected, "v2": v2_count, "ok": expected == v2_count}
    if not entry["ok"]:
        differences.append(
            f"{where}: {what}: expected {expected} in v2 (v1 {v1_count} − quarantined − merged), found {v2_count}"
        )
    return entry


def _per_account(ctx: Context, differences: list[str]) -> dict:
    out: dict[int, dict] = {}
    acc_sql, acc_params = _scope_sql(ctx, "AccountId")
    specs = [
        # table, v1 filter, v2 query grouped by v1 account id, merged-by-idmap table
        (
            "Users",
            f" AND NOT {_bool_sql(ctx, 'Users', 'IsDeleted')}",
            """SELECT o.v1_id, count(*) FROM organizations_membership m
            JOIN organizations_organization o ON o.id = m.organization_id
            WHERE m.v1_id IS NOT NULL AND o.v1_id IS NOT NULL GROUP BY o.v1_id""",
            None,
        ),
        (
            "Lines",
            "",
            """SELECT o.v1_id, count(*) FROM messaging_line l JOIN organizations_organization o
            ON o.id = l.organization_id WHERE l.v1_id IS NOT NULL GROUP BY o.v1_id""",
            None,
        ),
        (
            "Contacts",
            "",
            """SELECT o.v1_id, count(*) FROM messaging_contact c JOIN organizations_organization o
            ON o.id = c.organization_id WHERE c.v1_id IS NOT NULL GROUP BY o.v1_id""",
            "Contacts",
        ),
        (
            "Blasts",
            "",
            """SELECT o.v1_id, count(*) FROM messaging_blast b JOIN organizations_organization o
            ON o.id = b.organization_id WHERE b.v1_id IS NOT NULL GROUP BY o.v1_id""",
            None,
        ),
    ]
    if ctx.scope.kind == "line":
        # A line scope migrates the account's shared rows (users, contacts) and only its own line
        # and blasts: the other lines of the account are out of scope, not missing.
        line_only = ' AND "LineId" = ANY(%s)'
        specs[1] = (
            "Lines",
            line_only,
            """SELECT o.v1_id, count(*) FROM messaging_line l JOIN organizations_organization o
            ON o.id = l.organization_id WHERE l.v1_id = ANY(%s) GROUP BY o.v1_id""",
            None,
        )
        specs[3] = (
            "Blasts",
            line_only,
            """SELECT o.v1_id, count(*) FROM messaging_blast b JOIN organizations_organization o
            ON o.id = b.organization_id JOIN messaging_line l ON l.id = b.line_id
            WHERE b.v1_id IS NOT NULL AND l.v1_id = ANY(%s) GROUP BY o.v1_id""",
            None,
        )
    accounts = _v1(f'SELECT "AccountId" FROM "Accounts" WHERE true{acc_sql} ORDER BY 1', acc_params)  # noqa: S608 — table/column names from model metadata and module constants; values bound
    migrated = {r[0] for r in _v2("SELECT v1_id FROM organizations_organization WHERE v1_id IS NOT NULL", [])}
    held = set(_quarantined("Accounts"))
    for (aid,) in accounts:
        out[aid] = {"organization": aid in migrated}
        if aid not in migrated and aid not in held:
            differences.append(f"account {aid}: no v2 organization")
    for table, extra, v2_sql, merged_table in specs:
        pk = {"Users": "UserId", "Lines": "LineId", "Contacts": "ContactId", "Blasts": "BlastId"}[table]
        excluded = _quarantined(table) + (_merged(merged_table) if merged_table else [])
        extra_params = [ctx.line_ids] if "%s" in extra else []
        v1_counts = dict(
            _v1(
                f'SELECT "AccountId", count(*) FROM "{table}" WHERE true{acc_sql}{extra} GROUP BY 1',  # noqa: S608 — table/column names from model metadata and module constants; values bound
                [*acc_params, *extra_params],
            )
        )
        expected = dict(
            _v1(
                f'SELECT "AccountId", count(*) FROM "{table}" WHERE {_not_in(pk)}{acc_sql}{extra} GROUP BY 1',  # noqa: S608 — table/column names from model metadata and module constants; values bound
                [excluded, *acc_params, *extra_params],
            )
        )
        if table == "Users":  # the same person twice in one account is one membership
            expected = dict(
                _v1(
                    f'SELECT "AccountId", count(DISTINCT lower(btrim("Email"))) FROM "Users" '  # noqa: S608 — table/column names from model metadata and module constants; values bound
                    f"WHERE {_not_in('UserId')}{acc_sql}{extra} GROUP BY 1",
                    [excluded, *acc_params],
                )
            )
        v2_counts = dict(_v2(v2_sql, [ctx.line_ids] if "%s" in v2_sql else []))
        for aid in out:
            out[aid][table] = _compare(
                differences, f"account {aid}", table, v1_counts.get(aid, 0), expected.get(aid, 0), v2_counts.get(aid, 0)
            )
    return out


def _per_line(ctx: Context, differences: list[str]) -> dict:
    line_sql, line_params = _scope_sql(ctx, "LineId")
    out: dict[int, dict] = {}
    for (lid,) in _v1(f'SELECT "LineId" FROM "Lines" WHERE true{line_sql} ORDER BY 1', line_params):  # noqa: S608 — table/column names from model metadata and module constants; values bound
        out[lid] = {}
    conv_excluded = _quarantined("Conversations") + _merged("Conversations")
    v1_conv = dict(_v1(f'SELECT "LineId", count(*) FROM "Conversations" WHERE true{line_sql} GROUP BY 1', line_params))  # noqa: S608 — table/column names from model metadata and module constants; values bound
    exp_conv = dict(
        _v1(
            f'SELECT "LineId", count(*) FROM "Conversations" WHERE {_not_in("ConversationId")}{line_sql} GROUP BY 1',  # noqa: S608 — table/column names from model metadata and module constants; values bound
            [conv_excluded, *line_params],
        )
    )
    v2_conv = dict(
        _v2(
            """SELECT l.v1_id, count(*) FROM messaging_conversation c JOIN messaging_line l
                          ON l.id = c.line_id WHERE c.v1_id IS NOT NULL AND l.v1_id IS NOT NULL GROUP BY 1""",
            [],
        )
    )
    msg_excluded = _quarantined("Messages")
    body = ctx.schema.body_bytes_sql() if ctx.schema else '"Body"'
    messages = _messages_source(ctx)
    v1_msg = dict(_v1(f'SELECT "LineId", count(*) FROM {messages} WHERE true{line_sql} GROUP BY 1', line_params))  # noqa: S608 — table/column names from model metadata and module constants; values bound
    v1_sum = {
        r[0]: (r[1], r[2])
        for r in _v1(
            f"""SELECT "LineId", count(*), md5(string_agg(coalesce({body}, ''::bytea), '{SEP}'::bytea
                                                     ORDER BY "MessageId"))
            FROM {messages} WHERE {_not_in("MessageId")}{line_sql} GROUP BY 1""",  # noqa: S608 — table/column names from model metadata and module constants; values bound
            [msg_excluded, *line_params],
        )
    }
    v2_sum = {
        r[0]: (r[1], r[2])
        for r in _v2(
            f"""SELECT l.v1_id, count(*), md5(string_agg(convert_to(m.body, 'UTF8'), '{SEP}'::bytea ORDER BY m.v1_id))
            FROM messaging_message m JOIN messaging_line l ON l.id = m.line_id
            WHERE m.v1_id IS NOT NULL AND l.v1_id = ANY(%s) GROUP BY 1""",  # noqa: S608 — table/column names from model metadata and module constants; values bound
            [list(out)],
        )
    }
    for lid, entry in out.items():
        entry["Conversations"] = _compare(
            differences, f"line {lid}", "Conversations", v1_conv.get(lid, 0), exp_conv.get(lid, 0), v2_conv.get(lid, 0)
        )
        exp_n, exp_md5 = v1_sum.get(lid, (0, None))
        got_n, got_md5 = v2_sum.get(lid, (0, None))
        entry["Messages"] = _compare(differences, f"line {lid}", "Messages", v1_msg.get(lid, 0), exp_n, got_n)
        entry["Messages"].update({"v1_md5": exp_md5, "v2_md5": got_md5, "checksum_ok": exp_md5 == got_md5})
        if exp_md5 != got_md5 or exp_n != got_n:
            entry["Messages"]["detail"] = _message_diff(lid, msg_excluded, differences, body, messages)
    return out


def _message_diff(v1_line_id: int, excluded: list[int], differences: list[str], body: str, messages: str) -> dict:
    """Both sides message by message for one line: which ids are missing, extra, or differ in body."""
    v1 = dict(
        _v1(
            f"""SELECT "MessageId", md5(coalesce({body}, ''::bytea)) FROM {messages}
                     WHERE "LineId" = %s AND {_not_in("MessageId")}""",  # noqa: S608 — table/column names from model metadata and module constants; values bound
            [v1_line_id, excluded],
        )
    )
    v2 = dict(
        _v2(
            """SELECT m.v1_id, md5(convert_to(m.body, 'UTF8')) FROM messaging_message m
                     JOIN messaging_line l ON l.id = m.line_id WHERE l.v1_id = %s AND m.v1_id IS NOT NULL""",
            [v1_line_id],
        )
    )
    missing = sorted(set(v1) - set(v2))
    extra = sorted(set(v2) - set(v1))
    changed = sorted(k for k in set(v1) & set(v2) if v1[k] != v2[k])
    detail = {
        "missing_in_v2": missing[:MAX_IDS],
        "missing_count": len(missing),
        "unexpected_in_v2": extra[:MAX_IDS],
        "unexpected_count": len(extra),
        "body_differs": changed[:MAX_IDS],
        "body_differs_count": len(changed),
    }
    for label, ids, n in (
        ("missing in v2", missing, len(missing)),
        ("in v2 but not expected", extra, len(extra)),
        ("body differs", changed, len(changed)),
    ):
        if n:
            differences.append(
                f"line {v1_line_id}: {n} message(s) {label}: MessageId {ids[:MAX_IDS]}{' …' if n > MAX_IDS else ''}"
            )
    return detail


def v1_verify(*, scope: Scope | None = None, store: bool = True) -> dict:
    scope = scope or Scope()
    ctx = Context(scope=scope, batch_size=0)
    ctx.schema = v1_preflight()
    resolve_scope(ctx)
    run = None
    abandoned: list[int] = []
    if store:
        abandoned = runs_mark_abandoned()
        run = MigrationRun.objects.create(scope=scope.key, mode="verify", options={})
        run_hold(run.pk)
    started = time.perf_counter()
    differences: list[str] = []
    report: dict[str, Any] = {"scope": scope.key}
    try:
        report["accounts"] = _per_account(ctx, differences)
        report["lines"] = _per_line(ctx, differences)
        report["merged_fields"] = _merged_fields(ctx, differences)
        report["differences"] = differences
        report["ok"] = not differences
    except BaseException as exc:
        if run is not None:
            run.status, run.error = RunStatus.FAILED, safe_error(exc)
        raise
    finally:
        report["seconds"] = round(time.perf_counter() - started, 3)
        if run is not None:
            if not run.error:
                run.status = RunStatus.SUCCEEDED if report.get("ok") else RunStatus.FAILED
            if abandoned:
                report["abandoned_runs_marked_failed"] = abandoned
            run.report = _json_keys(report)
            run.finished_at = timezone.now()
            run.save(update_fields=["status", "error", "report", "finished_at"])
            run_release(run.pk)
            report["run_id"] = run.pk
    return report


def _text(value) -> str:
    if isinstance(value, bytes | memoryview):
        value = bytes(value).decode("utf-8", "replace")
    return (value or "").strip()


def _first(values) -> object:
    """The first value that is set (non-blank), in v1 id order."""
    for v in values:
        if v not in (None, ""):
            return v
    return None


def _merged_fields(ctx: Context, differences: list[str]) -> dict:
    """After merges, the fields the merge rules decide: per v2 contact, first/last name and email
    (first non-blank of its twins in ContactId order) and the opt-out (any twin opted out); per v2
    conversation, status (open if any twin is open) and assignee (first twin's that resolves)."""
    acc_sql, acc_params = _scope_sql(ctx, "AccountId")
    line_sql, line_params = _scope_sql(ctx, "LineId")
    contact_map = dict(_v2(f"SELECT v1_id, v2_id FROM {IDMAP_TABLE} WHERE v1_table = 'Contacts'", []))  # noqa: S608 — table/column names from model metadata and module constants; values bound
    expected: dict[int, dict] = {}
    for cid, first, last, email, opted in _v1(
        f"""SELECT "ContactId", "FirstName", "LastName", "Email", "IsOptedOut" FROM "Contacts"
            WHERE true{acc_sql} ORDER BY 1""",  # noqa: S608 — table/column names from model metadata and module constants; values bound
        acc_params,
    ):
        v2_id = contact_map.get(cid)
        if v2_id is None:
            continue
        e = expected.setdefault(v2_id, {"ids": [], "first": [], "last": [], "email": [], "opted": False})
        e["ids"].append(cid)
        e["first"].append(_text(first))
        e["last"].append(_text(last))
        e["email"].append(_text(email))
        e["opted"] = e["opted"] or bool(opted)
    contact_bad: list[str] = []
    if expected:
        v2_rows = _v2(
            """SELECT c.id, c.first_name, c.last_name, c.email,
                      EXISTS (SELECT 1 FROM messaging_optout o WHERE o.organization_id = c.organization_id
                              AND o.phone_number = c.phone_number)
               FROM messaging_contact c WHERE c.id = ANY(%s)""",
            [list(expected)],
        )
        for v2_id, first, last, email, opted in v2_rows:
            e = expected[v2_id]
            want = (_first(e["first"]) or "", _first(e["last"]) or "", _first(e["email"]) or "", e["opted"])
            if (first, last, email, opted or not e["opted"]) != (*want[:3], True):
                contact_bad.append(
                    f"contact {v2_id} (v1 ContactId {e['ids']}): expected {want}, found {(first, last, email, opted)}"
                )
    conv_map = dict(_v2(f"SELECT v1_id, v2_id FROM {IDMAP_TABLE} WHERE v1_table = 'Conversations'", []))  # noqa: S608 — table/column names from model metadata and module constants; values bound
    user_map = dict(_v2(f"SELECT v1_id, v2_id FROM {IDMAP_TABLE} WHERE v1_table = 'Users'", []))  # noqa: S608 — table/column names from model metadata and module constants; values bound
    conv_expected: dict[int, dict] = {}
    for conv_id, closed, deleted, assignee in _v1(
        f"""SELECT "ConversationId", "IsClosed", "IsDeleted", "AssignedUserId" FROM "Conversations"
            WHERE true{line_sql} ORDER BY 1""",  # noqa: S608 — table/column names from model metadata and module constants; values bound
        line_params,
    ):
        v2_id = conv_map.get(conv_id)
        if v2_id is None:
            continue
        e = conv_expected.setdefault(v2_id, {"ids": [], "open": False, "assignees": []})
        e["ids"].append(conv_id)
        e["open"] = e["open"] or not (closed or deleted)
        e["assignees"].append(user_map.get(assignee))
    conv_bad: list[str] = []
    if conv_expected:
        for v2_id, status, assignee in _v2(
            "SELECT id, status, assignee_id FROM messaging_conversation WHERE id = ANY(%s)", [list(conv_expected)]
        ):
            e = conv_expected[v2_id]
            want_conv = ("open" if e["open"] else "closed", _first(e["assignees"]))
            if (status, assignee) != want_conv:
                conv_bad.append(
                    f"conversation {v2_id} (v1 ConversationId {e['ids']}): expected status/assignee "
                    f"{want_conv}, found {(status, assignee)}"
                )
    for label, bad in (("contact fields", contact_bad), ("conversation status/assignee", conv_bad)):
        if bad:
            differences.append(f"{len(bad)} merged {label} differ: " + "; ".join(bad[:MAX_IDS]))
    return {
        "contacts_checked": len(expected),
        "contacts_differing": len(contact_bad),
        "conversations_checked": len(conv_expected),
        "conversations_differing": len(conv_bad),
    }


def _json_keys(value):
    if isinstance(value, dict):
        return {str(k): _json_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_keys(v) for v in value]
    return value
