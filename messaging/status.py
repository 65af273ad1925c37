"""Message status as data: one transition table and one function that applies it.

Statuses only move forward. Carrier reports arrive out of order, twice, or before our own send call
returned; the table makes a late "sent" after "delivered" a no-op instead of a regression. The same
table drives the set-based SQL used on hot paths (`sources_for`), so Python and SQL never disagree.
See docs/messaging.md.
"""

from __future__ import annotations

from django.db import models

# The one generator of statement text naming a declared value (lives with the SQL executor, below every
# app, so postprocessing and carriers use it too); imported here for the message-status callers.
from config.sql import sql_literals as sql_literals


class MessageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"  # written by the API, waiting for queue-time preparation
    SCHEDULED = "scheduled", "Scheduled"  # prepared for a later send time (send time or quiet hours)
    PREPARED = "prepared", "Prepared"  # ready for the carrier call
    SENDING = "sending", "Sending"  # claimed by a send task; carrier call in flight
    SENT = "sent", "Sent"  # accepted by the carrier (batch id recorded)
    DELIVERED = "delivered", "Delivered"
    UNDELIVERED = "undelivered", "Undelivered"  # carrier final: expired, rejected, deleted...
    FAILED = "failed", "Failed"  # our permanent error or carrier "Failed"
    BLOCKED = "blocked", "Blocked"  # never sent: opted out, invalid number, ...
    CANCELED = "canceled", "Canceled"
    UNKNOWN = "unknown", "Unknown"  # carrier has no record after its retention window
    RECEIVED = "received", "Received"  # inbound


S = MessageStatus

# from-status → the statuses it may move to. Anything not listed is refused.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.QUEUED: frozenset({S.SCHEDULED, S.PREPARED, S.BLOCKED, S.CANCELED, S.FAILED}),
    S.SCHEDULED: frozenset({S.PREPARED, S.BLOCKED, S.CANCELED, S.FAILED}),
    S.PREPARED: frozenset({S.SENDING, S.SCHEDULED, S.BLOCKED, S.CANCELED, S.FAILED}),
    # SENDING → PREPARED only for a claim whose carrier call provably never reached the carrier.
    # A report may beat our own send call's return: SENDING → DELIVERED/UNDELIVERED/FAILED is legal.
    S.SENDING: frozenset({S.PREPARED, S.SENT, S.DELIVERED, S.UNDELIVERED, S.FAILED, S.UNKNOWN}),
    S.SENT: frozenset({S.DELIVERED, S.UNDELIVERED, S.FAILED, S.UNKNOWN}),
    # "unknown" is our own verdict, not the carrier's: a real final report still wins over it.
    S.UNKNOWN: frozenset({S.DELIVERED, S.UNDELIVERED, S.FAILED}),
    S.DELIVERED: frozenset(),
    S.UNDELIVERED: frozenset(),
    S.FAILED: frozenset(),
    S.BLOCKED: frozenset(),
    S.CANCELED: frozenset(),
    S.RECEIVED: frozenset(),
}

FINAL = frozenset(s for s, targets in TRANSITIONS.items() if not targets) | {S.UNKNOWN}
# Outbound statuses the carrier may still change: what the status backfill looks at.
AWAITING_CARRIER = frozenset({S.SENDING, S.SENT})
# Statuses that count as "handed to the carrier" for blast counters.
CARRIER_ACCEPTED = frozenset({S.SENT, S.DELIVERED, S.UNDELIVERED, S.UNKNOWN})


class IllegalTransition(ValueError):
    def __init__(self, current: str, target: str):
        super().__init__(f"message status cannot move from {current!r} to {target!r}")
        self.current, self.target = current, target


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS[current]


def check_transition(current: str, target: str) -> None:
    """Raise IllegalTransition unless current → target is in the table."""
    if not can_transition(current, target):
        raise IllegalTransition(current, target)


def sources_for(target: str) -> tuple[str, ...]:
    """Every status that may move to `target`: the guard of a set-based UPDATE."""
    return tuple(sorted(s for s, targets in TRANSITIONS.items() if target in targets))


def is_final(status: str) -> bool:
    return status in FINAL
