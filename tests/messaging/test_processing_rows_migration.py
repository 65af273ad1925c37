"""messaging 0013 / postprocessing 0008: BlastRecount, BlastProgress and NumberFlag move to messaging.

Run for real on PostgreSQL: the database is taken back to the state before the move, rows are written
through the old models (postprocessing's), and the migrations run forward over them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from messaging.models import BlastProgress, BlastRecount, NumberFlag, NumberFlagKind, NumberFlagReview
from tests import factories

BEFORE = [("messaging", "0012_message_in_flight"), ("postprocessing", "0007_event_message_id_unindexed")]
TABLES = ["postprocessing_blastrecount", "postprocessing_blastprogress", "postprocessing_numberflag"]


def _table_oids() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, oid::int FROM pg_class WHERE relname = ANY(%s)", [TABLES])
        return dict(cursor.fetchall())


def _migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()  # the applied set changed: reread it before planning again
    return executor


@pytest.mark.django_db(transaction=True)
def test_the_move_keeps_the_tables_their_rows_and_the_content_types():
    org = factories.OrganizationFactory()
    contact = factories.ContactFactory(organization=org)
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    oids = _table_oids()
    assert set(oids) == set(TABLES)
    executor = _migrate(BEFORE)
    try:
        # given: rows written through the models as they were, in the postprocessing app
        old = executor.loader.project_state(BEFORE).apps
        now = timezone.now()
        old.get_model("postprocessing", "BlastRecount").objects.create(blast_id=41, marked_at=now)
        old.get_model("postprocessing", "BlastProgress").objects.create(blast_id=42, at=now)
        flag = old.get_model("postprocessing", "NumberFlag").objects.create(
            organization_id=org.pk,
            contact_id=contact.pk,
            phone_number=contact.phone_number,
            kind=NumberFlagKind.DELETED,
            first_seen_at=now - timedelta(hours=1),
            last_seen_at=now,
            message_id=7,
        )
        old_type = ContentType.objects.get(app_label="postprocessing", model="numberflag")
    finally:
        # when: the migrations run forward (also if the setup above failed: later tests need the schema)
        executor = _migrate(latest)
    # then: the same tables (not recreated) with their rows, read by the models now in messaging
    assert _table_oids() == oids
    assert list(BlastRecount.objects.values_list("blast_id", "marked_at")) == [(41, now)]
    assert list(BlastProgress.objects.values_list("blast_id", "at")) == [(42, now)]
    moved = NumberFlag.objects.get()
    assert (moved.pk, moved.organization_id, moved.contact_id, moved.message_id) == (flag.pk, org.pk, contact.pk, 7)
    assert moved.review == NumberFlagReview.PENDING
    # raw SQL naming the tables keeps working (the processors' statements name them)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT blast_id FROM postprocessing_blastrecount"
            " UNION ALL SELECT blast_id FROM postprocessing_blastprogress"
        )
        assert sorted(r[0] for r in cursor.fetchall()) == [41, 42]
    # the admin's content type moved, keeping its id (permissions and admin history stay attached)
    ContentType.objects.clear_cache()
    assert ContentType.objects.get_for_model(NumberFlag).pk == old_type.pk
    assert not ContentType.objects.filter(app_label="postprocessing", model="numberflag").exists()
