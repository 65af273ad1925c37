"""Messaging domain: lines, contacts, opt-outs, conversations, messages, blasts. Data and invariants only.

Every row carries its organization (denormalized where a hot path filters by it) so that tenant
scoping is one indexed predicate. Writes live in services/, reads in selectors.py. The rows messaging's
post-processing processors keep (blast recounts and progress, number flags) are in processing.py.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from organizations.models import Organization

from ..status import MessageStatus
from .processing import (  # noqa: F401 - re-exported: every messaging model is importable from messaging.models
    BlastProgress,
    BlastRecount,
    NumberFlag,
    NumberFlagKind,
    NumberFlagReview,
)

MAX_RATE_PER_SECOND = 1000


class Line(models.Model):
    """A phone number the organization sends from, through one carrier account."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="lines")
    phone_number = models.CharField(max_length=20, help_text="E.164")
    name = models.CharField(max_length=100, blank=True)
    carrier_account = models.ForeignKey(
        "carriers.CarrierAccount", on_delete=models.PROTECT, related_name="lines", null=True, blank=True
    )
    is_active = models.BooleanField(default=True, help_text="Archived lines keep their history.")
    # US carriers pace per number (10DLC long code ~1 segment/s, toll-free a few, short code 100+).
    # Bounded above too: no carrier takes more than a few hundred segments/s on one number, and a huge
    # value would disable pacing for the line (and float("1e308") made the rate limiter's arithmetic absurd).
    rate_per_second = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(0.01), MaxValueValidator(MAX_RATE_PER_SECOND)],
        help_text=f"Segments per second this number may send, 0.01..{MAX_RATE_PER_SECOND}.",
    )
    # NICE CXone: start polling for agent replies the moment a chat is created.
    nice_start_polling_on_chat_creation = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    v1_id = models.IntegerField(null=True, blank=True, unique=True, help_text="v1 LineId this came from.")

    class Meta:
        ordering = ["id"]
        constraints = [
            # A number is live on one carrier account's line at a time; archived lines may repeat it, and lines
            # without an account (which send nothing) do not reserve it (messaging/services/lines.py).
            models.UniqueConstraint(
                fields=["phone_number"],
                condition=Q(is_active=True, carrier_account__isnull=False),
                name="uniq_active_line_number",
            ),
        ]
        indexes = [models.Index(fields=["organization", "is_active"])]

    def __str__(self) -> str:
        return f"{self.name or 'Line'} {self.phone_number}"


class SenderKind(models.TextChoices):
    """What a contact's number is. Only phone numbers can be texted; the other two only ever text us
    (they arrive as the sender of an inbound message) and are kept as the carrier gave them."""

    PHONE = "phone", "Phone number (E.164)"
    SHORT_CODE = "short_code", "Short code"
    ALPHANUMERIC = "alphanumeric", "Alphanumeric sender id"


# Messages are compliance records (what was texted to whom, when, and what the carrier said). Nothing
# deletes them on the side: a contact is archived or erased (messaging/services/erasure.py), a line is
# archived, a blast with messages stays. So every foreign key that leads to messages (directly, or through
# a conversation) is RESTRICT: deleting the contact, line, conversation or blast raises RestrictedError
# unless the same operation deletes the whole organization (below). See docs/messaging.md.


class Contact(models.Model):
    # Deleting an organization (offboarding a tenant, superuser-only) takes all its data with it.
    # No index of its own: uniq_contact_org_number leads with it (docs/indexes.md).
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="contacts", db_index=False)
    phone_number = models.CharField(
        max_length=20, help_text="E.164; for a short code or alphanumeric sender, the sender as received."
    )
    # Never texted unless "phone" (sends refuse, blasts leave them out, keywords do not act on them).
    sender_kind = models.CharField(
        max_length=12, choices=SenderKind.choices, default=SenderKind.PHONE, db_default=SenderKind.PHONE
    )
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    email = models.EmailField(blank=True)
    custom_fields = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    v1_id = models.IntegerField(null=True, blank=True, unique=True, help_text="v1 ContactId this came from.")
    # DELETE archives: hidden from lists and audiences, never texted again, history kept.
    archived_at = models.DateTimeField(null=True, blank=True)
    # Erase (a privacy request) redacts the personal data of the contact and its messages; implies archived.
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["organization", "phone_number"], name="uniq_contact_org_number")]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return f"{name} {self.phone_number}".strip()


class OptOutSource(models.TextChoices):
    KEYWORD = "keyword", "Keyword (STOP)"
    API = "api", "API"
    ADMIN = "admin", "Admin"
    CARRIER = "carrier", "Carrier report"
    IMPORT = "import", "Import / migration"


