"""migrate_v1 --bulk-load: secondary indexes of messaging_message dropped for the load, rebuilt identical,
and never left missing — not by a failed run, not by a crash that skipped the rebuild."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from messaging.models import Message
from migration_v1.models import MigrationRun, QuarantinedRow
from migration_v1.services import SimulatedCrash, v1_migrate
from migration_v1.services.bulk import PENDING, RESTORED, bulk_begin
from tests.factories import MessageFactory

from .conftest import SIZES, V1_DB

pytestmark = V1_DB


def _indexes() -> list[tuple[str, str]]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'messaging_message' ORDER BY indexname"
        )
        return cur.fetchall()


def test_bulk_load_migrates_everything_and_rebuilds_identical_indexes():
    before = _indexes()
    report = v1_migrate(batch_size=1000, bulk_load=True, trust_references=False)
    assert _indexes() == before
    dropped = report["bulk_load"]["dropped_indexes"]
    # the secondary indexes only: pkey and the unique ones (ON CONFLICT (v1_id)) stay
    assert "msg_conversation_recent" in dropped and "msg_org_recent" in dropped
    assert not {"messaging_message_pkey", "messaging_message_v1_id_key", "msg_client_reference_uniq"} & set(dropped)
    assert report["bulk_load"]["index_rebuild_seconds"] >= 0
    quarantined = QuarantinedRow.objects.filter(v1_table="Messages").count()
    assert Message.objects.count() == SIZES.messages - quarantined > 0
    run = MigrationRun.objects.get()
    assert run.status == "succeeded" and run.options[RESTORED] is True
    assert [name for name, _ in run.options[PENDING]] == dropped
    # a rerun in bulk mode writes nothing and leaves the indexes as they are
    again = v1_migrate(batch_size=1000, bulk_load=True, from_start=True)
    assert again["tables"]["Messages"]["written"] == 0 and _indexes() == before


def test_a_failed_bulk_load_still_rebuilds_the_indexes():
    before = _indexes()
    with pytest.raises(SimulatedCrash):
        v1_migrate(batch_size=1000, bulk_load=True, stop_after=("Messages", 2))
    assert _indexes() == before
    assert MigrationRun.objects.get().options[RESTORED] is True


def test_after_a_crash_with_indexes_dropped_the_next_run_recreates_them_first():
    before = _indexes()
    # given a bulk run killed between the drop and the rebuild (what bulk_begin leaves behind)
    crashed = MigrationRun.objects.create(scope="all", mode="migrate", options={"bulk_load": True})
    dropped = [name for name, _ in bulk_begin(crashed.pk)]
    assert len(_indexes()) == len(before) - len(dropped) and dropped
    # when any later run starts (here a normal one)
    report = v1_migrate(batch_size=2000)
    # then the indexes are back, exactly, and the crashed run is marked restored
    assert _indexes() == before
    assert report["bulk_load"]["recovered_indexes"] == dropped
    crashed.refresh_from_db()
    assert crashed.options[RESTORED] is True
    # and nothing is recovered twice
    assert "recovered_indexes" not in v1_migrate(batch_size=2000)["bulk_load"]


def test_bulk_load_is_refused_when_v2_has_its_own_messages():
    MessageFactory()
    before = _indexes()
    with pytest.raises(CommandError, match="did not come from v1"):
        call_command("migrate_v1", "--bulk-load", "--no-progress", stdout=io.StringIO())
    assert _indexes() == before
