"""Post-processing in the admin: the outbox with its backlog and lag and dead letters (re-runnable). See
docs/postprocessing.md. The number flags to review are in messaging's admin (reviewing one opts a
number out through messaging)."""

from __future__ import annotations

from django.contrib import admin, messages

from .models import Event, EventProcessing, ProcessingState
from .selectors import backlog_stats
from .services import dead_letters_requeue


class _BacklogHeader(admin.ModelAdmin):
    """Backlog size, lag and dead-letter count above the changelist."""

    change_list_template = "admin/postprocessing/change_list_backlog.html"

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "backlog": backlog_stats()}
        return super().changelist_view(request, extra_context=extra_context)


@admin.register(Event)
class EventAdmin(_BacklogHeader):
    list_display = ("id", "type", "message_id", "state", "created_at", "processed_at")
    list_filter = ("state", "type")
    search_fields = ("=id", "=message_id")
    readonly_fields = ("type", "message_id", "payload", "state", "created_at", "processed_at")
    show_full_result_count = False  # the outbox is big: no count(*) on every page
    list_per_page = 100

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(EventProcessing)
class EventProcessingAdmin(_BacklogHeader):
    list_display = ("id", "event_id", "event_type", "processor", "state", "attempts", "available_at", "short_error")
    list_filter = ("state", "processor")
    search_fields = ("=event__id", "processor", "error")
    readonly_fields = ("event", "processor", "state", "attempts", "available_at", "error", "created_at", "updated_at")
    list_select_related = ("event",)
    actions = ("rerun",)

    @admin.display(description="event type")
    def event_type(self, obj):
        return obj.event.type

    @admin.display(description="error")
    def short_error(self, obj):
        last = (obj.error or "").strip().splitlines()
        return last[-1][:160] if last else ""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Re-run selected dead letters now")
    def rerun(self, request, queryset):
        ids = list(queryset.filter(state=ProcessingState.DEAD).values_list("id", flat=True))
        count = dead_letters_requeue(processing_ids=ids) if ids else 0
        self.message_user(request, f"{count} dead letter(s) queued for a fresh retry.", messages.SUCCESS)
