"""A seeded v1 database for the migration tests.

pytest-django does not create databases for unmanaged models, so the session fixture creates
test_<v2 test database>_v1 on the same server with psycopg, seeds it (every known problem of the
spec included), points the "v1" alias at it, and drops it at the end.
"""

from __future__ import annotations

import psycopg
import pytest
from django.db import connections

from migration_v1.db import dsn_for, ensure_v1_alias
from migration_v1.seed import SeedSizes, drop_database, v1_seed

# Small but with every problem present: 2 accounts × 3 lines (+ the placeholder line), 600 contacts.
SIZES = SeedSizes.for_messages(6000, accounts=2)

V1_DB = pytest.mark.django_db(databases=["default", "v1"])


@pytest.fixture(scope="session", autouse=True)
def v1_dsn(django_db_setup, django_db_blocker):
    settings_dict = connections["default"].settings_dict
    name = f"{settings_dict['NAME']}_v1"
    dsn = psycopg.conninfo.make_conninfo(dsn_for(settings_dict), dbname=name)
    with django_db_blocker.unblock():
        v1_seed(dsn=dsn, sizes=SIZES, reset=True)
        ensure_v1_alias(dsn)
    yield dsn
    with django_db_blocker.unblock():
        connections["v1"].close()
        drop_database(dsn)


@pytest.fixture
def v1(v1_dsn):
    """Run a query on the v1 database (read-only use in tests)."""

    def query(sql: str, params=None) -> list[tuple]:
        with psycopg.connect(v1_dsn, autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()

    return query


def _scratch_dsn(v1_dsn: str, suffix: str) -> str:
    name = psycopg.conninfo.conninfo_to_dict(v1_dsn)["dbname"]
    return psycopg.conninfo.make_conninfo(v1_dsn, dbname=f"{name}_{suffix}")


@pytest.fixture
def other_v1(v1_dsn):
    """Make another v1 database (any schema, body typing, extra SQL) and point the "v1" alias at it for
    the test; the session's seeded v1 is pointed at again afterwards. Use with transaction=True tests
    (the alias is swapped under the test, so it must not be wrapped in a test transaction)."""
    made: list[str] = []

    def make(suffix: str, *, sizes=None, schema="project", body_type=None, sql: tuple[str, ...] = ()) -> str:
        dsn = _scratch_dsn(v1_dsn, suffix)
        v1_seed(dsn=dsn, sizes=sizes or SMALL, reset=True, force=True, schema=schema, body_type=body_type)
        made.append(dsn)
        if sql:
            with psycopg.connect(dsn, autocommit=True) as conn:
                for statement in sql:
                    conn.execute(statement)
        ensure_v1_alias(dsn)
        return dsn

    yield make
    ensure_v1_alias(v1_dsn)
    for dsn in made:
        drop_database(dsn)


# For the whole-run tests on other v1 databases: every problem present, a fraction of the time.
SMALL = SeedSizes.for_messages(2500, accounts=2)
