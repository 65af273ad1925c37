"""Lines: which number an organization may make live, checked with the carrier (docs/security.md).

A number belongs to whoever's carrier account holds it. Before a line goes live with a number on a
carrier account, that account's carrier is asked (Sinch's Numbers API: is the number active in the
account's project, attached to its SMS service plan?). So an organization cannot claim — squat — a number
that another organization will need, and an error never says where else a number is used: it speaks only
of the caller's own carrier account and lines. A line without a carrier account sends nothing and does not
reserve its number (the uniqueness constraint covers lines with an account only).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError

from carriers.base import PermanentCarrierError, TransientCarrierError
from carriers.registry import adapter_for

from ..models import Line

HELD, NOT_HELD, OTHER_PLAN, UNVERIFIABLE = "held", "not_held", "other_plan", "unverifiable"


class LineNumberUnverifiable(Exception):
    """The carrier could not be asked now (timeout, 5xx, 429): try again later; nothing was changed."""


def line_number_check(*, organization_id: int, carrier_account, phone_number: str, line_id: int | None = None) -> None:
    """Raises ValidationError({"phone_number": [...]}) unless `carrier_account`'s carrier holds
    `phone_number` and no other live line has it; LineNumberUnverifiable when the carrier cannot answer."""
    adapter = adapter_for(carrier_account)
    try:
        held = adapter.active_number(phone_number)
    except TransientCarrierError as exc:
        raise LineNumberUnverifiable(str(exc)) from exc
    except PermanentCarrierError as exc:
        raise ValidationError(
            {
                "phone_number": [
                    f"Carrier account {carrier_account.name!r} could not look this number up ({exc.code or 'refused'}):"
                    " check its numbers API settings (project_id, key_id, key_secret)."
                ]
            }
        ) from exc
    if held is None:
        raise ValidationError(
            {"phone_number": [f"Carrier account {carrier_account.name!r} does not hold this number."]}
        )
    plan = getattr(adapter, "service_plan_id", "")
    if held.service_plan_id and plan and held.service_plan_id != plan:
        raise ValidationError(
            {
                "phone_number": [
                    f"This number is not attached to the SMS service plan of carrier account {carrier_account.name!r}."
                ]
            }
        )
    live = Line.objects.filter(phone_number=phone_number, is_active=True, carrier_account__isnull=False)
    if line_id is not None:
        live = live.exclude(pk=line_id)
    own = live.filter(organization_id=organization_id).values_list("pk", flat=True).first()
    if own is not None:
        raise ValidationError({"phone_number": [f"This number is already active on your line {own}."]})
    if live.exists():
        # Only the organization whose carrier account holds the number gets this far: telling it that a stale
        # line holds its number reveals nothing it does not own, and names no one.
        raise ValidationError({"phone_number": ["This number is still active on a line you cannot see: ask support."]})


# What a line's owner may set (the API's LineSerializer and the web app's line settings both write here).
LINE_FIELDS = frozenset(
    {"phone_number", "name", "carrier_account", "is_active", "rate_per_second", "nice_start_polling_on_chat_creation"}
)


def line_save(*, organization, line: Line | None = None, **fields) -> Line:
    """Creates a line (`line` None) or changes one of the organization's. The values come parsed (E.164
    number, rate within the model's bounds); when a number goes live on a carrier account — a new line, or
    its number, account or activation changed — the carrier is asked first (line_number_check: a
    ValidationError naming phone_number, or LineNumberUnverifiable). Refused: nothing is saved."""
    unknown = set(fields) - LINE_FIELDS
    if unknown:
        raise TypeError(f"not a line field: {', '.join(sorted(unknown))}")
    if line is not None and line.organization_id != organization.pk:
        raise Line.DoesNotExist
    account = fields.get("carrier_account", line.carrier_account if line is not None else None)
    if account is not None and account.organization_id != organization.pk:
        raise ValidationError({"carrier_account": ["Not one of your carrier accounts."]})
    phone = fields.get("phone_number", line.phone_number if line is not None else None)
    active = fields.get("is_active", line.is_active if line is not None else True)
    changed = line is None or (
        phone != line.phone_number or getattr(account, "pk", None) != line.carrier_account_id or not line.is_active
    )
    if phone and active and account is not None and changed:
        line_number_check(
            organization_id=organization.pk,
            carrier_account=account,
            phone_number=phone,
            line_id=line.pk if line is not None else None,
        )
    target = line if line is not None else Line(organization=organization)
    for name, value in fields.items():
        setattr(target, name, value)
    if line is None:
        target.save()
    else:
        target.save(update_fields=[*fields, "updated_at"])
    return target


@dataclass(frozen=True, slots=True)
class LineNumberVerdict:
    line_id: int
    organization_id: int
    phone_number: str
    verdict: str  # HELD, NOT_HELD, OTHER_PLAN or UNVERIFIABLE
    archived: bool = False


def lines_verify_numbers(*, archive: bool = False) -> list[LineNumberVerdict]:
    """Asks each live line's carrier whether its account holds the line's number — for lines that went live
    before the check above existed (`manage.py lines_check_numbers`). With `archive`, a line whose carrier
    says no (not held, or on another service plan) is archived, which frees the number for its holder; a line
    whose carrier cannot be asked now is left alone. One carrier call per line, sequentially."""
    verdicts: list[LineNumberVerdict] = []
    lines = Line.objects.filter(is_active=True, carrier_account__isnull=False).select_related("carrier_account")
    for line in lines.order_by("id").iterator(chunk_size=500):
        adapter = adapter_for(line.carrier_account)
        try:
            held = adapter.active_number(line.phone_number)
        except (TransientCarrierError, PermanentCarrierError):
            verdict = UNVERIFIABLE
        else:
            plan = getattr(adapter, "service_plan_id", "")
            if held is None:
                verdict = NOT_HELD
            elif held.service_plan_id and plan and held.service_plan_id != plan:
                verdict = OTHER_PLAN
            else:
                verdict = HELD
        archived = False
        if archive and verdict in (NOT_HELD, OTHER_PLAN):
            archived = Line.objects.filter(pk=line.pk, is_active=True).update(is_active=False) == 1
        verdicts.append(LineNumberVerdict(line.pk, line.organization_id, line.phone_number, verdict, archived))
    return verdicts
