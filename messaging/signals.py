"""What the messaging app tells higher apps (integrations) without importing them (the import order
goes upwards only). Sent after the change commits; receivers should only enqueue work, and a
receiver's error never fails the sender (send_robust). A beat sweep on the receiving side catches
what a lost enqueue or a change made elsewhere (admin form, SQL) missed."""

from __future__ import annotations

import logging

from django.dispatch import Signal

from config.wakeup import wake_on_commit_call

log = logging.getLogger(__name__)

# kwargs: conversation_ids (list[int]) — conversations now closed.
conversations_closed = Signal()
# kwargs: organization_id (int), phone_numbers (list[str]) — numbers that opted out of the organization.
numbers_opted_out = Signal()


def send_on_commit(signal: Signal, **kwargs) -> None:
    def send() -> None:
        for receiver, result in signal.send_robust(sender=None, **kwargs):
            if isinstance(result, Exception):
                log.error("receiver %s failed: %r", getattr(receiver, "__qualname__", receiver), result)

    wake_on_commit_call(send)


# kwargs: organization_id (int), contact_id (int) — a contact was erased (privacy request). Unlike the
# signals above it is sent INSIDE the erasing transaction (plain send, errors propagate): what a receiver
# redacts commits or rolls back with the erasure, so personal data never outlives an erasure that
# reported success. The shortener redacts the contact's links.
contact_erased = Signal()
