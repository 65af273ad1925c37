"""Entry points of the send pipeline: conversation messages, blasts (launch, preview, cancel), auto-replies.

Each writes its rows in one transaction and enqueues after commit; preparation (queue `prepare`) and
the carrier call (queue `send`) happen in workers. See docs/send-pipeline.md.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from config.wakeup import wake_on_commit

from .. import ratelimit
from ..models import Blast, BlastStatus, Contact, Conversation, Direction, Line, Message, OptOut, SenderKind
from ..phone import normalize
from ..status import MessageStatus as S
from ..status import sources_for
from .conversations import conversations_get_or_create
from .erasure import opt_outs_relink
from .grouping import CHUNK_SIZE
from .status import StatusUpdate, events_record_for_new_messages, messages_apply_statuses

# A blast's first chunk on a paced line: this many carrier batches (ratelimit.batch_units: r × W), so the
# first call waits for r × W renders rather than 1,000 (on a 10/s line: 10 recipients, a few ms of
# prepare instead of ~0.2 s). One batch: the first chunk goes in one call and leaves no remainder to
# pace beside the next chunk's group (two groups of a line are kept a window apart at the carrier by
# ratelimit's call spacing). A line of ≥ 1,000/s gets a full chunk: its first call is a full batch anyway.
HEAD_BATCHES = 1
# Chunks of one blast in the prepare queue at once after its first: as many as the bench's prepare,send
# worker has children (4), so one blast alone still keeps every child busy (bench_send's single-line
# figure), while 50 blasts launched together each get their turn (bench_lines: docs/send-pipeline.md).
PREPARE_CHAINS = 4

MAX_BODY = 1600  # 10 GSM segments: Sinch concatenates at most ~10 parts reliably


class SendRefused(Exception):
    """A send the caller may not do, naming the input at fault. The API answers `http_status`."""

    http_status = 400
    code = "invalid"

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


class RecipientOptedOut(SendRefused):
    http_status = 409
    code = "opted_out"


class ContactDeleted(SendRefused):
    """The contact was deleted (archived) or erased: it is never texted again (docs/messaging.md)."""

    http_status = 409
    code = "contact_deleted"


class BlastStateConflict(SendRefused):
    http_status = 409
    code = "conflict"


def _check_body(body: str, send_at: datetime | None) -> None:
    if not body or not body.strip():
        raise ValidationError({"body": ["This field may not be blank."]})
    if len(body) > MAX_BODY:
        raise ValidationError({"body": [f"At most {MAX_BODY} characters (got {len(body)})."]})
    if send_at is not None and timezone.is_naive(send_at):
        raise ValidationError({"send_at": ["Give a time zone (ISO-8601 with offset or Z)."]})


def _enqueue_prepare(message_ids: list[int], *, check_opt_out: bool = True) -> None:
    from ..tasks import prepare_messages

    # Lost publish: the queued rows are re-kicked by the sweeper (carrier_send.QUEUED_STALE).
    wake_on_commit(prepare_messages, [message_ids, check_opt_out])


def _insert_queued(*, conversation: Conversation, body: str, send_at, sent_by, media) -> Message:
    message = Message.objects.create(
        organization_id=conversation.organization_id,
        line_id=conversation.line_id,
        conversation=conversation,
        contact_id=conversation.contact_id,
        direction=Direction.OUTBOUND,
        body=body,
        # The text as the phone will see it: the body until prepare shortens its links (docs/messaging.md).
        rendered_body=body,
        media=media or [],
        status=S.QUEUED,
        send_at=send_at,
        sent_by=sent_by if getattr(sent_by, "is_authenticated", False) else None,
        client_reference="m:" + uuid.uuid4().hex,
    )
    events_record_for_new_messages(message_ids=[message.id], status=S.QUEUED)
    _enqueue_prepare([message.id])
    return message


def message_send(
    *,
    organization,
    conversation_id: int,
    body: str,
    send_at: datetime | None = None,
    sent_by=None,
    media: list | None = None,
) -> Message:
    """A message in an existing conversation. Conversation.DoesNotExist for another tenant's id;
    RecipientOptedOut (409) when the contact's number has opted out."""
    _check_body(body, send_at)
    with transaction.atomic():
        conversation = (
            Conversation.objects.select_related("line", "contact")
            .annotate(
                opted_out=Exists(
                    OptOut.objects.filter(
                        organization_id=OuterRef("organization_id"), phone_number=OuterRef("contact__phone_number")
                    )
                )
            )
            .get(organization=organization, pk=conversation_id)
        )
        if not conversation.line.is_active:
            raise SendRefused("conversation", "The conversation's line is archived; it cannot send.")
        if conversation.contact.sender_kind != SenderKind.PHONE:
            raise SendRefused(
                "conversation",
                f"The contact {conversation.contact.phone_number} is a {conversation.contact.get_sender_kind_display()}"
                " sender, not a phone number: it cannot be texted.",
            )
        if conversation.line.carrier_account_id is None:
            raise SendRefused("conversation", "The conversation's line has no carrier account; it cannot send.")
        if conversation.contact.archived_at is not None:
            raise ContactDeleted("conversation", "The conversation's contact was deleted; it is not texted again.")
        if conversation.opted_out:
            raise RecipientOptedOut(
                "conversation", f"{conversation.contact.phone_number} has opted out of texts from this organization."
            )
        return _insert_queued(conversation=conversation, body=body, send_at=send_at, sent_by=sent_by, media=media)


