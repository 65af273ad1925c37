"""Blast creation: a draft with its audience materialized as BlastRecipient rows.

Launching, previewing and canceling belong to the send pipeline (messaging.services.sending:
`blast_launch`). The audience is fixed here, at creation, with one INSERT ... SELECT over the
organization's contacts, so a foreign contact id can never enter a blast whatever the caller passed.
Opted-out contacts stay in the audience: the send pipeline blocks them at launch and counts them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import QuerySet

from organizations.models import Organization

from ..models import Blast, BlastRecipient, BlastStatus, Contact, Line, SenderKind
from ..phone import try_normalize


@dataclass(frozen=True)
class Audience:
    """Exactly one of: contact_ids, all_contacts=True, or a filter (custom_fields / created_since)."""

    contact_ids: list[int] | None = None
    all_contacts: bool = False
    custom_fields: dict = field(default_factory=dict)
    created_since: datetime | None = None

    @property
    def is_filter(self) -> bool:
        return bool(self.custom_fields) or self.created_since is not None


def audience_contacts(*, organization: Organization, audience: Audience) -> QuerySet[Contact]:
    # Never texted, so never in an audience: short codes and alphanumeric senders, and deleted (archived)
    # contacts.
    contacts = Contact.objects.filter(organization=organization, sender_kind=SenderKind.PHONE, archived_at__isnull=True)
    if audience.contact_ids is not None:
        return contacts.filter(id__in=audience.contact_ids)
    if audience.all_contacts:
        return contacts
    if audience.custom_fields:
        contacts = contacts.filter(custom_fields__contains=audience.custom_fields)
    if audience.created_since is not None:
        contacts = contacts.filter(created_at__gte=audience.created_since)
    return contacts


class BlastNotDraft(Exception):
    """Only a draft can be edited or deleted: once launched, its text, line and audience are what was
    (or is being) sent. The API answers 409 naming `status`."""

    def __init__(self, blast: Blast, action: str):
        super().__init__(f"The blast is {blast.status}; only a draft can be {action}.")
        self.status = blast.status


def _check_line(organization: Organization, line: Line) -> None:
    if line.organization_id != organization.pk:
        raise ValidationError({"line": ["Unknown line."]})
    if not line.is_active:
        raise ValidationError({"line": ["This line is archived."]})


def _check_audience(organization: Organization, audience: Audience) -> None:
    if audience.contact_ids is not None:
        missing = set(audience.contact_ids) - set(
            # a deleted (archived) contact is unknown here: never texted again
            Contact.objects.filter(
                organization=organization, id__in=audience.contact_ids, archived_at__isnull=True
            ).values_list("id", flat=True)
        )
        if missing:
            shown = ", ".join(str(i) for i in sorted(missing)[:20])
            raise ValidationError({"audience.contact_ids": [f"Unknown contact ids: {shown}."]})


def _recipients_set(*, blast: Blast, organization: Organization, audience: Audience) -> int:
    """Replace the blast's audience (one INSERT ... SELECT). An audience that matches nobody is refused
    here, at create or edit, rather than at launch: the caller's transaction rolls the blast back."""
    BlastRecipient.objects.filter(blast=blast).delete()
    sql, params = audience_contacts(organization=organization, audience=audience).values("id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO messaging_blastrecipient (blast_id, contact_id) SELECT %s, a.id FROM ({sql}) a "  # noqa: S608 — statuses via sql_literals, fragments and table names are module constants; values bound
            "ON CONFLICT DO NOTHING",
            [blast.pk, *params],
        )
        count = cursor.rowcount
    if count == 0:
        raise ValidationError({"audience": ["No contact of this organization matches this audience."]})
    return count


def blast_create(
    *,
    organization: Organization,
    line: Line,
    body: str,
    audience: Audience,
    name: str = "",
    send_at: datetime | None = None,
    created_by=None,
) -> Blast:
    _check_line(organization, line)
    _check_audience(organization, audience)
    with transaction.atomic():
        blast = Blast.objects.create(
            organization=organization,
            line=line,
            name=name,
            body=body,
            send_at=send_at,
            status=BlastStatus.DRAFT,
            created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
        )
        blast.recipient_count = _recipients_set(blast=blast, organization=organization, audience=audience)
        Blast.objects.filter(pk=blast.pk).update(recipient_count=blast.recipient_count)
    return blast


_EDITABLE = frozenset({"line", "name", "body", "send_at"})


def blast_update(*, organization: Organization, blast_id: int, audience: Audience | None = None, **changes) -> Blast:
    """Edit a draft: any of line, name, body, send_at, and the audience (chosen again, now). The row is
    locked, so a launch running at the same moment either sees the edit or makes it a 409."""
    unknown = set(changes) - _EDITABLE
    if unknown:
        raise TypeError(f"Not editable: {', '.join(sorted(unknown))}")
    if "line" in changes:
        _check_line(organization, changes["line"])
    if audience is not None:
        _check_audience(organization, audience)
    with transaction.atomic():
        blast = Blast.objects.select_for_update().get(organization=organization, pk=blast_id)
        if blast.status != BlastStatus.DRAFT:
            raise BlastNotDraft(blast, "edited")
        for name, value in changes.items():
            setattr(blast, name, value)
        fields = list(changes)
        if audience is not None:
            blast.recipient_count = _recipients_set(blast=blast, organization=organization, audience=audience)
            fields.append("recipient_count")
        if fields:
            blast.save(update_fields=fields)
    return blast


def blast_delete(*, organization: Organization, blast_id: int) -> None:
    """Delete a draft (its audience rows go with it). A launched blast is a record of what was sent:
    cancel it instead."""
    with transaction.atomic():
        blast = Blast.objects.select_for_update().get(organization=organization, pk=blast_id)
        if blast.status != BlastStatus.DRAFT:
            raise BlastNotDraft(blast, "deleted")
        blast.delete()


def audience_from_csv(*, organization: Organization, text: str) -> Audience:
    """The contacts a CSV names (a header row with a phone_number column; names, email and other columns as
    the contact import takes them): numbers not yet contacts are imported through the import's own service
    (existing contacts are left as they are), and the audience is those contacts. Any bad row refuses the
    whole CSV, naming its rows, and so does a number whose contact was deleted. Call it inside the
    transaction that creates or edits the blast, so that a refusal there also undoes the import."""
    from .contacts import contact_rows_from_csv, contacts_import

    try:
        rows = contact_rows_from_csv(text)
    except ValidationError as exc:
        raise ValidationError({"csv": exc.messages}) from None
    if not rows:
        raise ValidationError({"csv": ["The CSV has a header but no rows."]})
    with transaction.atomic():
        result = contacts_import(organization=organization, rows=rows)
        if result.errors:
            shown = [
                f"row {e.row}: " + "; ".join(f"{name}: {' '.join(why)}" for name, why in e.fields.items())
                for e in result.errors[:10]
            ]
            more = len(result.errors) - len(shown)
            raise ValidationError({"csv": shown + ([f"… and {more} more bad rows."] if more > 0 else [])})
        phones = {try_normalize(str(r.get("phone_number", ""))) for r in rows}
        found = dict(
            Contact.objects.filter(organization=organization, phone_number__in=phones).values_list(
                "phone_number", "archived_at"
            )
        )
        deleted = sorted(p for p, archived_at in found.items() if archived_at is not None)
        if deleted:
            raise ValidationError({"csv": [f"Deleted contacts are never texted again: {', '.join(deleted[:10])}."]})
    ids = list(
        Contact.objects.filter(organization=organization, phone_number__in=phones, archived_at__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)
    )
    return Audience(contact_ids=ids)
