"""Run records and reports (issue 15, items 7, 8, 9; issue 14 item 12): killed runs do not stay
`running`, verify tells the truth in a scope and after merges, progress output is clean in logs."""

from __future__ import annotations

import io
import json

import psycopg
from django.core.management import call_command
from django.db import connection

from messaging.models import Contact, Conversation
from migration_v1.db import dsn_for
from migration_v1.models import IdMap, MigrationRun
from migration_v1.services import Scope, v1_migrate, v1_verify
from migration_v1.services.runs import ABANDONED, RUN_LOCK_CLASS

from .conftest import SIZES, V1_DB

pytestmark = V1_DB


def test_a_killed_run_is_marked_failed_by_the_next_run_and_a_live_one_is_not(v1_dsn):
    # given two records left `running`: one whose process is gone, one whose process still holds its lock
    dead = MigrationRun.objects.create(scope="all", mode="migrate")
    alive = MigrationRun.objects.create(scope="all", mode="migrate")
    with psycopg.connect(dsn_for(connection.settings_dict), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", [RUN_LOCK_CLASS, alive.pk])
        # when the next run starts
        report = v1_verify()
        # then the dead one is failed with the reason, the live one untouched
        dead.refresh_from_db()
        alive.refresh_from_db()
        assert dead.status == "failed" and dead.error == ABANDONED and dead.finished_at is not None
        assert alive.status == "running"
        assert report["abandoned_runs_marked_failed"] == [dead.pk]
    # a verify run records its finish after its start
    run = MigrationRun.objects.get(pk=report["run_id"])
    assert run.finished_at >= run.started_at


def test_scoped_verify_compares_only_the_scope(v1_dsn):
    v1_migrate(scope=Scope("line", 1), batch_size=1000)
    report = v1_verify(scope=Scope("line", 1), store=False)
    assert report["ok"], report["differences"]
    assert list(report["lines"]) == [1]


def test_verify_compares_fields_decided_by_merges(v1_dsn):
    v1_migrate(batch_size=1000)
    assert v1_verify(store=False)["ok"]
    # given a merged conversation and a merged contact altered in v2
    twin = IdMap.objects.filter(v1_table="Conversations", merged=True).first()
    conversation = Conversation.objects.get(pk=twin.v2_id)
    conversation.status = "closed" if conversation.status == "open" else "open"
    conversation.save(update_fields=["status"])
    merged_contact = IdMap.objects.filter(v1_table="Contacts", merged=True).first()
    contact = Contact.objects.get(pk=merged_contact.v2_id)
    contact.first_name = contact.first_name + "!"
    contact.save(update_fields=["first_name"])
    # then verify names both, though every count still matches
    report = v1_verify(store=False)
    text = " ".join(report["differences"])
    assert f"conversation {conversation.pk} (v1 ConversationId" in text
    assert f"contact {contact.pk} (v1 ContactId" in text
    assert report["merged_fields"]["conversations_differing"] == 1
    assert report["merged_fields"]["contacts_differing"] == 1


def test_progress_is_plain_lines_once_each_when_not_a_terminal(v1_dsn, capsys):
    call_command("migrate_v1", "--batch-size", "1000", stdout=io.StringIO())
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b" not in err
    lines = err.strip().splitlines()
    labels = [line.split(" ")[0] for line in lines]
    assert labels.count("Messages") == 1 and labels.count("Contacts") == 1
    assert sum(1 for line in lines if line.startswith("derived conversations")) == 1
    assert f"Messages       {SIZES.messages}/{SIZES.messages} rows" in err


def test_a_scoped_run_counts_no_rows_of_other_lines(v1_dsn):
    report = v1_migrate(scope=Scope("line", 1), batch_size=500)
    assert report["tables"]["Messages"]["skipped"] == 0
    assert report["tables"]["MessageMedia"]["skipped"] == 0
    for name, table in report["tables"].items():
        if name != "derived":
            assert table["unaccounted"] == 0, (name, table)


def test_v1_seed_prints_a_summary_and_json_on_request(v1_dsn):
    from migration_v1.seed import drop_database

    other = psycopg.conninfo.make_conninfo(v1_dsn, dbname=psycopg.conninfo.conninfo_to_dict(v1_dsn)["dbname"] + "_s")
    try:
        out = io.StringIO()
        call_command("v1_seed", "--messages", "200", "--database-url", other, "--force", stdout=out)
        text = out.getvalue()
        assert text.startswith("Seeded v1 database") and "Messages.Body bytea" in text
        assert "  Messages               200" in text and not text.lstrip().startswith("{")
        out = io.StringIO()
        call_command("v1_seed", "--messages", "200", "--database-url", other, "--schema", "spec", "--json", stdout=out)
        result = json.loads(out.getvalue())
        assert result["counts"]["Messages"] == 200 and result["body_type"] == "text"
    finally:
        drop_database(other)
