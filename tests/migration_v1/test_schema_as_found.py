"""migrate_v1 against v1 databases as their owners made them: both typings of Messages.Body, the spec's
DDL exactly (sql/v1_schema_spec.sql), and schemas missing what the tool needs (issue 15, items 1, 7)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections

from messaging.models import Message
from migration_v1.db import ensure_v1_alias
from migration_v1.models import MigrationRun, QuarantinedRow
from organizations.models import Organization

from .conftest import SMALL

pytestmark = pytest.mark.django_db(databases=["default", "v1"], transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def _migrate(*args: str) -> dict:
    out = io.StringIO()
    call_command("migrate_v1", "--json", "--no-progress", *args, stdout=out)
    return json.loads(out.getvalue())


def _adds_up(report: dict) -> None:
    for name, table in report["tables"].items():
        if name != "derived":
            assert table["unaccounted"] == 0, (name, table)


@pytest.mark.parametrize(
    ("schema", "body_type"), [("project", "bytea"), ("project", "text"), ("spec", "text"), ("spec", "bytea")]
)
def test_whole_migration_on_every_body_typing_and_the_spec_ddl(other_v1, schema, body_type):
    # given a v1 built from our DDL or from the spec's, with Body as bytea or as text
    other_v1(f"{schema}_{body_type}", schema=schema, body_type=body_type)
    # when the whole tool runs: migrate, rerun, verify
    report = _migrate()
    rerun = _migrate("--from-start")
    out = io.StringIO()
    call_command("migrate_v1", "--verify", stdout=out)
    # then every message was read and either written or quarantined with a reason
    assert report["preflight"]["messages_body_type"] == body_type
    messages = report["tables"]["Messages"]
    assert messages["read"] == SMALL.messages
    assert Message.objects.count() == messages["written"] > 0.9 * SMALL.messages
    _adds_up(report)
    _adds_up(rerun)
    assert rerun["tables"]["Messages"]["written"] == 0 and rerun["quarantined_by_reason"] == {}
    assert "No differences." in out.getvalue()
    # the NUL and non-UTF-8 bodies exist only in bytea (text cannot hold them): quarantined there,
    # migrated as the text v1 holds otherwise
    if body_type == "bytea":
        assert QuarantinedRow.objects.get(v1_table="Messages", v1_id=1).reason == "body_nul_character"
    else:
        assert Message.objects.get(v1_id=1).body == "Hello there"
        assert Message.objects.get(v1_id=2).body == "Café au lait?"
    if schema == "spec":
        # the spec declares no NOT NULL: the preflight lists those columns, read by the NULL rules
        assert "Messages.CreatedOn" in report["preflight"]["nullable_columns_handled"]


def test_preflight_names_everything_missing_in_one_message_before_writing(other_v1):
    other_v1(
        "broken",
        schema="spec",
        sql=(
            'DROP TABLE "MessageMedia"',
            'ALTER TABLE "Messages" DROP COLUMN "Status"',
            'ALTER TABLE "Accounts" ALTER COLUMN "CreatedOn" TYPE timestamp with time zone',
            'ALTER TABLE "Lines" RENAME TO "lines"',
        ),
    )
    with pytest.raises(CommandError) as caught:
        _migrate()
    message = str(caught.value)
    assert caught.value.returncode == 2 and len(message.splitlines()) == 1
    for part in (
        'missing table "MessageMedia"',
        'missing column "Messages"."Status"',
        '"Accounts"."CreatedOn" is timestamp with time zone',
        'missing table "Lines" (found "lines"',
    ):
        assert part in message
    # nothing was written, not even a run record
    assert not MigrationRun.objects.exists() and not Organization.objects.exists()
    with pytest.raises(CommandError, match="missing table"):
        call_command("migrate_v1", "--verify")


def _point_v1_at(**changes) -> None:
    info = psycopg.conninfo.conninfo_to_dict(_current_dsn())
    info.update(changes)
    ensure_v1_alias(psycopg.conninfo.make_conninfo(**info))


def _current_dsn() -> str:
    from migration_v1.db import dsn_for

    return dsn_for(connections["v1"].settings_dict)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"port": "1"}, "cannot read the v1 database"),
        ({"dbname": "no_such_v1_database"}, 'database "no_such_v1_database" does not exist'),
        ({"user": "no_such_role"}, 'role "no_such_role" does not exist'),
    ],
)
def test_unreachable_v1_is_one_clean_line(v1_dsn, change, expected):
    _point_v1_at(**change)
    try:
        with pytest.raises(CommandError) as caught:
            _migrate()
        assert caught.value.returncode == 2 and expected in str(caught.value)
        assert len(str(caught.value).splitlines()) == 1
    finally:
        ensure_v1_alias(v1_dsn)
    assert not MigrationRun.objects.exists()


def test_the_v2_database_given_as_v1_is_refused(v1_dsn):
    from migration_v1.db import dsn_for

    ensure_v1_alias(dsn_for(connection.settings_dict))
    try:
        with pytest.raises(CommandError, match="v2 database itself") as caught:
            _migrate()
        assert caught.value.returncode == 2
    finally:
        ensure_v1_alias(v1_dsn)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--account", "99"], "--account 99: v1 has no account with AccountId 99"),
        (["--line", "777"], "--line 777: v1 has no line with LineId 777"),
        (["--stop-after", "Messages"], "--stop-after must be TABLE:N"),
        (["--stop-after", "Messages:x"], "--stop-after must be TABLE:N"),
        (["--verify", "--line", "777"], "--line 777"),
    ],
)
def test_bad_arguments_are_one_clean_line_and_write_nothing(v1_dsn, args, expected):
    with pytest.raises(CommandError) as caught:
        _migrate(*args)
    assert caught.value.returncode == 2 and expected in str(caught.value)
    assert not MigrationRun.objects.exists() and not Organization.objects.exists()


def test_the_command_exits_2_without_a_traceback(v1_dsn):
    # The real process: what a user sees for an unset and an unreachable V1_DATABASE_URL.
    env = {k: v for k, v in os.environ.items() if k != "V1_DATABASE_URL"}
    # DEBUG is off in a real run: the settings then want a secret key of their own.
    env.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-for-the-migrate-v1-command-0123456789")
    cases = [
        (env, "V1_DATABASE_URL is not set"),
        ({**env, "V1_DATABASE_URL": "postgres://someone:hunter2@127.0.0.1:1/parley_v1"}, "Connection refused"),
    ]
    for case_env, expected in cases:
        done = subprocess.run(
            [sys.executable, "manage.py", "migrate_v1", "--no-progress"],
            cwd=ROOT,
            env=case_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr
        assert expected in done.stderr and "Traceback" not in done.stderr and "hunter2" not in done.stderr
        # one line of ours (log lines of other apps at startup aside)
        ours = [line for line in done.stderr.splitlines() if line.startswith("CommandError")]
        assert len(ours) == 1 and expected in ours[0]
