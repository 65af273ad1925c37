"""Odd rows never stop the run, every reference is checked, every non-copy decision is named
(issue 15, items 2, 3, 5, 6, 9), against a v1 made from the spec's DDL with odd rows added."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from messaging.models import Contact, Conversation, Message
from migration_v1.models import MigrationRun, QuarantinedRow
from organizations.models import Organization

pytestmark = pytest.mark.django_db(databases=["default", "v1"], transaction=True)

LONG = "x" * 101
CONV1_LINE = '(SELECT "LineId" FROM "Conversations" WHERE "ConversationId" = 1)'
CONV1_ACCOUNT = f'(SELECT "AccountId" FROM "Lines" WHERE "LineId" = {CONV1_LINE})'  # noqa: S608 — table names and fragments are constants of the test; values bound
SAME_ACCOUNT_OTHER_LINE = (
    f'(SELECT min("LineId") FROM "Lines" WHERE "AccountId" = {CONV1_ACCOUNT} AND "LineId" <> {CONV1_LINE}'  # noqa: S608 — table names and fragments are constants of the test; values bound
    f' AND "LineId" <= 6)'
)
OTHER_ACCOUNT_LINE = f'(SELECT min("LineId") FROM "Lines" WHERE "AccountId" <> {CONV1_ACCOUNT})'  # noqa: S608 — table names and fragments are constants of the test; values bound
OTHER_ACCOUNT_BLAST = f'(SELECT min("BlastId") FROM "Blasts" WHERE "AccountId" <> {CONV1_ACCOUNT})'  # noqa: S608 — table names and fragments are constants of the test; values bound
SINCH = '{"servicePlanId": "planZ", "apiToken": "sinchtok-odd", "region": "us"}'


def _msg(mid: int, conv: str, line: str, *, phone="'5124019001'", blast="NULL", sender="NULL", created="now()"):
    return (
        f"""INSERT INTO "Messages" VALUES ({mid}, {conv}, {line}, {phone}, 'O', 'odd {mid}', 4, NULL, NULL,"""  # noqa: S608 — table names and fragments are constants of the test; values bound
        f""" {sender}, {blast}, {created}::timestamp, NULL)"""
    )


ODD_SQL = (
    # Types a real v1 may carry: a bytea name column, a wider ProviderMessageId than v2 holds.
    """ALTER TABLE "Contacts" ALTER COLUMN "FirstName" TYPE bytea USING convert_to("FirstName", 'UTF8')""",
    """ALTER TABLE "Messages" ALTER COLUMN "ProviderMessageId" TYPE varchar(300)""",
    """ALTER TABLE "Lines" ALTER COLUMN "PhoneNumber" TYPE varchar(40)""",
    """ALTER TABLE "Lines" ALTER COLUMN "Name" TYPE text""",
    # Accounts: any Windows zone, an unknown one, a NULL boolean, a NULL name, a NULL creation time.
    """INSERT INTO "Accounts" VALUES (900, 'Tokyo client', 'Tokyo Standard Time', NULL, '2020-01-01'),
        (901, NULL, 'Mars Standard Time', true, '2020-01-01'), (902, 'No date', NULL, true, NULL)""",
    f"""INSERT INTO "Lines" VALUES
        (900, 900, '(512) 301-9999 ext. 12', 'Tokyo line', 'Sinch', '{SINCH}', false, '2020-01-02'),
        (901, 1, '5123019998', 'Bad config', 'Sinch', '{{not json, "apiToken": "sinchtok-odd2"', false, '2020-01-02'),
        (902, 1, '5123019997', '{LONG}', 'Sinch', '{SINCH}', NULL, '2020-01-02')""",  # noqa: S608 — table names and fragments are constants of the test; values bound
    """INSERT INTO "Users" VALUES (900, 1, 'odd@client1.example.com', 'Odd', NULL, 2, NULL, '2020-01-01')""",
    f"""INSERT INTO "Contacts" VALUES
        (900, 1, '5124019101', '\\x48690041'::bytea, 'Nul', NULL, false, NULL, '2020-01-01'),
        (901, 1, '5124019102', '\\x4361ff'::bytea, 'Bytes', NULL, false, NULL, '2020-01-01'),
        (902, 1, '5124019103', convert_to('No', 'UTF8'), 'Date', NULL, false, NULL, NULL),
        (903, 1, '5124019104', convert_to('Long', 'UTF8'), '{LONG}', NULL, false, NULL, '2020-01-01'),
        (904, 1, '5124019105', convert_to('Null', 'UTF8'), 'Optout', NULL, NULL, NULL, '2020-01-01')""",  # noqa: S608 — table names and fragments are constants of the test; values bound
    f"""INSERT INTO "Conversations" VALUES (900, {CONV1_LINE}, 1, NULL, 4242, NULL, false, '2020-01-01')""",  # noqa: S608 — table names and fragments are constants of the test; values bound
    """INSERT INTO "Blasts" VALUES (900, 1, 1, 'Draft', NULL, 4242, '2020-01-01', NULL)""",
    """INSERT INTO "MessageMedia" VALUES (90001, 10005, NULL, 'image/png'),
        (90002, 10005, 'https://media.v1.example/ok.png', NULL)""",
    _msg(10001, "1", SAME_ACCOUNT_OTHER_LINE),
    _msg(10002, "1", OTHER_ACCOUNT_LINE),
    _msg(10003, "1", "4242"),
    _msg(10004, "1", "NULL"),
    _msg(10005, "1", CONV1_LINE, blast="4242", sender="4242"),
    _msg(10006, "1", CONV1_LINE, created="NULL"),
    f"""INSERT INTO "Messages" VALUES (10007, 1, {CONV1_LINE}, '5124019001', 'O', 'long id', 4,
        '{"p" * 150}', NULL, NULL, NULL, now()::timestamp, NULL)""",  # noqa: S608 — table names and fragments are constants of the test; values bound
    _msg(10008, "NULL", "1", phone="'512-401-9002 x7'"),
    _msg(10009, "1", CONV1_LINE, blast=OTHER_ACCOUNT_BLAST),
)


def _migrate(*args: str) -> dict:
    out = io.StringIO()
    call_command("migrate_v1", "--json", "--no-progress", *args, stdout=out)
    return json.loads(out.getvalue())


def _reason(table: str, v1_id: int) -> tuple[str, str]:
    row = QuarantinedRow.objects.get(v1_table=table, v1_id=v1_id)
    return row.reason, row.detail


def test_odd_rows_are_quarantined_references_checked_and_decisions_named(other_v1, v1):
    other_v1("odd", schema="spec", sql=ODD_SQL)
    report = _migrate()
    run = MigrationRun.objects.get(pk=report["run_id"])
    assert run.status == "succeeded"

    # Item 6: odd values go to quarantine with their reason (the column named); the run went on.
    assert _reason("Accounts", 902) == ("missing_value", "CreatedOn is NULL")
    assert _reason("Lines", 901)[0] == "unparseable_provider_config"
    assert _reason("Lines", 902) == ("too_long", "Name")
    assert _reason("Contacts", 900) == ("nul_character", "FirstName")
    assert _reason("Contacts", 901) == ("not_utf8", "FirstName")
    assert _reason("Contacts", 902) == ("missing_value", "CreatedOn is NULL")
    assert _reason("Contacts", 903) == ("too_long", "LastName")
    assert _reason("Messages", 10006) == ("missing_value", "CreatedOn is NULL")
    assert _reason("Messages", 10007) == ("too_long", "ProviderMessageId")
    assert "sinchtok-odd2" not in json.dumps(QuarantinedRow.objects.get(v1_table="Lines", v1_id=901).row)

    # Item 2: any Windows zone through CLDR's table; an unknown one falls back to Central, named.
    assert Organization.objects.get(v1_id=900).time_zone == "Asia/Tokyo"
    assert Organization.objects.get(v1_id=901).time_zone == "America/Chicago"
    decisions = report["decisions"]
    assert decisions["Accounts: unknown_time_zone_read_as_America/Chicago"]["ids"] == [901]
    assert decisions["Accounts: blank_name_named_v1_account_N"]["ids"] == [901]
    assert Organization.objects.get(v1_id=901).name == "v1 account 901"

    # Item 3: a message whose LineId is another line of its conversation's account moves to that
    # line (same contact); another account's line, or no line, is quarantined; NULL takes the
    # conversation's line. Every case named.
    ((conv1_line, other_line),) = v1(f"SELECT {CONV1_LINE}, {SAME_ACCOUNT_OTHER_LINE}")
    conv1 = Conversation.objects.get(v1_id=1)
    rehomed = Message.objects.get(v1_id=10001)
    assert rehomed.line.v1_id == other_line and rehomed.contact_id == conv1.contact_id
    assert rehomed.conversation.line_id == rehomed.line_id
    assert decisions["Messages: line_differs_from_conversation_rehomed_to_own_line"]["ids"] == [10001]
    assert _reason("Messages", 10002)[0] == "line_in_other_account"
    assert _reason("Messages", 10003)[0] == "broken_reference_line"
    assert Message.objects.get(v1_id=10004).line.v1_id == conv1_line
    assert decisions["Messages: null_line_id_placed_on_conversation_line"]["ids"] == [10004]
    dropped = Message.objects.get(v1_id=10005)
    assert dropped.blast_id is None and dropped.sent_by_id is None
    # a media row without a Url is quarantined on its own; the message keeps its other media
    assert _reason("MessageMedia", 90001) == ("missing_value", "Url is NULL")
    assert dropped.media == [{"url": "https://media.v1.example/ok.png", "content_type": None}]
    assert decisions["Messages: unknown_or_foreign_blast_dropped"]["ids"] == [10005, 10009]
    assert 10005 in decisions["Messages: unknown_sender_dropped"]["ids"]
    assert decisions["Messages: phone_extension_dropped"]["ids"] == [10008]
    assert 10008 in decisions["Messages: contact_created_for_unknown_number"]["ids"]
    assert Message.objects.get(v1_id=10008).contact.phone_number == "+15124019002"

    # Item 5: the other decisions are named too, and the run record holds all of them.
    assert decisions["Lines: phone_extension_dropped"]["ids"] == [900]
    assert decisions["Accounts: null_IsActive_read_as_true"]["ids"] == [900]
    assert decisions["Users: null_IsDeleted_read_as_false"]["ids"] == [900]
    assert decisions["Contacts: null_IsOptedOut_read_as_false"]["ids"] == [904]
    assert decisions["Conversations: null_IsClosed_read_as_false"]["ids"] == [900]
    assert decisions["Conversations: unknown_assignee_dropped"]["ids"] == [900]
    assert 900 in decisions["Conversations: merged_into_twin_with_lower_conversation_id"]["ids"]
    assert decisions["Contacts: merged_into_twin_with_lower_contact_id"]["count"] > 0
    assert decisions["Blasts: never_sent_migrated_canceled"]["ids"] == [900]
    assert decisions["Blasts: unknown_creator_dropped"]["ids"] == [900]
    assert decisions["Blasts: null_body_read_as_empty"]["ids"] == [900]
    assert decisions["Messages: never_sent_migrated_canceled"]["count"] > 0
    assert run.report["decisions"] == decisions
    assert Contact.objects.filter(v1_id=904).exists()

    # Item 9: every table adds up; a rerun quarantines nothing new and writes nothing.
    for name, table in report["tables"].items():
        if name != "derived":
            assert table["unaccounted"] == 0, (name, table)
    rerun = _migrate("--from-start")
    assert rerun["quarantined_by_reason"] == {}
    assert all(t["quarantined"] == 0 and t["written"] == 0 for t in rerun["tables"].values())
    for name, table in rerun["tables"].items():
        if name != "derived":
            assert table["unaccounted"] == 0, (name, table)

    # The human report names them too: a bounded sample per decision.
    out = io.StringIO()
    call_command("migrate_v1", "--no-progress", "--from-start", stdout=out)
    assert "Decisions that were not a straight copy" not in out.getvalue()  # nothing new was decided
    verify = io.StringIO()
    call_command("migrate_v1", "--verify", stdout=verify)
    assert "No differences." in verify.getvalue()
