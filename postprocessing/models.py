"""The post-processing outbox and its bookkeeping. See docs/postprocessing.md.

- `Event`: one row per fact (a status change, a click), written in the same transaction as the change
  that causes it. The drain claims pending rows in id order and marks them done, set-based.
- `EventProcessing`: exists only for a (event, processor) pair whose processor FAILED. The happy path
  writes nothing here, so a batch costs one UPDATE of bookkeeping whatever the number of processors;
  a failing processor is retried with backoff on its own events without re-running (or blocking) the
  processors that succeeded, and after its last try the row is a dead letter with the error.
- `NumberFlag`: carrier results meaning "the subscriber is gone or opted out", kept for the
  organization's review. Not an opt-out: see messaging/processors/optout.py for why.
"""

from __future__ import annotations

from django.conf import settings
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


class BlastRecount(models.Model):
    """A blast whose counters need a recount: marked (upsert) by the drain's batch, cleared by the
    recount step once it has recounted the blast under its row lock. See messaging/processors/blast.py."""

    # Not a foreign key: the mark must not touch the blast row's locks; marks of deleted blasts are dropped.
    blast_id = models.BigIntegerField(primary_key=True)
    marked_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"recount blast {self.blast_id}"


class BlastProgress(models.Model):
    """When a blast last moved: one of its messages was created (queued), sent, delivered, failed or
    blocked. Upserted by the drain's batch (messaging/processors/blast.py, `blast_progress`); read by the stalled-
    blast check (messaging.selectors.blasts_stalled) for /metrics and the admin. Not a foreign key and not
    a column of the blast, for the same reason as BlastRecount: the batch never touches the blast row."""

    blast_id = models.BigIntegerField(primary_key=True)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"blast {self.blast_id} progressed at {self.at}"


class NumberFlagKind(models.TextChoices):
    DELETED = "deleted", "Carrier reported Deleted (may mean opted out)"
    OPTED_OUT = "opted_out", "Carrier says the subscriber opted out"
    UNKNOWN_SUBSCRIBER = "unknown_subscriber", "Number unknown / not in service"


class NumberFlagReview(models.TextChoices):
    PENDING = "pending", "To review"
    OPTED_OUT = "opted_out", "Opted out"
    DISMISSED = "dismissed", "Dismissed"


class NumberFlag(models.Model):
    """One per (organization, number): the latest carrier hint that this number should not be texted."""

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="+")
    phone_number = models.CharField(max_length=20, help_text="E.164")
    contact = models.ForeignKey("messaging.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=20, choices=NumberFlagKind.choices)
    carrier_status = models.CharField(max_length=32, blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    error_reason = models.CharField(max_length=500, blank=True)
    # The message whose report raised (or last refreshed) the flag.
    message_id = models.BigIntegerField(null=True, blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    review = models.CharField(max_length=10, choices=NumberFlagReview.choices, default=NumberFlagReview.PENDING)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "phone_number"], name="uniq_numberflag_org_number")
        ]
        indexes = [models.Index(fields=["organization", "review"], name="numberflag_org_review")]

    def __str__(self) -> str:
        return f"{self.phone_number}: {self.get_kind_display()} ({self.review})"
