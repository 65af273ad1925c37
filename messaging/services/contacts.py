"""Contacts: single writes and the bulk import (up to IMPORT_MAX_ROWS rows per call, one INSERT).

The import validates every row in Python (phone normalization is the only costly part, and it is
cached), reports each bad row with the reason per field, and writes all good rows with one
`INSERT ... SELECT FROM unnest(...) ON CONFLICT` — no per-row ORM create (1.8k rows/s measured in
docs/performance.md against ~60k for an unnest statement).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction

from organizations.models import Organization

from ..models import Contact, OptOut
from ..phone import try_normalize
from ..signals import numbers_opted_out, send_on_commit
from .erasure import opt_outs_relink

# One request's worth. Measured (bench/bench_contact_import.py, median of 3): a 10k-row request takes ~1.2 s,
# of which ~0.5 s is validation (phone parsing) and ~0.35 s the one INSERT; larger files go in several requests.
IMPORT_MAX_ROWS = 10_000
KNOWN_FIELDS = ("phone_number", "first_name", "last_name", "email", "custom_fields")
NAME_MAX = 100
EMAIL_MAX = 254


class OnConflict:
    SKIP = "skip"  # keep the existing contact untouched
    UPDATE = "update"  # overwrite names/email, merge custom_fields

    choices = (SKIP, UPDATE)


@dataclass
class RowError:
    row: int  # 1-based position in the submitted rows (CSV: data row, header excluded)
    fields: dict[str, list[str]]


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)


class ContactExists(ValidationError):
    """The organization already has a contact with this number. A ValidationError (callers that only
    report it keep working); the API answers it with 409 and the existing contact's id."""

    def __init__(self, phone_number: str):
        super().__init__({"phone_number": [f"A contact with the number {phone_number} already exists."]})
        self.phone_number = phone_number


def _duplicate_error(phone_number: str) -> ValidationError:
    return ContactExists(phone_number)


def contact_create(
    *,
    organization: Organization,
    phone_number: str,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    custom_fields: dict | None = None,
) -> Contact:
    """phone_number must already be E.164 (serializers normalize; see messaging.phone).

    Adding again the number of a deleted (archived) contact brings that contact back with the new
    details and its history; an erased number comes back as a new contact, opted out if it was."""
    archived = Contact.objects.filter(
        organization=organization, phone_number=phone_number, archived_at__isnull=False
    ).first()
    if archived is not None:
        archived.first_name, archived.last_name, archived.email = first_name, last_name, email
        archived.custom_fields = custom_fields or {}
        archived.archived_at = None
        archived.save()
        return archived
    if Contact.objects.filter(organization=organization, phone_number=phone_number).exists():
        raise _duplicate_error(phone_number)
    try:
        with transaction.atomic():
            opt_outs_relink(organization_id=organization.pk, phone_numbers=[phone_number])
            return Contact.objects.create(
                organization=organization,
                phone_number=phone_number,
                first_name=first_name,
                last_name=last_name,
                email=email,
                custom_fields=custom_fields or {},
            )
    except IntegrityError:  # a concurrent create of the same number won the race
        raise _duplicate_error(phone_number) from None


def contact_update(*, contact: Contact, **changes) -> Contact:
    phone_number = changes.get("phone_number")
    if (
        phone_number
        and phone_number != contact.phone_number
        and Contact.objects.filter(organization_id=contact.organization_id, phone_number=phone_number).exists()
    ):
        raise _duplicate_error(phone_number)
    for name, value in changes.items():
        setattr(contact, name, value)
    try:
        with transaction.atomic():
            contact.save(update_fields=[*changes, "updated_at"])
    except IntegrityError:
        raise _duplicate_error(phone_number or contact.phone_number) from None
    return contact


def contact_rows_from_csv(text: str) -> list[dict]:
    """CSV with a header row. Known columns map to contact fields; any other column goes into
    custom_fields (an empty cell is left out)."""
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "phone_number" not in [f.strip() for f in reader.fieldnames]:
        raise ValidationError({"file": ["The CSV needs a header row with a phone_number column."]})
    rows = []
    for raw in reader:
        row: dict = {"custom_fields": {}}
        for key, value in raw.items():
            if key is None:  # more cells than header columns
                row["_extra_cells"] = value
                continue
            key = key.strip()
            value = (value or "").strip()
            if key in KNOWN_FIELDS and key != "custom_fields":
                row[key] = value
            elif value:
                row["custom_fields"][key] = value
        rows.append(row)
    return rows


