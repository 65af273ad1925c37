"""Options of a status backfill run: validated once, stored as JSON on the run (docs/backfill.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.utils.dateparse import parse_datetime

from messaging.status import AWAITING_CARRIER, MessageStatus

# Statuses a backfill may look at: those a carrier report can still move.
CHECKABLE = frozenset({MessageStatus.SENDING, MessageStatus.SENT, MessageStatus.UNKNOWN})


@dataclass(frozen=True)
class BackfillOptions:
    since: datetime | None = None
    until: datetime | None = None
    statuses: tuple[str, ...] = tuple(sorted(AWAITING_CARRIER))
    limit: int | None = None
    dry_run: bool = False
    rate: float | None = None  # None: the carrier account's backfill_rate
    # Not found at the carrier and older than this → "unknown" (the carrier's retention has passed).
    mark_unknown_after: timedelta | None = None
    start_after_id: int = 0  # the reconciler resumes a line where its previous pass stopped
    handed_before: datetime | None = None  # the reconciler: last handed to the carrier before this
    handed_after: datetime | None = None  # the overdue-report pass: ... and at or after this

    def validate(self) -> BackfillOptions:
        errors: dict[str, list[str]] = {}
        bad = sorted(set(self.statuses) - CHECKABLE)
        if not self.statuses or bad:
            errors["status"] = [
                f"{', '.join(bad) or 'empty'}: not a status the carrier can still change "
                f"(use {', '.join(sorted(CHECKABLE))})."
            ]
        if self.limit is not None and self.limit < 1:
            errors["limit"] = ["Must be at least 1."]
        if self.rate is not None and not (0 < self.rate <= 1000):
            errors["rate"] = ["Must be between 0 and 1000 requests per second."]
        if self.since and self.until and self.since >= self.until:
            errors["until"] = ["Must be after since."]
        if errors:
            raise ValidationError(errors)
        return self

    def to_json(self) -> dict:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "statuses": list(self.statuses),
            "limit": self.limit,
            "dry_run": self.dry_run,
            "rate": self.rate,
            "mark_unknown_after": self.mark_unknown_after.total_seconds() if self.mark_unknown_after else None,
            "start_after_id": self.start_after_id,
            "handed_before": self.handed_before.isoformat() if self.handed_before else None,
            "handed_after": self.handed_after.isoformat() if self.handed_after else None,
        }

    @classmethod
    def from_json(cls, data: dict) -> BackfillOptions:
        def dt(value):
            return parse_datetime(value) if value else None

        return cls(
            since=dt(data.get("since")),
            until=dt(data.get("until")),
            statuses=tuple(data.get("statuses") or sorted(AWAITING_CARRIER)),
            limit=data.get("limit"),
            dry_run=bool(data.get("dry_run")),
            rate=data.get("rate"),
            mark_unknown_after=(
                timedelta(seconds=data["mark_unknown_after"]) if data.get("mark_unknown_after") else None
            ),
            start_after_id=int(data.get("start_after_id") or 0),
            handed_before=dt(data.get("handed_before")),
            handed_after=dt(data.get("handed_after")),
        )
