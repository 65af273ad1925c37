"""Inbound (MO) messages from carrier webhooks: contacts, conversations, messages, opt-out keywords.

Called by the webhook apply (messaging/services/reports.py, task "carriers.apply_webhooks") with a whole batch of
stored inbound webhooks, inside its transaction; set-based so a burst of replies to a blast costs a
handful of statements, not a handful per message. See docs/carriers.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from carriers.base import InboundMessage
from organizations.models import Organization

from .. import segments
from ..models import (
    Contact,
    Conversation,
    ConversationStatus,
    Direction,
    Line,
    Message,
    OptOut,
    OptOutSource,
    SenderKind,
)
from ..phone import classify_sender
from ..signals import numbers_opted_out, send_on_commit
from ..status import MessageStatus
from .erasure import opt_outs_relink
from .sending import messages_enqueue
from .status import events_record_for_new_messages

# CTIA / carrier keywords: the whole message, trimmed, case-insensitive.
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP"})


@dataclass(frozen=True, slots=True)
class InboundItem:
    key: int  # the caller's id for this item (the WebhookEvent pk)
    account_id: int  # carrier account whose webhook URL received it
    message: InboundMessage


def keyword_of(body: str) -> str:
    """ "stop", " Stop \n" → "STOP"; anything else (e.g. "stop it") → ""."""
    word = body.strip().upper()
    return word if word in STOP_WORDS or word in START_WORDS or word in HELP_WORDS else ""


def inbound_messages_receive(*, items: list[InboundItem]) -> dict[int, str]:
    """Store inbound messages as received and act on keywords. Returns {key: error} ("" = stored).

    Duplicates (same carrier message id on the same line) are stored once. A message to a number
    that is not one of the account's active lines is not stored as a message: its key gets an error.
    """
    if not items:
        return {}
    errors: dict[int, str] = {}
    now = timezone.now()

    # 1. Lines: the `to` must be an active line of the receiving carrier account.
    line_rows = Line.objects.filter(is_active=True, phone_number__in={i.message.to_number for i in items}).values_list(
        "id", "organization_id", "phone_number", "carrier_account_id"
    )
    lines = {(account_id, number): (line_id, org_id) for line_id, org_id, number, account_id in line_rows}

    # 2. Already stored (a carrier retry of the same MO): skip.
    seen = set(
        Message.objects.filter(
            direction=Direction.INBOUND, carrier_batch_id__in=[i.message.carrier_id for i in items]
        ).values_list("line_id", "carrier_batch_id")
    )
    accepted: list[tuple[InboundItem, int, int, str]] = []  # item, line id, org id, contact number
    kinds: dict[str, str] = {}  # contact number → SenderKind (a short code or alphanumeric sender is flagged)
    for item in items:
        msg = item.message
        line = lines.get((item.account_id, msg.to_number))
        if line is None:
            errors[item.key] = f"to {msg.to_number} is not an active line of this carrier account"
            continue
        if (line[0], msg.carrier_id) in seen:
            errors[item.key] = ""
            continue
        seen.add((line[0], msg.carrier_id))
        kind, number = classify_sender(msg.from_number)
        kinds[number] = kind
        accepted.append((item, line[0], line[1], number))
    if not accepted:
        return errors

    # 3. Contacts and conversations: find or create, one statement each (ON CONFLICT returns existing ids too).
    contact_keys = sorted({(org_id, number) for _, _, org_id, number in accepted})
    # An erased contact's opt-out comes back with its number (one statement per organization, an index
    # probe on the erased opt-outs only).
    for org_id in sorted({org for org, _ in contact_keys}):
        opt_outs_relink(organization_id=org_id, phone_numbers=[n for o, n in contact_keys if o == org_id])
    contacts = Contact.objects.bulk_create(
        [
            Contact(organization_id=org_id, phone_number=number, sender_kind=kinds[number])
            for org_id, number in contact_keys
        ],
        update_conflicts=True,
        unique_fields=["organization", "phone_number"],
        update_fields=["phone_number"],
    )
    contact_ids = {(c.organization_id, c.phone_number): c.pk for c in contacts}
    conv_keys = sorted({(line_id, org_id, contact_ids[(org_id, number)]) for _, line_id, org_id, number in accepted})
    # An inbound message reopens a closed conversation.
    conversations = Conversation.objects.bulk_create(
        [
            Conversation(organization_id=org_id, line_id=line_id, contact_id=contact_id, status=ConversationStatus.OPEN)
            for line_id, org_id, contact_id in conv_keys
        ],
        update_conflicts=True,
        unique_fields=["line", "contact"],
        update_fields=["status"],
    )
    conv_ids = {(c.line_id, c.contact_id): c.pk for c in conversations}

    # 4. The messages, as received, and their outbox events in the same transaction.
    rows = []
    for item, line_id, org_id, number in accepted:
        contact_id = contact_ids[(org_id, number)]
        msg = item.message
        # rendered_body is the one field holding the text as the phone saw it, for every message
        # (docs/messaging.md); for an inbound text that is the text as received.
        info = segments.count(msg.body)
        rows.append(
            Message(
                organization_id=org_id,
                line_id=line_id,
                conversation_id=conv_ids[(line_id, contact_id)],
                contact_id=contact_id,
                direction=Direction.INBOUND,
                body=msg.body,
                rendered_body=msg.body,
                segments=info.segments,
                encoding=info.encoding,
                media=msg.media,
                status=MessageStatus.RECEIVED,
                carrier_batch_id=msg.carrier_id,
                carrier_recipient=number,
                received_at=msg.received_at or now,
                status_updated_at=now,
            )
        )
        errors[item.key] = ""
    stored = Message.objects.bulk_create(rows)
    events_record_for_new_messages(message_ids=[m.pk for m in stored], status=MessageStatus.RECEIVED)

    # 5. Keywords, in arrival order (STOP then START in one burst ends opted in). Not from a short code or
    # an alphanumeric sender: we never text them, so there is nothing to opt out of or reply to.
    _apply_keywords([m for m in stored if kinds[m.carrier_recipient] == SenderKind.PHONE])
    return errors


def _apply_keywords(messages: list[Message]) -> None:
    actions = [(m, keyword_of(m.body)) for m in messages]
    actions = [(m, word) for m, word in actions if word]
    if not actions:
        return
    final: dict[tuple[int, str], str] = {}
    for m, word in actions:
        if word in STOP_WORDS:
            final[(m.organization_id, m.carrier_recipient)] = word
        elif word in START_WORDS:
            final[(m.organization_id, m.carrier_recipient)] = ""
    opt_outs = [
        OptOut(organization_id=org_id, phone_number=number, source=OptOutSource.KEYWORD, reason=f"Replied {word}")
        for (org_id, number), word in final.items()
        if word
    ]
    if opt_outs:
        OptOut.objects.bulk_create(opt_outs, ignore_conflicts=True)
        for org_id in {o.organization_id for o in opt_outs}:
            numbers = [o.phone_number for o in opt_outs if o.organization_id == org_id]
            send_on_commit(numbers_opted_out, organization_id=org_id, phone_numbers=numbers)
    opt_ins = [(org_id, number) for (org_id, number), word in final.items() if not word]
    for org_id in {org for org, _ in opt_ins}:
        OptOut.objects.filter(organization_id=org_id, phone_number__in=[n for o, n in opt_ins if o == org_id]).delete()

    texts = {
        org.pk: org
        for org in Organization.objects.filter(pk__in={m.organization_id for m, _ in actions}).only(
            "id", "opt_out_reply", "opt_in_reply", "help_text"
        )
    }
    replies = []
    for m, word in actions:
        org = texts[m.organization_id]
        body = org.opt_out_reply if word in STOP_WORDS else org.opt_in_reply if word in START_WORDS else org.help_text
        if not body:
            continue
        replies.append(
            Message(
                organization_id=m.organization_id,
                line_id=m.line_id,
                conversation_id=m.conversation_id,
                contact_id=m.contact_id,
                direction=Direction.OUTBOUND,
                body=body,
                rendered_body=body,  # until prepare sets the final text (links shortened)
                status=MessageStatus.QUEUED,
                carrier_recipient=m.carrier_recipient,
            )
        )
    if not replies:
        return
    reply_ids = [r.pk for r in Message.objects.bulk_create(replies)]
    events_record_for_new_messages(message_ids=reply_ids, status=MessageStatus.QUEUED)
    messages_enqueue(message_ids=reply_ids)  # published after commit (config.wakeup.wake_on_commit)
