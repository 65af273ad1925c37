"""Admin for the messaging domain. Messages and contacts are big tables: foreign keys are raw ids,
searches are exact or prefix matches (index-friendly), and the changelist skips the full COUNT(*).
Statuses are read-only here: they change only through messages_apply_statuses (the admin action
below uses it too)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.utils import timezone

from .models import (
    Blast,
    BlastProgress,
    BlastRecipient,
    BlastRecount,
    BlastRollup,
    BlastStatus,
    Contact,
    Conversation,
    Line,
    Message,
    MessageInFlight,
    NumberFlag,
    OptOut,
)
from .selectors import STALLED_AFTER_SECONDS, blast_quiet_hours_deferrals, blasts_stalled, with_quiet_hours_deferrals
from .services.conversations import conversations_close
from .services.erasure import contact_archive, contact_erase
from .services.number_flags import numberflags_review
from .services.status import StatusUpdate, messages_apply_statuses
from .status import MessageStatus, sources_for


@admin.register(Line)
class LineAdmin(admin.ModelAdmin):
    list_display = ["phone_number", "name", "organization", "carrier_account", "is_active", "rate_per_second"]
    list_filter = ["is_active"]
    search_fields = ["^phone_number", "name", "organization__name"]
    autocomplete_fields = ["organization"]
    raw_id_fields = ["carrier_account"]
    list_select_related = ["organization", "carrier_account"]
    readonly_fields = ["created_at", "updated_at", "v1_id"]
    # Apps above messaging add their line actions by extending this class (backfill/admin.py).
    actions: list = []


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    """No delete: a contact is archived (history kept) or, for a privacy request, erased (its personal
    data redacted, counts and opt-out proof kept). See messaging/services/erasure.py."""

    list_display = [
        "phone_number",
        "sender_kind",
        "first_name",
        "last_name",
        "email",
        "organization",
        "archived_at",
        "created_at",
    ]
    list_filter = [
        "sender_kind",
        ("archived_at", admin.EmptyFieldListFilter),
        ("erased_at", admin.EmptyFieldListFilter),
    ]
    search_fields = ["^phone_number", "first_name", "last_name", "^email"]
    autocomplete_fields = ["organization"]
    list_select_related = ["organization"]
    readonly_fields = ["sender_kind", "created_at", "updated_at", "v1_id", "archived_at", "erased_at"]
    show_full_result_count = False
    actions = ["archive", "erase"]

    def has_delete_permission(self, request, obj=None):
        return False  # archive or erase instead: the contact's texting records stay

    @admin.action(description="Archive (hidden, never texted again, history kept)")
    def archive(self, request, queryset):
        for contact in queryset:
            contact_archive(contact=contact)
        self.message_user(request, f"{queryset.count()} contact(s) archived.")

    @admin.action(description="Erase personal data (privacy request; irreversible)")
    def erase(self, request, queryset):
        contacts = list(queryset)
        for contact in contacts:
            contact_erase(contact=contact)
        self.message_user(request, f"{len(contacts)} contact(s) erased: personal data redacted, counts kept.")


@admin.register(OptOut)
class OptOutAdmin(admin.ModelAdmin):
    list_display = ["phone_number", "organization", "source", "reason", "created_at"]
    list_filter = ["source"]
    search_fields = ["^phone_number"]
    autocomplete_fields = ["organization"]
    list_select_related = ["organization"]
    readonly_fields = ["created_at"]
    show_full_result_count = False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "contact", "line", "organization", "status", "assignee", "last_message_at"]
    list_filter = ["status"]
    search_fields = ["=id", "^contact__phone_number", "^line__phone_number"]
    raw_id_fields = ["line", "contact", "assignee"]
    autocomplete_fields = ["organization"]
    list_select_related = ["contact", "line", "organization", "assignee"]
    readonly_fields = ["last_message_at", "last_message_preview", "created_at", "v1_id"]
    show_full_result_count = False
    actions = ["close"]

    @admin.action(description="Close the selected conversations (ends their partner chats)")
    def close(self, request, queryset):
        closed = conversations_close(conversation_ids=list(queryset.values_list("id", flat=True)), organization_id=None)
        self.message_user(request, f"{len(closed)} conversation(s) closed.")


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "direction", "status", "short_body", "contact", "line", "blast", "created_at"]
    list_filter = ["direction", "status"]
    search_fields = ["=id", "=client_reference", "=carrier_batch_id", "^contact__phone_number"]
    raw_id_fields = ["organization", "line", "conversation", "contact", "blast", "sent_by"]
    list_select_related = ["contact", "line", "blast"]
    show_full_result_count = False
    actions = ["cancel"]

    def get_readonly_fields(self, request, obj=None):
        # A message is the pipeline's record of what happened: read-only (cancel is the one action).
        return [f.name for f in self.model._meta.fields if f.name != "id"]

    def has_add_permission(self, request):
        return False  # messages are sent through the API / send pipeline, not typed in here

    @admin.display(description="Body")
    def short_body(self, obj: Message) -> str:
        text = obj.body or obj.rendered_body
        return text if len(text) <= 60 else text[:59] + "…"

    @admin.action(description="Cancel (only messages not yet handed to the carrier)")
    def cancel(self, request, queryset):
        ids = list(queryset.filter(status__in=sources_for(MessageStatus.CANCELED)).values_list("pk", flat=True))
        changed = messages_apply_statuses(
            updates=[StatusUpdate(i, MessageStatus.CANCELED, error_reason="Canceled in admin") for i in ids]
        )
        self.message_user(request, f"{len(changed)} message(s) canceled.")


class StalledFilter(admin.SimpleListFilter):
    """Sending blasts that made no progress for a minute with work left on our side (selectors.blasts_stalled;
    the same check as /metrics' parley_blasts_stalled)."""

    title = "progress"
    parameter_name = "stalled"

    def lookups(self, request, model_admin):
        return [("yes", f"Stalled (no progress for {STALLED_AFTER_SECONDS} s)")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(pk__in=blasts_stalled())
        return queryset


@admin.register(Blast)
class BlastAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "organization",
        "line",
        "status",
        "stalled",
        "recipient_count",
        "sent_count",
        "delivered_count",
        "failed_count",
        "quiet_hours",
        "created_at",
        "send_at",
    ]
    list_filter = ["status", StalledFilter]
    search_fields = ["name", "=id", "organization__name"]
    autocomplete_fields = ["organization"]
    raw_id_fields = ["line", "created_by"]
    list_select_related = ["organization", "line"]

    def get_queryset(self, request):
        # Deferred-by-quiet-hours count and resume time ride on the rows too (two subqueries per row).
        queryset = with_quiet_hours_deferrals(super().get_queryset(request))
        match = getattr(request, "resolver_match", None)
        if match is not None and match.url_name == "messaging_blast_changelist":
            # One stalled check per list page (not per row), carried by the rows themselves.
            stalled = ExpressionWrapper(Q(pk__in=blasts_stalled()), output_field=BooleanField())
            queryset = queryset.annotate(is_stalled=stalled)
        return queryset

    @admin.display(boolean=True, description="stalled")
    def stalled(self, obj: Blast) -> bool | None:
        return getattr(obj, "is_stalled", None) if obj.status == BlastStatus.SENDING else None

    readonly_fields = [
        "status",
        "created_at",
        "launched_at",
        "completed_at",
        "canceled_at",
        "recipient_count",
        "opted_out_count",
        "sent_count",
        "delivered_count",
        "failed_count",
        "undelivered_count",
        "delivery_rate",
        "quiet_hours",
        "v1_id",
    ]
    # Once launched (scheduled, sending, completed, canceled) a blast is the record of what was sent:
    # its text, line, organization and send time are shown, not editable (as the API allows edits of drafts only).
    launched_readonly_fields = ["organization", "line", "name", "body", "send_at", "created_by"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.status != BlastStatus.DRAFT:
            fields += [f for f in self.launched_readonly_fields if f not in fields]
        return fields

    @admin.display(description="Deferred by quiet hours")
    def quiet_hours(self, obj: Blast) -> str:
        count, resume_at = blast_quiet_hours_deferrals(blast=obj)
        if not count:
            return "none"
        return f"{count} message(s), resuming {timezone.localtime(resume_at):%Y-%m-%d %H:%M %Z}"


@admin.register(BlastRecipient)
class BlastRecipientAdmin(admin.ModelAdmin):
    list_display = ["id", "blast", "contact"]
    search_fields = ["=blast__id", "^contact__phone_number"]
    raw_id_fields = ["blast", "contact"]
    list_select_related = ["blast", "contact"]
    show_full_result_count = False


class ReadOnlyAdmin(admin.ModelAdmin):
    """A page to look at rows that only the pipeline writes."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# The work queue (migration 0012's triggers keep it; docs/indexes.md): what is in flight and since when,
# for an operator asking "what is the pipeline holding". Read-only: only the triggers write it.
@admin.register(MessageInFlight)
class MessageInFlightAdmin(ReadOnlyAdmin):
    list_display = ("message_id", "line_id", "status", "send_at", "prepared_at", "sending_at")
    list_filter = ("status",)
    search_fields = ("=message_id", "=line_id")
    show_full_result_count = False


# The blast processor's bookkeeping (messaging/processors/blast.py): blasts waiting for a counter
# recount, and when each blast last moved (read by the stalled-blast check). Read-only: the drain writes them.
@admin.register(BlastRecount)
class BlastRecountAdmin(ReadOnlyAdmin):
    list_display = ("blast_id", "marked_at")
    search_fields = ("=blast_id",)


@admin.register(BlastProgress)
class BlastProgressAdmin(ReadOnlyAdmin):
    list_display = ("blast_id", "at")
    search_fields = ("=blast_id",)


# A blast's rollup (its report's figures), kept by the blast recount; rebuilt with recompute_derived.
@admin.register(BlastRollup)
class BlastRollupAdmin(ReadOnlyAdmin):
    list_display = ("blast_id", "status", "error_code", "slot", "count")
    search_fields = ("=blast_id",)


# The post-processing rows of carrier hints (messaging/processors/optout.py); reviewing one opts the
# number out through messaging's opt-out service, so the admin lives with messaging.
@admin.register(NumberFlag)
class NumberFlagAdmin(admin.ModelAdmin):
    list_display = ("phone_number", "organization", "kind", "carrier_status", "error_code", "review", "last_seen_at")
    list_filter = ("review", "kind")
    search_fields = ("phone_number",)
    raw_id_fields = ("organization", "contact", "reviewed_by")
    readonly_fields = (
        "organization",
        "phone_number",
        "contact",
        "kind",
        "carrier_status",
        "error_code",
        "error_reason",
        "message_id",
        "first_seen_at",
        "last_seen_at",
        "reviewed_at",
        "reviewed_by",
    )
    actions = ("opt_out", "dismiss")

    @admin.action(description="Opt out selected numbers (source: carrier report)")
    def opt_out(self, request, queryset):
        count = numberflags_review(
            flag_ids=list(queryset.values_list("id", flat=True)), opt_out=True, user=request.user
        )
        self.message_user(request, f"{count} number(s) opted out.", messages.SUCCESS)

    @admin.action(description="Dismiss selected flags")
    def dismiss(self, request, queryset):
        count = numberflags_review(
            flag_ids=list(queryset.values_list("id", flat=True)), opt_out=False, user=request.user
        )
        self.message_user(request, f"{count} flag(s) dismissed.", messages.SUCCESS)
