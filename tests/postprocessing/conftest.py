"""Helpers for post-processing tests: real rows, real events through the real status path."""

from __future__ import annotations

import pytest
from django.db import connection

from postprocessing import registry
from tests.messages import blast_row, blast_with_messages, move, pending_count, queue  # noqa: F401  (helpers, fixture)
from tests.worker import celery_worker_proc  # noqa: F401  (fixture for the real-worker test)


@pytest.fixture
def temp_processor():
    """Register processors for one test and unregister them afterwards."""
    names: list[str] = []

    def register(*types, name, fn):
        registry.processor(*types, name=name)(fn)
        names.append(name)
        return fn

    yield register
    registry.unregister(names)


def seen_table():
    with connection.cursor() as c:
        c.execute("CREATE TABLE IF NOT EXISTS pp_test_seen (event_id bigint NOT NULL, drain text NOT NULL)")


RELEASE_PROCESSORS = ("conversation_last_message", "link_attribution", "optout_hygiene", "blast_counters")


@pytest.fixture
def release_processors_only(monkeypatch):
    """Only this release's four processors (other apps register their own, e.g. integrations): for
    tests that pin exact query counts of ours."""
    by_name = {n: p for n, p in registry._BY_NAME.items() if n in RELEASE_PROCESSORS}
    by_type = {t: [p for p in ps if p.name in RELEASE_PROCESSORS] for t, ps in registry._BY_TYPE.items()}
    monkeypatch.setattr(registry, "_BY_NAME", by_name)
    monkeypatch.setattr(registry, "_BY_TYPE", by_type)