def message_send_to_number(
    *,
    organization,
    line_id: int,
    to: str,
    body: str,
    send_at: datetime | None = None,
    sent_by=None,
    media: list | None = None,
) -> Message:
    """Start (or continue) a conversation by number: contact and conversation are got or created."""
    phone = normalize(to, field="to")
    _check_body(body, send_at)
    line = Line.objects.filter(organization=organization, pk=line_id, is_active=True).first()
    if line is None:
        raise ValidationError({"line": [f"No active line {line_id} in this organization."]})
    if line.carrier_account_id is None:
        # Accepting it would only end in failed/no_carrier: refuse now, naming the input.
        raise ValidationError({"line": [f"Line {line_id} has no carrier account; it cannot send."]})
    # An erased contact's opt-out is kept without the number: seeing the number again re-attaches it.
    opt_outs_relink(organization_id=organization.id, phone_numbers=[phone])
    if OptOut.objects.filter(organization=organization, phone_number=phone).exists():
        raise RecipientOptedOut("to", f"{phone} has opted out of texts from this organization.")
    if Contact.objects.filter(organization=organization, phone_number=phone, archived_at__isnull=False).exists():
        raise ContactDeleted(
            "to", f"The contact with the number {phone} was deleted; add it again to text it (POST /contacts)."
        )
    with transaction.atomic():
        contact, _ = Contact.objects.get_or_create(organization=organization, phone_number=phone)
        conv_id = conversations_get_or_create(
            organization_id=organization.id, line_id=line.id, contact_ids=[contact.id]
        )[contact.id]
        conversation = Conversation(id=conv_id, organization_id=organization.id, line_id=line.id, contact_id=contact.id)
        return _insert_queued(conversation=conversation, body=body, send_at=send_at, sent_by=sent_by, media=media)


def messages_enqueue(*, message_ids: list[int]) -> None:
    """For inbound auto-replies (STOP/START confirmations, HELP): outbound rows already inserted with
    status queued go through the same prepare → send pipeline, after the caller's commit. No opt-out
    exclusion: the STOP confirmation goes to a number that has just opted out."""
    ids = [int(i) for i in message_ids]
    if ids:
        _enqueue_prepare(ids, check_opt_out=False)


