"""Reviewing number flags (carrier hints that a number should not be texted). See messaging/processors/optout.py.

The flags are rows of messaging's opt-out processor (`messaging.NumberFlag`); opting a number out is
the opt-out service, so the review lives beside it."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from ..models import NumberFlag, NumberFlagReview, OptOutSource
from .contacts import opt_out_create


def numberflags_review(*, flag_ids: Sequence[int], opt_out: bool, user=None) -> int:
    """Opt the flagged numbers out (messaging's own opt-out service, source "carrier") or dismiss the
    flags. A human decision, so a handful at a time from the admin: one opt-out call per number."""
    now = timezone.now()
    done = 0
    with transaction.atomic():
        flags = list(NumberFlag.objects.select_related("organization").filter(pk__in=flag_ids).order_by("pk"))
        for flag in flags:
            if opt_out:
                reason = f"Carrier report: {flag.get_kind_display()} ({flag.carrier_status or flag.error_code})"
                opt_out_create(
                    organization=flag.organization,
                    phone_number=flag.phone_number,
                    source=OptOutSource.CARRIER,
                    reason=reason[:200],
                )
            done += 1
        NumberFlag.objects.filter(pk__in=[f.pk for f in flags]).update(
            review=NumberFlagReview.OPTED_OUT if opt_out else NumberFlagReview.DISMISSED,
            reviewed_at=now,
            reviewed_by=user if getattr(user, "is_authenticated", False) else None,
        )
    return done
