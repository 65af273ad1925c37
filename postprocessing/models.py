"""The post-processing outbox and its bookkeeping. See docs/postprocessing.md.

- `Event`: one row per fact (a status change, a click), written in the same transaction as the change
  that causes it. The drain claims pending rows in id order and marks them done, set-based.
- `EventProcessing`: exists only for a (event, processor) pair whose processor FAILED. The happy path
  writes nothing here, so a batch costs one UPDATE of bookkeeping whatever the number of processors;
  a failing processor is retried with backoff on its own events without re-running (or blocking) the
  processors that succeeded, and after its last try the row is a dead letter with the error.

The processors' own rows live in the app whose data they change (e.g. messaging/models/processing.py).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Func, Q

from .events import EventType


class EventState(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"  # every processor ran once; failures live on in EventProcessing


class Event(models.Model):
    type = models.CharField(max_length=32, choices=EventType.choices)
    # Not indexed: the drain reads events by id (event_pending), nothing in production looks them up by
    # message, and an index here cost one more entry per status change (docs/indexes.md).
    message_id = models.BigIntegerField(null=True, blank=True)
    payload = models.JSONField(default=dict, db_default={}, blank=True)
    # Events of one message are inserted in the order of its status history, so id order is history order.
    state = models.CharField(
        max_length=8, choices=EventState.choices, default=EventState.PENDING, db_default=EventState.PENDING
    )
    # clock_timestamp(), not now(): now() is the writer's transaction start, and a prepare chunk or a
    # webhook batch writes its events at the end of a transaction that may last a second; the lag
    # (processed_at - created_at) should measure the outbox, not the writer.
    created_at = models.DateTimeField(db_default=Func(function="clock_timestamp", output_field=models.DateTimeField()))
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # The drain's claim (ORDER BY id ... SKIP LOCKED) and the backlog/lag figures read only this.
            models.Index(fields=["id"], name="event_pending", condition=Q(state="pending")),
            # No (type, state) index: three events per message are written on the hottest paths, and the
            # outbox is pruned (events_prune), so the admin's filters scan a small table.
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk} ({self.state})"


class ProcessingState(models.TextChoices):
    RETRY = "retry", "Waiting for retry"
    DEAD = "dead", "Dead letter"


class EventProcessing(models.Model):
    """A processor that failed on an event. Deleted when a retry succeeds."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="failures")
    processor = models.CharField(max_length=64)
    state = models.CharField(max_length=8, choices=ProcessingState.choices, default=ProcessingState.RETRY)
    attempts = models.PositiveSmallIntegerField(default=1)
    available_at = models.DateTimeField(help_text="Not retried before this time.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "failed processing"
        constraints = [
            models.UniqueConstraint(fields=["event", "processor"], name="uniq_event_processor"),
        ]
        indexes = [
            models.Index(fields=["available_at", "id"], name="evproc_due", condition=Q(state="retry")),
            models.Index(fields=["processor", "state"], name="evproc_processor_state"),
        ]

    def __str__(self) -> str:
        return f"{self.processor} on event {self.event_id} ({self.state}, {self.attempts} tries)"