def _clean_row(raw: object) -> tuple[dict | None, dict[str, list[str]]]:
    if not isinstance(raw, dict):
        return None, {"non_field_errors": ["Each row must be an object."]}
    errors: dict[str, list[str]] = {}
    phone_raw = raw.get("phone_number")
    phone = try_normalize(phone_raw) if isinstance(phone_raw, str | int) else None
    if phone is None:
        reason = "This field is required." if phone_raw in (None, "") else f"'{phone_raw}' is not a valid phone number."
        errors["phone_number"] = [reason]
    clean: dict = {"phone_number": phone}
    for name in ("first_name", "last_name"):
        value = raw.get(name) or ""
        if not isinstance(value, str):
            errors[name] = ["Must be a string."]
        elif len(value) > NAME_MAX:
            errors[name] = [f"Ensure this field has no more than {NAME_MAX} characters."]
        clean[name] = value if isinstance(value, str) else ""
    email = raw.get("email") or ""
    if email:
        try:
            if not isinstance(email, str) or len(email) > EMAIL_MAX:
                raise ValidationError("invalid")
            validate_email(email)
        except ValidationError:
            errors["email"] = ["Enter a valid email address."]
    clean["email"] = email if isinstance(email, str) else ""
    custom = raw.get("custom_fields") or {}
    if not isinstance(custom, dict):
        errors["custom_fields"] = ["Must be an object."]
        custom = {}
    # JSON rows: keys we do not know are custom fields too, as CSV columns are.
    extra = {k: v for k, v in raw.items() if k not in KNOWN_FIELDS and not str(k).startswith("_")}
    clean["custom_fields"] = {**extra, **custom}
    if "_extra_cells" in raw:
        errors["non_field_errors"] = ["More cells than header columns."]
    return clean, errors


def contacts_import(*, organization: Organization, rows: list, on_conflict: str = OnConflict.SKIP) -> ImportResult:
    """Validate all rows, insert the good ones in one statement. A number repeated inside the same
    import is reported on its later rows. Bad rows never stop good ones."""
    if len(rows) > IMPORT_MAX_ROWS:
        raise ValidationError({"contacts": [f"At most {IMPORT_MAX_ROWS} rows per import (got {len(rows)})."]})
    if on_conflict not in OnConflict.choices:
        raise ValidationError({"on_conflict": [f"Must be one of {', '.join(OnConflict.choices)}."]})
    result = ImportResult()
    good: list[dict] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(rows, start=1):
        clean, errors = _clean_row(raw)
        phone = clean["phone_number"] if clean else None
        if phone and phone in seen and "phone_number" not in errors:
            errors["phone_number"] = [f"Duplicate of row {seen[phone]} in this import."]
        if errors or clean is None or phone is None:
            result.errors.append(RowError(row=index, fields=errors))
            continue
        seen[phone] = index
        good.append(clean)
    if good:
        opt_outs_relink(organization_id=organization.pk, phone_numbers=[r["phone_number"] for r in good])
        created, updated = _insert_contacts(organization_id=organization.pk, rows=good, on_conflict=on_conflict)
        result.created, result.updated = created, updated
        result.skipped = len(good) - created - updated
    return result


_INSERT_SQL = """
INSERT INTO messaging_contact
    (organization_id, phone_number, first_name, last_name, email, custom_fields, created_at, updated_at)
SELECT %s, t.phone_number, t.first_name, t.last_name, t.email, t.custom_fields::jsonb, now(), now()
FROM unnest(%s::varchar[], %s::varchar[], %s::varchar[], %s::varchar[], %s::text[])
    AS t(phone_number, first_name, last_name, email, custom_fields)
ON CONFLICT (organization_id, phone_number) DO {action}
RETURNING (xmax = 0) AS inserted
"""
_UPDATE_ACTION = """UPDATE SET
    first_name = CASE WHEN EXCLUDED.first_name <> '' THEN EXCLUDED.first_name ELSE messaging_contact.first_name END,
    last_name = CASE WHEN EXCLUDED.last_name <> '' THEN EXCLUDED.last_name ELSE messaging_contact.last_name END,
    email = CASE WHEN EXCLUDED.email <> '' THEN EXCLUDED.email ELSE messaging_contact.email END,
    custom_fields = messaging_contact.custom_fields || EXCLUDED.custom_fields,
    updated_at = now()"""


def _insert_contacts(*, organization_id: int, rows: list[dict], on_conflict: str) -> tuple[int, int]:
    action = _UPDATE_ACTION if on_conflict == OnConflict.UPDATE else "NOTHING"
    params: list = [
        organization_id,
        [r["phone_number"] for r in rows],
        [r["first_name"] for r in rows],
        [r["last_name"] for r in rows],
        [r["email"] for r in rows],
        [json.dumps(r["custom_fields"]) for r in rows],
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_INSERT_SQL.format(action=action), params)
        flags = [inserted for (inserted,) in cursor.fetchall()]
    created = sum(1 for f in flags if f)
    return created, len(flags) - created


def opt_out_create(
    *, organization: Organization, phone_number: str, source: str = "api", reason: str = ""
) -> tuple[OptOut, bool]:
    """Idempotent: opting out a number that already is returns the existing row (created=False)."""
    with transaction.atomic():
        opt_out, created = OptOut.objects.get_or_create(
            organization=organization, phone_number=phone_number, defaults={"source": source, "reason": reason}
        )
        if created:
            send_on_commit(numbers_opted_out, organization_id=organization.pk, phone_numbers=[phone_number])
    return opt_out, created


def opt_out_delete(*, opt_out: OptOut) -> None:
    """The number may be texted again (the contact opted back in through another channel)."""
    opt_out.delete()
