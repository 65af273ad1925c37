"""Admin: migration runs (with their reports), quarantined rows, checkpoints. All read-only.

Quarantined rows were stored with secrets already removed (services.convert.scrub_config).
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from .models import MigrationCheckpoint, MigrationRun, QuarantinedRow
from .services.runs import runs_mark_abandoned


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def _pretty(value) -> str:
    return format_html("<pre style='white-space: pre-wrap'>{}</pre>", json.dumps(value, indent=2, default=str))


@admin.register(MigrationRun)
class MigrationRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "mode", "scope", "status", "started_at", "finished_at", "written", "quarantined")
    list_filter = ("mode", "status")
    readonly_fields = (
        "scope",
        "mode",
        "status",
        "started_at",
        "finished_at",
        "options",
        "error",
        "summary",
        "decisions",
        "report_json",
    )
    exclude = ("report",)

    def changelist_view(self, request, extra_context=None):
        # A run whose process died shows as failed here too, not only after the next run starts.
        runs_mark_abandoned()
        return super().changelist_view(request, extra_context)

    @admin.display(description="decisions (not a straight copy)")
    def decisions(self, obj):
        # Every v1 id is in the report below; here the count and the ids of each kind.
        decided = (obj.report or {}).get("decisions", {})
        return _pretty({key: f"{d['count']}: {d['ids']}" for key, d in decided.items()})

    @admin.display(description="rows written")
    def written(self, obj):
        return sum(t.get("written", 0) for t in (obj.report or {}).get("tables", {}).values())

    @admin.display(description="quarantined")
    def quarantined(self, obj):
        return sum((obj.report or {}).get("quarantined_by_reason", {}).values())

    @admin.display(description="per table")
    def summary(self, obj):
        tables = (obj.report or {}).get("tables", {})
        rows = [
            (name, t["read"], t["written"], t["merged"], t["quarantined"], t["skipped"]) for name, t in tables.items()
        ]
        return _pretty(
            {
                "table: read / written / merged / quarantined / skipped": [
                    f"{r[0]}: {r[1]} / {r[2]} / {r[3]} / {r[4]} / {r[5]}" for r in rows
                ]
            }
        )

    @admin.display(description="report")
    def report_json(self, obj):
        return _pretty(obj.report)


@admin.register(QuarantinedRow)
class QuarantinedRowAdmin(ReadOnlyAdmin):
    list_display = ("v1_table", "v1_id", "reason", "detail", "run", "created_at")
    list_filter = ("v1_table", "reason")
    search_fields = ("=v1_id",)
    readonly_fields = ("run", "v1_table", "v1_id", "reason", "detail", "created_at", "row_json")
    exclude = ("row",)

    @admin.display(description="v1 row (secrets removed)")
    def row_json(self, obj):
        return _pretty(obj.row)


@admin.register(MigrationCheckpoint)
class MigrationCheckpointAdmin(ReadOnlyAdmin):
    list_display = ("scope", "table", "last_v1_id", "updated_at")
    list_filter = ("scope",)
