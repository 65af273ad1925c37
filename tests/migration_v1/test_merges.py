"""Merges do not depend on batch size (issue 15, item 4): twin contacts (same normalized number) and
twin conversations (same line and merged contact) give the same v2 data at --batch-size 1, the
default and 100,000. Property test: hypothesis draws the twins (blank fields, open/closed/deleted,
assignees known, unknown or none, id order interleaved), each draw is migrated three times."""

from __future__ import annotations

import psycopg
import pytest
from django.db import transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from messaging.models import Contact, Conversation, Message, OptOut
from migration_v1.models import IdMap
from migration_v1.seed import SeedSizes
from migration_v1.services import DEFAULT_BATCH_SIZE, v1_migrate

pytestmark = pytest.mark.django_db(databases=["default", "v1"], transaction=True)

TINY = SeedSizes.for_messages(300, accounts=2)
FORMATS = ["+1512601{:04d}", "512601{:04d}", "(512) 601-{:04d}", "512.601.{:04d}", "1512601{:04d}"]
# Users of account 1 in the seed are 1..5 (4 is deleted in some accounts); 4242 is no user at all.
ASSIGNEES = [None, 1, 2, 3, 5, 4242]

twin = st.fixed_dictionaries(
    {
        "format": st.integers(0, len(FORMATS) - 1),
        "first": st.sampled_from(["", "Ann", "Bo"]),
        "last": st.sampled_from(["", "Lee"]),
        "email": st.sampled_from(["", "a@x.example", "b@x.example"]),
        "opted_out": st.booleans(),
        "closed": st.booleans(),
        "deleted": st.booleans(),
        "assignee": st.sampled_from(ASSIGNEES),
        "line": st.integers(1, 2),
    }
)
groups = st.lists(st.lists(twin, min_size=2, max_size=4), min_size=1, max_size=4)


def _twin_sql(draw_groups: list[list[dict]], order: list[int]) -> list[str]:
    """Contacts 1000+ and conversations 1000+ of account 1; ids interleave the groups by `order`."""
    rows = [(g, t) for g, group in enumerate(draw_groups) for t in group]
    rows = [rows[i % len(rows)] for i in order] if order else rows
    statements = []
    for n, (g, t) in enumerate(rows):
        cid = 1000 + n
        phone = FORMATS[t["format"]].format(g)
        first = f"'{t['first']}'" if t["first"] else "NULL"
        statements.append(
            f"""INSERT INTO "Contacts" VALUES ({cid}, 1, '{phone}', {first}, '{t["last"]}',
                '{t["email"]}', {t["opted_out"]}, NULL, timestamp '2020-01-01' + {n} * interval '1 hour')"""  # noqa: S608 — table names and fragments are constants of the test; values bound
        )
        assignee = "NULL" if t["assignee"] is None else t["assignee"]
        statements.append(
            f"""INSERT INTO "Conversations" VALUES ({cid}, {t["line"]}, {cid}, {t["closed"]}, {assignee}, NULL,
                {t["deleted"]}, timestamp '2020-02-01' + {n} * interval '1 hour')"""  # noqa: S608 — table names and fragments are constants of the test; values bound
        )
        statements.append(
            f"""INSERT INTO "Messages" VALUES ({100000 + n}, {cid}, {t["line"]}, '{phone}', 'I', 'hi {n}', 7,
                NULL, NULL, NULL, NULL, timestamp '2020-03-01' + {n} * interval '1 minute', NULL),
                ({200000 + n}, NULL, {t["line"]}, '{phone}', 'O', 'blast {n}', 4, 'b{n}', NULL, 1, 1,
                timestamp '2020-03-02' + {n} * interval '1 minute', NULL)"""  # noqa: S608 — table names and fragments are constants of the test; values bound
        )
    return statements


def _snapshot() -> dict:
    """Everything the merge rules decide, keyed by v1 ids and natural keys (never by v2 pk)."""
    return {
        "contacts": sorted(
            Contact.objects.values_list(
                "organization__v1_id", "phone_number", "first_name", "last_name", "email", "v1_id", "created_at"
            )
        ),
        "conversations": sorted(
            Conversation.objects.values_list(
                "line__v1_id", "contact__phone_number", "status", "assignee__username", "v1_id", "created_at"
            ),
            key=repr,
        ),
        "opt_outs": sorted(OptOut.objects.values_list("organization__v1_id", "phone_number", "reason", "created_at")),
        "contact_map": sorted(
            (m.v1_id, m.merged, *Contact.objects.filter(pk=m.v2_id).values_list("v1_id", "phone_number").get())
            for m in IdMap.objects.filter(v1_table="Contacts")
        ),
        "conversation_map": sorted(
            (m.v1_id, m.merged, Conversation.objects.filter(pk=m.v2_id).values_list("v1_id", flat=True).get())
            for m in IdMap.objects.filter(v1_table="Conversations")
        ),
        "messages": sorted(
            Message.objects.values_list(
                "v1_id", "line__v1_id", "contact__phone_number", "conversation__v1_id", "conversation__line__v1_id"
            ),
            key=repr,
        ),
    }


def _migrate_and_snapshot(batch_size: int) -> dict:
    with transaction.atomic():
        report = v1_migrate(batch_size=batch_size)
        snapshot = _snapshot()
        transaction.set_rollback(True)
    for name, table in report["tables"].items():
        if name != "derived":
            assert table["unaccounted"] == 0, (batch_size, name, table)
    return snapshot


def test_merges_give_the_same_result_at_any_batch_size(other_v1):
    dsn = other_v1("merges", sizes=TINY)

    @settings(
        max_examples=3,
        # No shrinking: each example migrates three times; a failure is reported with its draw as is.
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(draw_groups=groups, order=st.permutations(list(range(16))))
    def check(draw_groups, order):
        statements = _twin_sql(draw_groups, order)
        with psycopg.connect(dsn, autocommit=True) as conn:
            for table, column in (
                ("Messages", "MessageId"),
                ("Conversations", "ConversationId"),
                ("Contacts", "ContactId"),
            ):
                conn.execute(f'DELETE FROM "{table}" WHERE "{column}" >= 1000')  # noqa: S608 — table names and fragments are constants of the test; values bound
            for statement in statements:
                conn.execute(statement)
        results = {size: _migrate_and_snapshot(size) for size in (1, DEFAULT_BATCH_SIZE, 100_000)}
        one, default, big = results.values()
        assert one == default == big
        # and the rules hold: a group is one contact with the first non-blank fields in id order
        assert any(c[5] is not None and c[5] >= 1000 for c in one["contacts"])

    check()
