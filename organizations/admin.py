"""Admin for tenants, memberships and API keys. A key is shown by its prefix only; revoking is an action."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html

from .models import ApiKey, Membership, Organization
from .services import api_key_create, api_keys_revoke


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "time_zone",
        "quiet_hours_enabled",
        "quiet_hours_start",
        "quiet_hours_end",
        "is_active",
        "created_at",
    ]
    list_filter = ["is_active", "time_zone"]
    search_fields = ["name", "=id", "=v1_id"]
    readonly_fields = ["created_at", "v1_id"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "user__email", "organization__name"]
    raw_id_fields = ["user"]
    autocomplete_fields = ["organization"]
    list_select_related = ["user", "organization"]
    readonly_fields = ["created_at", "v1_id"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are created here (the key is shown once, in the confirmation message) or through the API,
    and revoked with the action. The key itself is never stored, so it cannot be shown again."""

    list_display = ["name", "organization", "prefix_display", "scope", "created_at", "last_used_at", "state"]
    list_filter = ["scope", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "organization__name"]
    list_select_related = ["organization", "created_by"]
    autocomplete_fields = ["organization"]
    raw_id_fields = ["created_by"]
    fields = [
        "organization",
        "name",
        "scope",
        "prefix_display",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    readonly_fields = ["prefix_display", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    @admin.display(description="Key", ordering="prefix")
    def prefix_display(self, obj: ApiKey) -> str:
        return f"{obj.prefix}…" if obj.prefix else "-"

    @admin.display(description="State")
    def state(self, obj: ApiKey) -> str:
        if obj.revoked_at:
            return format_html('<span style="color:#a00">revoked {}</span>', obj.revoked_at.strftime("%Y-%m-%d"))
        return "active"

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:  # an existing key's organization and scope are fixed
            return [*self.readonly_fields, "organization", "scope"]
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name"])
            return
        created = api_key_create(organization=obj.organization, name=obj.name, scope=obj.scope, created_by=request.user)
        obj.pk = created.api_key.pk
        obj.__dict__.update({k: v for k, v in created.api_key.__dict__.items() if not k.startswith("_")})
        self.message_user(
            request,
            f"API key created: {created.raw_key} — copy it now, it will not be shown again.",
            messages.WARNING,
        )

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request, queryset):
        count = api_keys_revoke(api_key_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} API key(s) revoked.")

    def has_delete_permission(self, request, obj=None):
        # Revoke, do not delete: the row keeps who created the key and when it was last used.
        return False
