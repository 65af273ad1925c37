"""Status backfill runs: one row per manual run, API/admin request or reconciler pass. See docs/backfill.md.

The row is the run's record (options, counts, progress, error) and also its claim: a Celery task
claims a run with a compare-and-set on `state`/`heartbeat_at`, and resumes from `cursor` after an
interruption, so a redelivered task never runs the same backfill twice at once.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from organizations.models import Organization


class RunState(models.TextChoices):
    PENDING = "pending", "Pending"  # created, waiting for a worker (or the next time slice)
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


class RunKind(models.TextChoices):
    MANUAL = "manual", "Manual (command, admin, API)"
    RECONCILE = "reconcile", "Periodic reconciler"
    OVERDUE = "overdue", "Overdue delivery reports"


FINAL_RUN_STATES = frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELED})


def empty_counts() -> dict:
    # checked = sum(updated.values()) + unchanged + not_found + errors (each message lands in one bucket).
    return {"checked": 0, "updated": {}, "unchanged": 0, "not_found": 0, "errors": 0}


class BackfillRun(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    # Empty for an --all-lines run over the organization.
    line = models.ForeignKey("messaging.Line", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=RunKind.choices, default=RunKind.MANUAL)
    # since/until (ISO), statuses, limit, dry_run, rate, mark_unknown_after (seconds): JSON-safe only.
    options = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=10, choices=RunState.choices, default=RunState.PENDING)
    counts = models.JSONField(default=empty_counts, blank=True)
    # Messages matched when the run started (an estimate: webhooks keep finishing messages meanwhile).
    total = models.IntegerField(null=True, blank=True)
    processed = models.IntegerField(default=0)
    # Where to resume: {"line_id": .., "after_id": ..}; every message of that line with id <= after_id
    # (and every earlier line) has been checked and applied.
    cursor = models.JSONField(default=dict, blank=True)
    # Short samples of per-message errors ({message_id, error}); the carrier's words, never secrets.
    error_samples = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Written with every progress flush; a RUNNING run whose heartbeat is stale lost its worker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["organization", "-id"], name="backfill_run_org_recent"),
            # The reconciler: a line's latest pass (turn order, where to resume) and pruning.
            models.Index(fields=["line", "kind", "-id"], name="backfill_run_line_kind"),
        ]

    def __str__(self) -> str:
        target = f"line {self.line_id}" if self.line_id else f"organization {self.organization_id}"
        return f"Backfill run {self.pk} ({target}, {self.state})"

    @property
    def progress(self) -> float | None:
        if not self.total:
            return 1.0 if self.state == RunState.SUCCEEDED else None
        return min(1.0, self.processed / self.total)
