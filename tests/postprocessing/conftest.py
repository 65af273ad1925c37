"""Helpers for post-processing tests: real rows, real events through the real status path."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from messaging.models import Blast, BlastRecipient, BlastStatus, Message
from messaging.services.status import StatusUpdate, events_record_for_new_messages, messages_apply_statuses
from messaging.status import MessageStatus as S
from postprocessing import registry
from postprocessing.models import Event
from tests.factories import BlastFactory, ContactFactory, ConversationFactory, LineFactory
from tests.worker import celery_worker_proc  # noqa: F401  (fixture for the real-worker test)


def queue(messages) -> None:
    """The queued events the send pipeline writes for new rows."""
    events_record_for_new_messages(message_ids=[m.id for m in messages], status=S.QUEUED)


def move(messages, *statuses, **fields) -> None:
    """Walk messages through statuses via the one status path (which writes the events)."""
    for status in statuses:
        messages_apply_statuses(updates=[StatusUpdate(m.id, status, **fields) for m in messages])


def pending_count() -> int:
    return Event.objects.filter(state="pending").count()


@pytest.fixture
def blast_with_messages(org):
    """A sending blast of 5 recipients, each with a queued message in its own conversation."""

    def make(n: int = 5, status: str = S.QUEUED):
        line = LineFactory(organization=org)
        blast = BlastFactory(organization=org, line=line, status=BlastStatus.SENDING, recipient_count=n)
        msgs = []
        for i in range(n):
            contact = ContactFactory(organization=org)
            BlastRecipient.objects.create(blast=blast, contact=contact)
            conv = ConversationFactory(organization=org, line=line, contact=contact)
            msgs.append(
                Message.objects.create(
                    organization=org,
                    line=line,
                    conversation=conv,
                    contact=contact,
                    blast=blast,
                    direction="out",
                    body="Hi {first_name}",
                    rendered_body=f"Hi First{i}",
                    status=status,
                    # as the status path would have it: set once the carrier took the message
                    sent_at=timezone.now() if status in (S.SENT, S.DELIVERED, S.UNDELIVERED) else None,
                )
            )
        return blast, msgs

    return make


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


def blast_row(blast: Blast) -> Blast:
    blast.refresh_from_db()
    return blast


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