# ------------------------------------------------------------------------------------------------ blasts
def _chunk_ranges(blast_id: int, *, head: int = CHUNK_SIZE) -> list[tuple[int, int]]:
    """The audience in id ranges of CHUNK_SIZE recipients: one prepare task (and one carrier batch) each.
    head: the first range's size (smaller on a paced line, so its first batch is prepared at once)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM messaging_blastrecipient WHERE blast_id = %s ORDER BY id", [blast_id])
        ids = [r[0] for r in cursor.fetchall()]
    head = max(1, min(head, CHUNK_SIZE))
    bounds = [0, *range(head, len(ids), CHUNK_SIZE)] if ids else []
    return [(ids[a], ids[min(a + (head if a == 0 else CHUNK_SIZE), len(ids)) - 1]) for a in bounds]


def blast_chunk_plan(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], list[list[list[int]]]]:
    """The first range alone, then the rest as PREPARE_CHAINS chains (round-robin over the ranges), each
    link enqueued by the one before it when that one is prepared (tasks.prepare_blast_chunk's `then`).
    So the prepare queue holds the first chunk of every blast launched before any blast's second chunk,
    and at most PREPARE_CHAINS chunks of any one blast: blasts launched together are prepared side by
    side, not one after the other (docs/send-pipeline.md, "Many lines at once")."""
    first, rest = ranges[0], ranges[1:]
    chains = [[list(r) for r in rest[i::PREPARE_CHAINS]] for i in range(min(PREPARE_CHAINS, len(rest)))]
    return first, chains


def _enqueue_blast_chunks(blast_id: int) -> int:
    from ..tasks import prepare_blast_chunk

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT l.rate_per_second FROM messaging_blast b JOIN messaging_line l ON l.id = b.line_id WHERE b.id = %s",
            [blast_id],
        )
        (rate,) = cursor.fetchone()
    ranges = _chunk_ranges(blast_id, head=HEAD_BATCHES * ratelimit.batch_units(rate))
    if not ranges:
        return 0
    (lo, hi), chains = blast_chunk_plan(ranges)
    # A lost publish (or a lost link of a chain) loses nothing: the blast's prepare lease
    # (recovery.blasts_rekick_chunks) finds recipients without a message and enqueues their chunks again.
    wake_on_commit(prepare_blast_chunk, [blast_id, lo, hi, chains])
    return len(ranges)


def _blast_for_update(organization, blast_id: int) -> Blast:
    return (
        Blast.objects.select_for_update(of=("self",)).select_related("line").get(organization=organization, pk=blast_id)
    )


def blast_launch(*, organization, blast_id: int) -> Blast:
    """draft → sending (or scheduled, when its send_at is in the future; messaging.release_due starts it)."""
    now = timezone.now()
    with transaction.atomic():
        blast = _blast_for_update(organization, blast_id)
        if blast.status != BlastStatus.DRAFT:
            raise BlastStateConflict("status", f"The blast is {blast.status}; only a draft can be launched.")
        if not blast.line.is_active or blast.line.carrier_account_id is None:
            raise SendRefused("line", "The blast's line is archived or has no carrier account.")
        blast.recipient_count = blast.recipients.count()
        if blast.recipient_count == 0:
            raise SendRefused("recipients", "The blast has no recipients.")
        if blast.send_at and blast.send_at > now:
            blast.status = BlastStatus.SCHEDULED
        else:
            blast.status, blast.launched_at, blast.prepare_kicked_at = BlastStatus.SENDING, now, now
            _enqueue_blast_chunks(blast.id)
        blast.save(update_fields=["status", "launched_at", "recipient_count", "prepare_kicked_at"])
        return blast


def blasts_start_due(*, now: datetime | None = None) -> int:
    """Beat: scheduled blasts whose send time has come start sending (compare-and-set on the status)."""
    now = now or timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                """UPDATE messaging_blast SET status = %s, launched_at = %s, prepare_kicked_at = %s
                   WHERE status = %s AND send_at <= %s RETURNING id""",
                [BlastStatus.SENDING, now, now, BlastStatus.SCHEDULED, now],
            )
            started = [r[0] for r in cursor.fetchall()]
        for blast_id in started:
            _enqueue_blast_chunks(blast_id)
    return len(started)


def blast_cancel(*, organization, blast_id: int) -> Blast:
    """Stops what has not reached the carrier: queued/scheduled/prepared messages become canceled.

    The row lock waits for any prepare chunk in flight (they hold the blast FOR SHARE), so what such a
    chunk inserted is canceled here too, and later chunks see the status and prepare nothing."""
    now = timezone.now()
    with transaction.atomic():
        blast = _blast_for_update(organization, blast_id)
        if blast.status in (BlastStatus.COMPLETED, BlastStatus.CANCELED):
            raise BlastStateConflict("status", f"The blast is already {blast.status}.")
        blast.status, blast.canceled_at = BlastStatus.CANCELED, now
        blast.save(update_fields=["status", "canceled_at"])
        ids = list(
            Message.objects.filter(blast_id=blast.id, status__in=sources_for(S.CANCELED)).values_list("id", flat=True)
        )
        messages_apply_statuses(updates=[StatusUpdate(i, S.CANCELED, at=now) for i in ids])
        return blast
