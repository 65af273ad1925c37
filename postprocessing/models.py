"""The post-processing outbox. A row is written in the same transaction as the change that causes it."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from .events import EventType


class EventState(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    DEAD = "dead", "Dead letter"


class Event(models.Model):
    type = models.CharField(max_length=32, choices=EventType.choices)
    message_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    payload = models.JSONField(default=dict, db_default={}, blank=True)
    # The status the message moved to, in order of its history (ordering within one message).
    state = models.CharField(
        max_length=8, choices=EventState.choices, default=EventState.PENDING, db_default=EventState.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0, db_default=0)
    available_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="", db_default="")
    failed_processor = models.CharField(max_length=100, blank=True, default="", db_default="")
    created_at = models.DateTimeField(db_default=Now())
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["id"], name="event_pending", condition=Q(state="pending")),
            models.Index(fields=["type", "state"], name="event_type_state"),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk} ({self.state})"
