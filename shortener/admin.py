from django.contrib import admin

from messaging.admin import ReadOnlyAdmin

from .models import AllowedTargetHost, BlastClicker, BlastLinkRollup, Click, ClickRollup, Link


@admin.register(Link)
class LinkAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "organization",
        "short_target",
        "blast_id",
        "message_id",
        "click_count",
        "unique_click_count",
        "bot_click_count",
        "created_at",
        "expires_at",
    ]
    search_fields = ["=code", "target_url"]
    list_filter = ["created_at", "expires_at"]
    list_select_related = ["organization"]
    raw_id_fields = ["organization", "message", "contact", "blast", "created_by"]
    readonly_fields = ["code", "click_count", "unique_click_count", "bot_click_count", "last_clicked_at", "created_at"]
    # Per-recipient links make this table big: no COUNT(*) of the whole table on every page.
    show_full_result_count = False

    @admin.display(description="target")
    def short_target(self, link):
        return link.target_url if len(link.target_url) <= 80 else link.target_url[:77] + "..."


@admin.register(Click)
class ClickAdmin(admin.ModelAdmin):
    list_display = ["clicked_at", "link", "method", "is_bot", "bot_reason", "is_unique", "ip_prefix", "user_agent"]
    search_fields = ["=link__code", "user_agent", "bot_reason"]
    list_filter = ["is_bot", "is_unique", "method"]
    list_select_related = ["link"]
    raw_id_fields = ["link"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AllowedTargetHost)
class AllowedTargetHostAdmin(admin.ModelAdmin):
    """Per organization, hosts short links may target although refused by default (docs/security.md)."""

    list_display = ["host", "organization", "note", "created_at"]
    search_fields = ["host"]
    list_select_related = ["organization"]
    raw_id_fields = ["organization"]


# The click rollups the reports read; rebuilt with `manage.py recompute_click_rollups`.
@admin.register(ClickRollup)
class ClickRollupAdmin(ReadOnlyAdmin):
    list_display = ["organization_id", "blast_id", "slot", "clicks", "bot_clicks"]
    search_fields = ["=blast_id", "=organization_id"]
    show_full_result_count = False


@admin.register(BlastLinkRollup)
class BlastLinkRollupAdmin(ReadOnlyAdmin):
    list_display = ["blast_id", "target_url", "links", "clicks", "unique_clicks", "bot_clicks"]
    search_fields = ["=blast_id"]


@admin.register(BlastClicker)
class BlastClickerAdmin(ReadOnlyAdmin):
    list_display = ["blast_id", "contact_id"]
    search_fields = ["=blast_id"]
    show_full_result_count = False
