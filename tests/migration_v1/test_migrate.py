"""migrate_v1 end to end against a seeded v1 database (tests/migration_v1/conftest.py)."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.db.models import Max, Q
from django.db.models.functions import Coalesce

from carriers.models import CarrierAccount
from messaging.models import Blast, Contact, Conversation, Line, Message, OptOut
from migration_v1.models import IdMap, MigrationCheckpoint, MigrationRun, QuarantinedRow
from migration_v1.services import Scope, SimulatedCrash, v1_migrate
from organizations.models import Membership, Organization
from postprocessing.models import Event

from .conftest import SIZES, V1_DB

pytestmark = V1_DB

# Secret values the seed puts in ProviderConfig ("sinchtok-<md5>", "bwpass-<md5>", Twilio authToken).
SECRET_MARKERS = ("sinchtok-", "bwpass-", "sinchtok-junkline-secret")


def _snapshot() -> dict:
    User = get_user_model()
    return {
        model.__name__: model.objects.count()
        for model in (
            Organization,
            User,
            Membership,
            CarrierAccount,
            Line,
            Contact,
            OptOut,
            Conversation,
            Blast,
            Message,
            IdMap,
            QuarantinedRow,
        )
    }


@pytest.fixture
def migrated(v1_dsn):
    report = v1_migrate(batch_size=1000, trust_references=False)
    return report


def test_full_migration_handles_every_known_problem(migrated, v1):
    # given the seeded v1 database, when migrated (fixture), then
    report = migrated
    assert report["tables"]["Messages"]["read"] == SIZES.messages
    # Deferred FK checks were queued (trust_references=False): run them now; a dangling id would raise.
    with connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")

    # Accounts: trimmed names, Windows zones → IANA.
    org1, org2 = Organization.objects.get(v1_id=1), Organization.objects.get(v1_id=2)
    assert org1.time_zone == "America/New_York" and org2.time_zone == "America/Chicago"
    assert Organization.objects.filter(name__startswith=" ").count() == 0
    # Account 1 was created at 2019-11-03 01:30 (fold: first occurrence, CDT), account 2 at
    # 2019-03-10 02:30 (inside the gap: moved forward, 03:30 CDT).
    assert org1.created_at == datetime(2019, 11, 3, 6, 30, tzinfo=UTC)
    assert org2.created_at == datetime(2019, 3, 10, 8, 30, tzinfo=UTC)

    # Users: one User per normalized email, a membership per account; support staff → support.
    support = get_user_model().objects.get(email="support.1@parley-staff.example")
    assert {m.role for m in support.memberships.all()} == {"support"}
    admin1 = get_user_model().objects.get(email="admin.1@client1.example.com")
    assert not admin1.has_usable_password()

    # Lines: formats normalized; deleted and Bandwidth/Twilio lines archived; junk number quarantined.
    line1, line3, line4, line5 = (Line.objects.get(v1_id=i) for i in (1, 3, 4, 5))
    assert line1.phone_number == "+15123000001" and line1.is_active and line1.carrier_account.provider == "sinch"
    assert line1.carrier_account.config["service_plan_id"] == "plan1"
    assert not line3.is_active and line3.carrier_account is None  # Bandwidth
    assert not line4.is_active and line4.carrier_account is None  # Twilio
    assert not line5.is_active  # IsDeleted
    assert QuarantinedRow.objects.get(v1_table="Lines").reason == "junk_phone"

    # Contacts: variants of one number merge into one contact, the map knows both v1 ids.
    dup_id = 33 * 2  # ContactId 66 repeats contact 64's number (66 % 33 == 0, minus 2 accounts)
    (orig_phone,), (dup_phone,) = v1(
        'SELECT "PhoneNumber" FROM "Contacts" WHERE "ContactId" IN (64, 66) ORDER BY "ContactId"'
    )
    assert orig_phone != dup_phone
    orig_map, dup_map = (
        IdMap.objects.get(v1_table="Contacts", v1_id=64),
        IdMap.objects.get(v1_table="Contacts", v1_id=dup_id),
    )
    assert orig_map.v2_id == dup_map.v2_id and dup_map.merged and not orig_map.merged
    assert Contact.objects.get(pk=orig_map.v2_id).v1_id == 64
    assert QuarantinedRow.objects.filter(v1_table="Contacts", reason="junk_phone").exists()
    # Opt-outs carried over for opted-out contacts.
    assert OptOut.objects.filter(source="import").count() > 0

    # Conversations: the v1-bug twin of conversation 7 merges into it.
    (twin,) = v1(
        'SELECT min("ConversationId") FROM "Conversations" WHERE "ConversationId" > %s', [SIZES.conversations]
    )[0]
    assert IdMap.objects.get(v1_table="Conversations", v1_id=twin).v2_id == Conversation.objects.get(v1_id=7).pk

    # Messages: NUL and non-UTF-8 bodies quarantined whole (bytes kept as base64), with their reason.
    nul = QuarantinedRow.objects.get(v1_table="Messages", v1_id=1)
    assert nul.reason == "body_nul_character" and nul.row["Body"]["base64"] == "SGVsbG8AIHRoZXJl"
    assert QuarantinedRow.objects.get(v1_table="Messages", v1_id=2).reason == "body_not_utf8"
    assert QuarantinedRow.objects.get(v1_table="Messages", v1_id=7).reason == "broken_reference_conversation"

    # DST: message 1001 at 2021-11-07 01:16:41 (fold → CDT), 1002 at 2021-03-14 02:16:42 (gap).
    assert Message.objects.get(v1_id=1001).created_at == datetime(2021, 11, 7, 6, 16, 41, tzinfo=UTC)
    assert Message.objects.get(v1_id=1002).created_at == datetime(2021, 3, 14, 8, 16, 42, tzinfo=UTC)

    # Stuck "Sending" arrives "sending" with batch id and recipient for the backfill; no lease time.
    stuck_ids = [r[0] for r in v1('SELECT "MessageId" FROM "Messages" WHERE "Status" = 2 ORDER BY 1')]
    stuck = Message.objects.filter(v1_id__in=stuck_ids)
    assert (
        stuck.count()
        == len(stuck_ids) - QuarantinedRow.objects.filter(v1_table="Messages", v1_id__in=stuck_ids).count()
    )
    for m in stuck:
        ((pmid, phone),) = v1(
            'SELECT "ProviderMessageId", "ContactPhone" FROM "Messages" WHERE "MessageId" = %s', [m.v1_id]
        )
        assert m.status == "sending" and m.carrier_batch_id == pmid and m.sending_at is None
        assert m.carrier_recipient == "1" + "".join(ch for ch in phone if ch.isdigit())[-10:]
    # Pending/Queued never go back to a work queue.
    assert not Message.objects.filter(v1_id__isnull=False, status="queued").exists()
    assert Message.objects.filter(status="canceled", error_reason__startswith="v1: never sent").exists()
    # Lowercase directions are read, picture-only messages carry their media.
    assert Message.objects.get(v1_id=17 + 211 * 2).direction in ("in", "out")
    picture = Message.objects.get(v1_id=50)
    assert picture.body == "" and picture.media == [
        {"url": "https://media.v1.example/50.jpg", "content_type": "image/jpeg"}
    ]
    assert QuarantinedRow.objects.filter(v1_table="MessageMedia", reason="broken_reference_message").count() == 3

    # Derived fields recomputed; no outbox events for migrated history.
    conv = Conversation.objects.filter(v1_id__isnull=False).order_by("pk").first()
    assert conv.last_message_at == conv.messages.aggregate(m=Max("created_at"))["m"]
    blast = Blast.objects.get(v1_id=1)
    assert blast.status == "completed"
    assert blast.delivered_count == blast.messages.filter(status="delivered").count() > 0
    assert blast.recipient_count == blast.messages.values("contact").distinct().count()
    assert Event.objects.count() == 0

    # The run is recorded with its report; every quarantined row is counted by reason.
    run = MigrationRun.objects.get(pk=report["run_id"])
    assert run.status == "succeeded"
    assert sum(run.report["quarantined_by_reason"].values()) == QuarantinedRow.objects.count()


def test_no_secret_reaches_output_logs_quarantine_or_report(v1_dsn, caplog):
    out, err = io.StringIO(), io.StringIO()
    with caplog.at_level(logging.DEBUG):
        call_command("migrate_v1", "--batch-size", "2000", stdout=out, stderr=err)
        call_command("migrate_v1", "--verify", "--json", stdout=out, stderr=err)
    quarantined = json.dumps(list(QuarantinedRow.objects.values("row", "detail", "reason")))
    runs = json.dumps(list(MigrationRun.objects.values("report", "error")))
    everything = out.getvalue() + err.getvalue() + caplog.text + quarantined + runs
    assert "junk_phone" in quarantined and "servicePlanId" in quarantined  # the line row is there...
    for marker in SECRET_MARKERS:
        assert marker not in everything  # ...without its token
    # The carrier account does hold it (masked everywhere it is shown).
    account = CarrierAccount.objects.filter(organization__v1_id=1).first()
    assert account.config["api_token"].startswith("sinchtok-")
    assert "sinchtok-" not in repr(account) + str(account) + json.dumps(account.masked_config())


def test_second_run_writes_nothing(migrated):
    before = _snapshot()
    again = v1_migrate(batch_size=1000)
    from_start = v1_migrate(batch_size=1000, from_start=True)
    assert _snapshot() == before
    for report in (again, from_start):
        assert all(s["written"] == 0 for s in report["tables"].values()), report["tables"]
    assert again["tables"]["Messages"]["read"] == 0  # checkpoints: nothing even read
    assert again["tables"]["derived"]["extra"] == {"skipped_unchanged": 1}
    first = migrated["tables"]["Messages"]
    # skipped = already migrated + already quarantined; nothing is quarantined twice.
    assert from_start["tables"]["Messages"]["skipped"] == first["written"] + first["quarantined"]
    assert from_start["tables"]["Messages"]["quarantined"] == 0
    assert from_start["quarantined_by_reason"] == {}


def test_resume_after_a_crash_finishes_without_duplicates(v1_dsn):
    # given a run that dies after 2 committed batches of messages
    with pytest.raises(SimulatedCrash):
        v1_migrate(batch_size=1000, stop_after=("Messages", 2))
    run = MigrationRun.objects.get()
    assert run.status == "failed" and "SimulatedCrash" in run.error
    assert MigrationCheckpoint.objects.get(scope="all", table="Messages").last_v1_id == 2000
    partial = Message.objects.count()
    assert 0 < partial <= 2000
    # when it is run again
    report = v1_migrate(batch_size=1000)
    # then it resumes after the checkpoint and ends where a clean run ends
    assert report["tables"]["Messages"]["read"] == SIZES.messages - 2000
    quarantined = QuarantinedRow.objects.filter(v1_table="Messages").count()
    assert Message.objects.count() == SIZES.messages - quarantined
    assert Message.objects.values("v1_id").distinct().count() == Message.objects.count()
    # and the derived fields were rebuilt after the resumed run (the crashed one never got there)
    # (the last message is the newest that went out or came in, at that time: docs/messaging.md)
    gone_out = Q(messages__direction="in") | Q(messages__sent_at__isnull=False)
    conv = Conversation.objects.filter(gone_out, messages__v1_id__gt=5000).first()
    went = conv.messages.filter(Q(direction="in") | Q(sent_at__isnull=False))
    newest = went.aggregate(m=Max(Coalesce("sent_at", "received_at", "created_at")))["m"]
    assert conv.last_message_at == newest is not None


def test_dry_run_writes_nothing_and_reports_what_it_would_write(v1_dsn):
    before = _snapshot()
    report = v1_migrate(batch_size=2000, dry_run=True)
    assert _snapshot() == before
    assert not MigrationRun.objects.exists() and not MigrationCheckpoint.objects.exists()
    assert report["dry_run"] and report["tables"]["Messages"]["written"] > 5000
    out = io.StringIO()
    call_command("migrate_v1", "--dry-run", "--no-progress", stdout=out)
    assert "DRY RUN" in out.getvalue() and _snapshot() == before


def test_verify_passes_then_names_what_differs(migrated):
    out = io.StringIO()
    call_command("migrate_v1", "--verify", stdout=out)
    assert "No differences." in out.getvalue()
    # when a body is altered and a message lost in v2
    changed = Message.objects.filter(line__v1_id=1, v1_id__isnull=False).order_by("v1_id")[5]
    changed.body = changed.body + "!"
    changed.save(update_fields=["body"])
    lost = Message.objects.filter(line__v1_id=2, v1_id__isnull=False).order_by("v1_id")[3]
    lost_v1_id = lost.v1_id
    lost.delete()
    out = io.StringIO()
    with pytest.raises(Exception, match="difference"):
        call_command("migrate_v1", "--verify", stdout=out)
    text = out.getvalue()
    assert f"line 1: 1 message(s) body differs: MessageId [{changed.v1_id}]" in text
    assert f"line 2: 1 message(s) missing in v2: MessageId [{lost_v1_id}]" in text
    assert "line 2: Messages: expected" in text
    assert "line 3" not in text.split("Differences:")[1]


def test_scope_account_then_line(v1_dsn, v1):
    report = v1_migrate(scope=Scope("account", 2), batch_size=1000)
    assert set(Organization.objects.values_list("v1_id", flat=True)) == {2}
    lines_of_2 = {r[0] for r in v1('SELECT "LineId" FROM "Lines" WHERE "AccountId" = 2')}
    assert set(Message.objects.values_list("line__v1_id", flat=True).distinct()) <= lines_of_2
    ((n,),) = v1(
        'SELECT count(*) FROM "Messages" WHERE "LineId" IN (SELECT "LineId" FROM "Lines" WHERE "AccountId" = 2)'
    )
    assert report["tables"]["Messages"]["read"] == n
    # a line of account 1: only that line's conversations and messages (plus its account's shared rows)
    v1_migrate(scope=Scope("line", 1), batch_size=1000)
    assert set(Organization.objects.values_list("v1_id", flat=True)) == {1, 2}
    assert set(Line.objects.filter(organization__v1_id=1).values_list("v1_id", flat=True)) == {1}
    assert set(Message.objects.filter(organization__v1_id=1).values_list("line__v1_id", flat=True)) == {1}
    assert MigrationCheckpoint.objects.filter(scope="line:1", table="Messages").exists()
    # a whole run afterwards completes the rest without duplicating anything
    v1_migrate(batch_size=2000)
    quarantined = QuarantinedRow.objects.filter(v1_table="Messages").count()
    assert Message.objects.count() == SIZES.messages - quarantined


def test_command_rejects_bad_arguments(v1_dsn):
    with pytest.raises(Exception, match="exclusive"):
        call_command("migrate_v1", "--account", "1", "--line", "1")
    with pytest.raises(Exception, match="batch-size"):
        call_command("migrate_v1", "--batch-size", "0")


def test_admin_shows_runs_and_quarantine_without_secrets(migrated, client):
    from tests.factories import UserFactory

    admin_user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    run = MigrationRun.objects.get()
    line_row = QuarantinedRow.objects.get(v1_table="Lines")
    pages = [
        client.get("/admin/migration_v1/migrationrun/"),
        client.get(f"/admin/migration_v1/migrationrun/{run.pk}/change/"),
        client.get("/admin/migration_v1/quarantinedrow/?reason=junk_phone"),
        client.get(f"/admin/migration_v1/quarantinedrow/{line_row.pk}/change/"),
        client.get("/admin/migration_v1/migrationcheckpoint/"),
    ]
    assert [p.status_code for p in pages] == [200] * 5
    # the run page names the decisions with their v1 ids
    assert "Contacts: merged_into_twin_with_lower_contact_id" in pages[1].content.decode()
    detail = pages[3].content.decode()
    assert "servicePlanId" in detail and "planX" in detail
    for page in pages:
        for marker in SECRET_MARKERS:
            assert marker not in page.content.decode()


PER_BATCH, PER_STEP = 20, 4


def _migrate_all_but_messages() -> object:
    from migration_v1.services import STEPS
    from migration_v1.services.engine import Context, resolve_scope

    ctx = Context(scope=Scope(), batch_size=2000)
    resolve_scope(ctx)
    for name, step in STEPS:
        if name in ("Messages", "derived"):
            break
        step(ctx)
    return ctx


# Per batch: savepoint + release, work_mem, 3 for the FK-trigger switch, 2×(create temp + truncate), the
# v1_id range probe, synthetic contacts, synthetic conversations, the message insert, quarantine
# reasons + quarantine insert (bad rows + unplaced rows), checkpoint; plus a fixed few per step.
@pytest.mark.parametrize(
    ("batch_size", "expected"),
    [(2000, PER_STEP + 3 * PER_BATCH), (3000, PER_STEP + 2 * PER_BATCH), (6000, PER_STEP + PER_BATCH)],
)
def test_message_batches_cost_a_fixed_number_of_queries(v1_dsn, django_assert_num_queries, batch_size, expected):
    from migration_v1.services.messages import migrate_messages

    ctx = _migrate_all_but_messages()
    ctx.batch_size = batch_size
    # COPY and the v1 reads run outside Django's cursor and are not counted.
    with django_assert_num_queries(expected):
        migrate_messages(ctx)
    assert ctx.table("Messages").read == SIZES.messages


def test_v1_is_read_through_models_and_never_written(v1_dsn):
    from django.db import router

    from migration_v1.models import V1Account, V1Message

    assert router.db_for_read(V1Message) == "v1"
    assert V1Account.objects.filter(account_id=1).values_list("time_zone", flat=True).get() == "Eastern Standard Time"
    with pytest.raises(PermissionError):
        V1Account.objects.create(account_id=99, name="x", is_active=True, created_on=datetime(2020, 1, 1))
    assert router.allow_migrate("v1", "migration_v1") is False
    assert router.allow_migrate("default", "migration_v1", model_name="migrationrun") is True


def test_v1_seed_never_drops_a_database_it_did_not_make(v1_dsn):
    import psycopg

    from migration_v1.seed import NotASeedDatabase, admin_dsn, create_database, drop_database

    other = psycopg.conninfo.make_conninfo(v1_dsn, dbname=psycopg.conninfo.conninfo_to_dict(v1_dsn)["dbname"] + "x")
    name = psycopg.conninfo.conninfo_to_dict(other)["dbname"]
    with psycopg.connect(admin_dsn(other), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')  # e.g. a real v1 copy
    try:
        with pytest.raises(NotASeedDatabase):
            create_database(other, reset=True)
        with pytest.raises(Exception, match="not made by v1_seed"):
            call_command("v1_seed", "--messages", "10", "--database-url", other)
    finally:
        drop_database(other)


@pytest.mark.django_db(databases=["default", "v1"], transaction=True)
def test_parallel_writers_crash_resume_and_rerun_outside_a_transaction(v1_dsn):
    # Committed for real: 3 writer threads with their own connections, the reader's v2 pre-filter.
    with pytest.raises(SimulatedCrash):
        v1_migrate(batch_size=500, writers=3, stop_after=("Messages", 4))
    checkpoint = MigrationCheckpoint.objects.get(scope="all", table="Messages").last_v1_id
    assert checkpoint % 500 == 0 and checkpoint <= Message.objects.aggregate(m=Max("v1_id"))["m"] + 500
    resumed = v1_migrate(batch_size=500, writers=3)
    quarantined = QuarantinedRow.objects.filter(v1_table="Messages").count()
    assert Message.objects.count() == SIZES.messages - quarantined
    assert resumed["tables"]["Messages"]["read"] == SIZES.messages - checkpoint
    before = _snapshot()
    rerun = v1_migrate(batch_size=500, writers=3, from_start=True)
    assert _snapshot() == before
    assert rerun["tables"]["Messages"]["written"] == 0
    assert rerun["tables"]["Messages"]["skipped"] == Message.objects.count() + quarantined
    assert rerun["tables"]["Messages"]["extra"]["already_quarantined"] == quarantined
    assert rerun["tables"]["Contacts"]["skipped"] > 0 and rerun["tables"]["Contacts"]["written"] == 0
    assert v1_verify_ok()


def v1_verify_ok() -> bool:
    from migration_v1.services import v1_verify

    return v1_verify(store=False)["ok"]
