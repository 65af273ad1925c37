"""Admin: backfill runs (read-only record) and the "Backfill statuses from the carrier" action of the
Line admin. Backfill sits above messaging, so it extends messaging's LineAdmin and registers the
extended class in its place (the admin imports apps in INSTALLED_APPS order: messaging's first).
See docs/backfill.md."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from messaging.admin import LineAdmin as MessagingLineAdmin
from messaging.models import Line

from .models import BackfillRun, RunState
from .services import BackfillOptions, backfill_run_cancel, backfill_run_start


@admin.action(description="Backfill statuses from the carrier (messages stuck in sending/sent)")
def backfill_statuses(modeladmin, request, queryset):
    started, skipped = [], []
    for line in queryset.order_by("id"):
        if line.carrier_account_id is None:
            skipped.append(str(line))
            continue
        run = backfill_run_start(
            organization_id=line.organization_id,
            line_id=line.id,
            options=BackfillOptions(),
            created_by_id=request.user.pk,
        )
        started.append(run)
    if started:
        links = format_html_join(
            ", ",
            '<a href="{}">run {}</a>',
            ((reverse("admin:backfill_backfillrun_change", args=[r.id]), r.id) for r in started),
        )
        modeladmin.message_user(request, format_html("Backfill started: {}.", links), messages.SUCCESS)
    if skipped:
        modeladmin.message_user(request, f"No carrier account, not backfilled: {', '.join(skipped)}.", messages.WARNING)


admin.site.unregister(Line)


@admin.register(Line)
class LineAdmin(MessagingLineAdmin):
    actions = [*MessagingLineAdmin.actions, backfill_statuses]


@admin.register(BackfillRun)
class BackfillRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "organization",
        "line",
        "kind",
        "state",
        "progress_display",
        "summary",
        "started_at",
        "finished_at",
    ]
    list_filter = ["state", "kind"]
    list_select_related = ["organization", "line"]
    search_fields = ["=id", "=line__id", "line__phone_number"]
    actions = ["cancel_runs"]
    readonly_fields = [f.name for f in BackfillRun._meta.fields] + ["progress_display", "summary"]

    def has_add_permission(self, request):
        return False  # runs start from the Line admin action, the API or the command

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="progress")
    def progress_display(self, obj):
        if obj.total is None:
            return "—"
        return f"{obj.processed}/{obj.total} ({(obj.progress or 0) * 100:.0f} %)"

    @admin.display(description="summary")
    def summary(self, obj):
        c = obj.counts or {}
        updated = ", ".join(f"{k} {v}" for k, v in (c.get("updated") or {}).items()) or "0"
        dry = " (dry run)" if (obj.options or {}).get("dry_run") else ""
        return (
            f"checked {c.get('checked', 0)}; updated {updated}; unchanged {c.get('unchanged', 0)}; "
            f"not found {c.get('not_found', 0)}; errors {c.get('errors', 0)}{dry}"
        )

    @admin.action(description="Cancel selected runs")
    def cancel_runs(self, request, queryset):
        n = sum(
            backfill_run_cancel(run_id=run_id)
            for run_id in queryset.filter(state__in=[RunState.PENDING, RunState.RUNNING]).values_list("id", flat=True)
        )
        self.message_user(request, f"Canceled {n} run(s).")
