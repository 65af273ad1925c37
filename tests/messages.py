"""Messages walked through the real status path, for the tests of the outbox and of the processors
(tests/postprocessing, tests/messaging, tests/shortener): real rows, real events."""

from __future__ import annotations

import pytest
from django.utils import timezone

from messaging.models import Blast, BlastRecipient, BlastStatus, Message
from messaging.services.status import StatusUpdate, events_record_for_new_messages, messages_apply_statuses
from messaging.status import MessageStatus as S
from postprocessing.models import Event
from postprocessing.services import events_drain
from tests.factories import BlastFactory, ContactFactory, ConversationFactory, LineFactory


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


def blast_row(blast: Blast) -> Blast:
    blast.refresh_from_db()
    return blast


def redrain_all() -> None:
    """Hand every event to the processors again, as a retry or a re-run would."""
    Event.objects.update(state="pending")
    events_drain()
