"""Contacts leave without taking the records with them: archive (DELETE) and erase (privacy requests).

Texting records are compliance records, so a contact is never deleted (its foreign keys are RESTRICT,
see messaging/models/__init__.py):

- `contact_archive`: hidden from lists and audiences, never texted again (sends refused, blast messages
  blocked), history kept whole.
- `contact_erase`: archive, then redact the personal data — name, email, custom fields, the number, the
  text of its messages (body, rendered body, media), the carrier recipient, its conversations' previews;
  apps above messaging redact their own copies on the `contact_erased` signal (the shortener: the path
  and query of the contact's short links, which may carry merge fields). Kept: every row, status, time,
  segment count, blast and link counter, and the opt-out as proof: the opt-out row keeps a keyed hash of the number
  (settings.CONTACT_ERASURE_HASH_KEY) instead of the number, and `opt_outs_relink` puts the number back
  on it when the number shows up again (new contact, import, send by number, inbound text), so an
  erased STOP keeps working.

See docs/messaging.md.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ..models import Contact, Conversation, Message, NumberFlag, OptOut
from ..signals import contact_erased
from ..status import MessageStatus as S
from ..status import sources_for
from .prepare import ARCHIVED_CODE
from .status import StatusUpdate, messages_apply_statuses


def phone_hash(phone_number: str) -> str:
    """Keyed SHA-256 of an E.164 number: proof that a number opted out, without the number."""
    key = hashlib.sha256(b"messaging.erasure:" + settings.CONTACT_ERASURE_HASH_KEY.encode()).digest()
    return hmac.new(key, phone_number.encode(), hashlib.sha256).hexdigest()


def erased_placeholder(kind: str, pk: int) -> str:
    """What replaces an erased number: unique per row (the columns are unique per organization), ≤ 20."""
    return f"erased:{kind}{pk}"[:20]


def contact_archive(*, contact: Contact) -> Contact:
    """Idempotent. What has not reached the carrier yet is canceled: the contact is not texted again."""
    with transaction.atomic():
        if contact.archived_at is None:
            contact.archived_at = timezone.now()
            contact.save(update_fields=["archived_at", "updated_at"])
        _cancel_unsent(contact)
    return contact


def contact_erase(*, contact: Contact) -> Contact:
    """Archive and redact (see the module docstring). Idempotent: erasing twice changes nothing more."""
    now = timezone.now()
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        if contact.erased_at is not None:
            return contact
        _cancel_unsent(contact)
        number = contact.phone_number
        for opt_out in OptOut.objects.select_for_update().filter(
            organization_id=contact.organization_id, phone_number=number
        ):
            opt_out.phone_hash = phone_hash(number)
            opt_out.phone_number = erased_placeholder("o", opt_out.pk)
            opt_out.erased_at = now
            opt_out.save(update_fields=["phone_hash", "phone_number", "erased_at"])
        Message.objects.filter(contact=contact).update(body="", rendered_body="", media=[], carrier_recipient="")
        _redact_number_flags(contact.organization_id, number)
        _redact_raw_webhooks(contact.organization_id, number)
        Conversation.objects.filter(contact=contact).update(last_message_preview="")
        # Apps above messaging redact what they hold about the contact (the shortener: its links).
        contact_erased.send(sender=Contact, organization_id=contact.organization_id, contact_id=contact.pk)
        contact.first_name = contact.last_name = contact.email = ""
        contact.custom_fields = {}
        contact.phone_number = erased_placeholder("c", contact.pk)
        contact.archived_at = contact.archived_at or now
        contact.erased_at = now
        contact.save()
    return contact


def opt_outs_relink(*, organization_id: int, phone_numbers: list[str]) -> int:
    """Put the number back on an erased opt-out whose hash it matches (so it is refused again).
    One statement, an index probe per number; nothing to do in the common case of no erased opt-outs."""
    numbers = sorted({n for n in phone_numbers if n})
    if not numbers:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE messaging_optout o SET phone_number = t.number
            FROM unnest(%s::text[], %s::text[]) AS t(number, hash)
            WHERE o.organization_id = %s AND o.phone_hash = t.hash AND o.phone_hash <> ''
              AND o.phone_number LIKE 'erased:%%'
              AND NOT EXISTS (
                  SELECT 1 FROM messaging_optout x WHERE x.organization_id = o.organization_id
                  AND x.phone_number = t.number
              )
            """,
            [numbers, [phone_hash(n) for n in numbers], organization_id],
        )
        return cursor.rowcount


def _cancel_unsent(contact: Contact) -> None:
    ids = list(
        Message.objects.filter(contact=contact, direction="out", status__in=sources_for(S.CANCELED)).values_list(
            "id", flat=True
        )
    )
    if ids:
        messages_apply_statuses(
            updates=[
                StatusUpdate(i, S.CANCELED, error_code=ARCHIVED_CODE, error_reason="Contact deleted.") for i in ids
            ]
        )


def _redact_number_flags(organization_id: int, number: str) -> None:
    for flag in NumberFlag.objects.filter(organization_id=organization_id, phone_number=number):
        flag.phone_number = erased_placeholder("f", flag.pk)
        flag.save(update_fields=["phone_number"])


# Carrier callbacks are stored raw before processing (they hold the number, and an inbound text's
# body). Processed ones of the organization's accounts that mention the number are blanked; pending ones
# are left for the apply step. A scan of the organization's callbacks: erasures are rare and one-off.
_WEBHOOKS_SQL = """
UPDATE carriers_webhookevent w SET body = %s
FROM carriers_carrieraccount a
WHERE a.id = w.account_id AND a.organization_id = %s AND w.state <> %s
  AND position(convert_to(%s, 'UTF8') in w.body) > 0
"""


def _redact_raw_webhooks(organization_id: int, number: str) -> None:
    from carriers.models import WebhookState

    msisdn = number.lstrip("+")  # Sinch writes numbers without the plus; it matches both spellings
    if len(msisdn) < 8:
        return
    with connection.cursor() as cursor:
        cursor.execute(_WEBHOOKS_SQL, [b'{"erased": true}', organization_id, WebhookState.PENDING, msisdn])