class OptOut(models.Model):
    """The organization may not text this number. Deleted when the contact opts back in.

    An erased contact's opt-out stays as proof without the number: phone_number becomes a placeholder
    and phone_hash keeps a keyed hash of it (settings.CONTACT_ERASURE_HASH_KEY), so the number, if it
    comes back (a new contact, an import, an inbound text), is opted out again (erasure.py)."""

    # No index of its own: uniq_optout leads with it (docs/indexes.md).
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="opt_outs", db_index=False)
    phone_number = models.CharField(max_length=20, help_text="E.164")
    source = models.CharField(max_length=16, choices=OptOutSource.choices, default=OptOutSource.API)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # db_default: other writers (the v1 migration, inbound STOP) insert opt-outs with raw SQL / bulk_create.
    phone_hash = models.CharField(
        max_length=64, blank=True, default="", db_default="", help_text="Keyed hash (erased numbers)."
    )
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["organization", "phone_number"], name="uniq_optout")]
        indexes = [
            models.Index(fields=["organization", "phone_hash"], name="optout_erased_hash", condition=~Q(phone_hash=""))
        ]

    def __str__(self) -> str:
        return f"{self.phone_number} opted out ({self.source})"


class ConversationStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class Conversation(models.Model):
    # Index budget: a blast creates a conversation per new recipient. organization and line have no
    # index of their own (conv_org_* and the (line, contact) constraint lead with them).
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="conversations", db_index=False
    )
    # RESTRICT (see above): a conversation holds messages.
    line = models.ForeignKey(Line, on_delete=models.RESTRICT, related_name="conversations", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.RESTRICT, related_name="conversations")
    status = models.CharField(max_length=8, choices=ConversationStatus.choices, default=ConversationStatus.OPEN)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    # Derived (post-processing keeps them; recompute_derived rebuilds them). Never moved backwards.
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_message_preview = models.CharField(max_length=160, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    v1_id = models.IntegerField(null=True, blank=True, unique=True, help_text="v1 ConversationId this came from.")

    class Meta:
        ordering = ["-last_message_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["line", "contact"], name="uniq_conversation_line_contact")]
        indexes = [
            models.Index(fields=["organization", "-last_message_at", "-id"], name="conv_org_recent"),
            # The list filtered by open/closed, in its order: a page is one index range, not a sort of
            # every open conversation of the organization (bench_history: docs/performance.md).
            models.Index(fields=["organization", "status", "-last_message_at", "-id"], name="conv_org_status_recent"),
            models.Index(fields=["assignee"], name="conv_assignee", condition=Q(assignee__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"Conversation {self.pk}"


class Direction(models.TextChoices):
    INBOUND = "in", "Inbound"
    OUTBOUND = "out", "Outbound"


class BlastStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    SENDING = "sending", "Sending"
    COMPLETED = "completed", "Completed"
    CANCELED = "canceled", "Canceled"


class Blast(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="blasts")
    line = models.ForeignKey(Line, on_delete=models.PROTECT, related_name="blasts")
    name = models.CharField(max_length=200, blank=True)
    body = models.TextField(help_text="Template; {first_name}, {last_name} and custom fields are rendered.")
    status = models.CharField(max_length=12, choices=BlastStatus.choices, default=BlastStatus.DRAFT)
    send_at = models.DateTimeField(null=True, blank=True, help_text="When to send; empty means at launch.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    launched_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    # Recovery of lost prepare tasks (docs/recovery.md): set at launch, moved on by the sweeper while the
    # blast's message count grows, cleared once every recipient has its message. A sending blast whose
    # count has not moved for the chunk lease gets the chunks of its missing recipients enqueued again.
    prepare_kicked_at = models.DateTimeField(null=True, blank=True)
    prepare_seen = models.IntegerField(default=0)
    # Counters: derived from carrier reports by post-processing, not from queueing.
    recipient_count = models.IntegerField(default=0)
    opted_out_count = models.IntegerField(default=0)
    sent_count = models.IntegerField(default=0)
    delivered_count = models.IntegerField(default=0)
    failed_count = models.IntegerField(default=0)
    undelivered_count = models.IntegerField(default=0)
    delivery_rate = models.FloatField(null=True, blank=True)
    v1_id = models.IntegerField(null=True, blank=True, unique=True, help_text="v1 BlastId this came from.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "send_at"], name="blast_due")]

    def __str__(self) -> str:
        return self.name or f"Blast {self.pk}"


class BlastRollup(models.Model):
    """A blast's messages counted by status, carrier error code and 10-second slot of their final report:
    what its report reads instead of the messages (webapp/reports.py), so a cold report costs the same for
    100 recipients as for 100,000. Kept by the blast recount (messaging/processors/blast.py) in the same
    statement as the blast's counters, from the messages themselves: exact, never counted twice on a
    redelivered or retried event. Rebuilt for existing blasts by `manage.py recompute_derived --only blasts`.
    """

    # Slot width in seconds: every report bucket (webapp.reports.BUCKET_SECONDS) is a multiple of it.
    SLOT_SECONDS = 10

    blast = models.ForeignKey(Blast, on_delete=models.CASCADE, related_name="+", db_index=False)
    status = models.CharField(max_length=16)
    # failed, undelivered and blocked messages' error code ("" for the others)
    error_code = models.CharField(max_length=32, blank=True)
    # floor(epoch of delivered_at / failed_at ÷ SLOT_SECONDS) for delivered and failed or undelivered
    # messages that have that time; NULL for the others
    slot = models.BigIntegerField(null=True)
    count = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["blast", "status", "error_code", "slot"], name="uniq_blast_rollup", nulls_distinct=False
            )
        ]

    def __str__(self) -> str:
        return f"Blast {self.blast_id}: {self.count} {self.status} {self.error_code} {self.slot}"


class BlastRecipient(models.Model):
    """The audience of a blast, chosen before launch."""

    # A draft's audience goes with the draft; a contact's place in a blast is kept with the contact.
    # No index of its own: uniq_blast_recipient leads with it (docs/indexes.md).
    blast = models.ForeignKey(Blast, on_delete=models.CASCADE, related_name="recipients", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.RESTRICT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["blast", "contact"], name="uniq_blast_recipient")]

    def __str__(self) -> str:
        return f"Blast {self.blast_id} → contact {self.contact_id}"


class Message(models.Model):
    # Index budget (docs/indexes.md): no index reads `status` or a column a delivery report writes, and
    # the table keeps free room on its pages (fillfactor, migration 0012), so a report's status change
    # is a HOT update: the new row version goes on the same page and no index entry is written. The
    # work queues that used to be partial indexes on `status` are MessageInFlight, kept by triggers.
    # FK indexes that a composite index already leads with are switched off (db_index=False).
    #
    # Foreign keys, each on_delete chosen (see the note above Contact; tests/messaging/test_contact_records.py):
    # - organization CASCADE: deleting a whole tenant (offboarding, superuser-only) deletes its records;
    #   it is the one path that removes messages.
    # - line, conversation, contact RESTRICT: lines are archived, contacts archived or erased; deleting
    #   one of them on its own would silently drop what was texted.
    # - blast RESTRICT (was SET_NULL): a message losing its blast would make the blast's counts and link
    #   reports lie; a draft, which has no messages, can still be deleted.
    # - sent_by SET_NULL: removing a user account keeps what they sent, without the author.
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=False)
    # No index on line alone: nothing reads a line's whole history; the per-line work queues use
    # messaging_message_inflight (line, status, id). Deleting a line (lines are archived) pays a scan for RESTRICT.
    line = models.ForeignKey(Line, on_delete=models.RESTRICT, related_name="messages", db_index=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.RESTRICT, related_name="messages", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.RESTRICT, related_name="messages")
    blast = models.ForeignKey(
        Blast, null=True, blank=True, on_delete=models.RESTRICT, related_name="messages", db_index=False
    )
    direction = models.CharField(max_length=3, choices=Direction.choices)
    body = models.TextField(blank=True, help_text="As written (a blast template before rendering).")
    # THE text to show (docs/messaging.md): the text as the phone saw it, for every direction and origin.
    # Outbound: rendered per recipient, links shortened (the body until prepare has done that); inbound:
    # the text as received; migrated: v1's text. segments/encoding are counted on it.
    rendered_body = models.TextField(blank=True, help_text="The text as the phone saw it (what to show).")
    media = models.JSONField(default=list, blank=True, help_text="List of {url, content_type}.")
    status = models.CharField(max_length=12, choices=MessageStatus.choices, default=MessageStatus.QUEUED)
    segments = models.PositiveSmallIntegerField(default=0)
    encoding = models.CharField(max_length=8, blank=True)
    # Carrier identity: Sinch batch id + recipient MSISDN; our own reference travels as client_reference.
    carrier_batch_id = models.CharField(max_length=100, blank=True, default="")
    carrier_recipient = models.CharField(max_length=20, blank=True, default="")
    # NULL, not '': unique (see Meta), and messages without a reference must not collide on ''.
    client_reference = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    carrier_status = models.CharField(max_length=32, blank=True, help_text="Carrier's own word, e.g. Delivered.")
    error_code = models.CharField(max_length=32, blank=True)
    error_reason = models.CharField(max_length=500, blank=True)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False
    )
    send_at = models.DateTimeField(null=True, blank=True, help_text="Scheduled send time.")
    send_attempts = models.PositiveSmallIntegerField(default=0)
    # Send pipeline (docs/send-pipeline.md). send_batch_ref is the per-carrier-call reference
    # ("b:<uuid hex>") written by the claim before the carrier call and sent as Sinch's client_reference:
    # a delivery report that beats our own send call's return is matched by (send_batch_ref, recipient),
    # and send recovery asks the carrier for it. send_params: per-recipient Sinch parameter values of
    # a blast message (the template is derived from Blast.body); null → rendered_body is sent verbatim.
    send_batch_ref = models.CharField(max_length=64, blank=True, default="")
    send_params = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    prepared_at = models.DateTimeField(null=True, blank=True)
    sending_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    status_updated_at = models.DateTimeField(null=True, blank=True)
    # Unique among migrated messages only (msg_v1_id_uniq, partial): a full unique index held a NULL
    # entry for every message v2 itself created, written on each insert and each non-HOT update.
    v1_id = models.BigIntegerField(null=True, blank=True, help_text="v1 MessageId this came from.")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # A constraint rather than unique=True: no extra varchar_pattern_ops ("_like") index.
            models.UniqueConstraint(fields=["client_reference"], name="msg_client_reference_uniq"),
            # The v1 migration's idempotency key: ON CONFLICT (v1_id) WHERE v1_id IS NOT NULL.
            models.UniqueConstraint(fields=["v1_id"], name="msg_v1_id_uniq", condition=Q(v1_id__isnull=False)),
        ]
        indexes = [
            # Deleting a user sets sent_by NULL: a partial index over the few rows that have one.
            models.Index(fields=["sent_by"], name="msg_sent_by", condition=Q(sent_by__isnull=False)),
            models.Index(fields=["conversation", "-created_at", "-id"], name="msg_conversation_recent"),
            models.Index(
                fields=["carrier_batch_id", "carrier_recipient"],
                name="msg_carrier_ref",
                condition=~Q(carrier_batch_id=""),
            ),
            # A blast's messages (recount, cancel, stalled check, quiet-hours deferrals); status is read from
            # the rows, not the index, so a status change stays HOT.
            models.Index(fields=["blast"], name="msg_blast", condition=Q(blast__isnull=False)),
            models.Index(fields=["organization", "-created_at"], name="msg_org_recent"),
            # Send pipeline: report matching by batch reference, the release_due and recovery sweeps.
            models.Index(
                fields=["send_batch_ref", "carrier_recipient"],
                name="msg_send_batch_ref",
                condition=~Q(send_batch_ref=""),
            ),
        ]

    def __str__(self) -> str:
        return f"Message {self.pk} ({self.direction}, {self.status})"


# The statuses of a message still in the pipeline or awaiting its carrier's report: exactly the rows
# MessageInFlight holds.
IN_FLIGHT_STATUSES = (
    MessageStatus.QUEUED,
    MessageStatus.SCHEDULED,
    MessageStatus.PREPARED,
    MessageStatus.SENDING,
    MessageStatus.SENT,
)


class MessageInFlight(models.Model):
    """The work queue: one row per message in IN_FLIGHT_STATUSES, with the columns the sweeps and the
    backfill look it up by. Written only by the triggers of migration 0012 (every INSERT, UPDATE and
    DELETE statement on messaging_message, set-based over its transition table), never by our code, so
    no writer can forget it; read by the recovery sweeps, release_due, the backfill and the metrics.

    Why a table of its own (docs/indexes.md): as partial indexes on messaging_message keyed on status,
    these lookups made every status change rewrite the row's ~13 index entries. Here a delivery report
    deletes one narrow row (no index work) and the message's own update is HOT."""

    message_id = models.BigIntegerField(primary_key=True)
    line_id = models.BigIntegerField()
    status = models.CharField(max_length=12)
    send_at = models.DateTimeField(null=True)
    sending_at = models.DateTimeField(null=True)
    prepared_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "messaging_message_inflight"
        indexes = [
            # Per line (backfill keyset, reconcile/overdue line picks) and per status (metrics, queued sweep).
            models.Index(fields=["line_id", "status", "message_id"], name="inflight_line"),
            models.Index(fields=["status", "message_id"], name="inflight_status"),
            # The sweeps' leases: release_due, the send lease, the stale-prepared sweep.
            models.Index(fields=["send_at"], name="inflight_due", condition=Q(status="scheduled")),
            models.Index(fields=["sending_at"], name="inflight_lease", condition=Q(status="sending")),
            models.Index(fields=["prepared_at"], name="inflight_prepared", condition=Q(status="prepared")),
        ]

    def __str__(self) -> str:
        return f"Message {self.message_id} in flight ({self.status})"
