"""Post-processing event types, declared once. An unknown name is an error, not a silent no-op."""

from __future__ import annotations

from django.db import models


class EventType(models.TextChoices):
    MESSAGE_QUEUED = "message.queued", "Message queued"
    MESSAGE_SENT = "message.sent", "Message sent"
    MESSAGE_DELIVERED = "message.delivered", "Message delivered"
    MESSAGE_FAILED = "message.failed", "Message failed or undelivered"
    MESSAGE_RECEIVED = "message.received", "Message received"
    MESSAGE_BLOCKED = "message.blocked", "Message blocked (never sent)"
    LINK_CLICKED = "link.clicked", "Link clicked"


class UnknownEventType(KeyError):
    pass


def check_event_type(name: str) -> str:
    if name not in EventType.values:
        raise UnknownEventType(name)
    return name


# The event a message status change emits (None: no event). Used by the set-based transition SQL.
STATUS_EVENTS: dict[str, str] = {
    "queued": EventType.MESSAGE_QUEUED,
    "sent": EventType.MESSAGE_SENT,
    "delivered": EventType.MESSAGE_DELIVERED,
    "failed": EventType.MESSAGE_FAILED,
    "undelivered": EventType.MESSAGE_FAILED,
    "unknown": EventType.MESSAGE_FAILED,
    "received": EventType.MESSAGE_RECEIVED,
    "blocked": EventType.MESSAGE_BLOCKED,
    "canceled": EventType.MESSAGE_BLOCKED,
}
