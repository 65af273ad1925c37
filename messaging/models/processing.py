"""Messaging's post-processing bookkeeping: rows its processors (messaging/processors/) write.

- `BlastRecount`, `BlastProgress`: a blast to recount, a blast's last movement (messaging/processors/blast.py).
- `NumberFlag`: carrier results meaning "the subscriber is gone or opted out", kept for the
  organization's review (messaging/services/number_flags.py). Not an opt-out: see
  messaging/processors/optout.py for why.

They lived in the post-processing app, which is now a framework that names no message table; they
moved here with migrations that change Django's state only (messaging 0013, postprocessing 0008). The
tables keep their names (`Meta.db_table`): raw SQL names them (messaging/processors/, selectors.py,
bench/), and a rename would break the workers still running the previous release during a deploy.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class BlastRecount(models.Model):
    """A blast whose counters need a recount: marked (upsert) by the drain's batch, cleared by the
    recount step once it has recounted the blast under its row lock. See messaging/processors/blast.py."""

    # Not a foreign key: the mark must not touch the blast row's locks; marks of deleted blasts are dropped.
    blast_id = models.BigIntegerField(primary_key=True)
    marked_at = models.DateTimeField()

    class Meta:
        db_table = "postprocessing_blastrecount"

    def __str__(self) -> str:
        return f"recount blast {self.blast_id}"


class BlastProgress(models.Model):
    """When a blast last moved: one of its messages was created (queued), sent, delivered, failed or
    blocked. Upserted by the drain's batch (messaging/processors/blast.py, `blast_progress`); read by the stalled-
    blast check (messaging.selectors.blasts_stalled) for /metrics and the admin. Not a foreign key and not
    a column of the blast, for the same reason as BlastRecount: the batch never touches the blast row."""

    blast_id = models.BigIntegerField(primary_key=True)
    at = models.DateTimeField()

    class Meta:
        db_table = "postprocessing_blastprogress"

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
        db_table = "postprocessing_numberflag"
        ordering = ["-last_seen_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "phone_number"], name="uniq_numberflag_org_number")
        ]
        indexes = [models.Index(fields=["organization", "review"], name="numberflag_org_review")]

    def __str__(self) -> str:
        return f"{self.phone_number}: {self.get_kind_display()} ({self.review})"
