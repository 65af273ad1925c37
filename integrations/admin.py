"""Admin for the partner integrations. Tokens are write-only: never rendered, listed or searched."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from .models import (
    MASK,
    ForwardedMessage,
    NiceChat,
    NiceConnection,
    PartnerReply,
    PendingForward,
    RingCentralConnection,
    RingCentralTeam,
)


def _token_form(model_cls, token_field: str, fields: list[str]):
    editable = fields  # the token itself is never a form field: only the write-only new_token below

    class TokenForm(forms.ModelForm):
        new_token = forms.CharField(
            required=False,
            strip=True,
            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
            label="Token",
            help_text="Write-only: leave empty to keep the current token. It is never displayed.",
        )

        class Meta:
            model = model_cls
            fields = editable

        def clean(self):
            cleaned = super().clean()
            assert cleaned is not None  # ModelForm.clean returns cleaned_data
            if not cleaned.get("new_token") and not getattr(self.instance, token_field):
                self.add_error("new_token", "A token is required.")
            return cleaned

        def save(self, commit=True):
            if self.cleaned_data.get("new_token"):
                setattr(self.instance, token_field, self.cleaned_data["new_token"])
            return super().save(commit)

    return TokenForm


class _MaskedTokenAdmin(admin.ModelAdmin):
    list_select_related = ["organization", "line"]
    readonly_fields = ["token_display", "webhook_secret", "created_at"]

    @admin.display(description="Token")
    def token_display(self, obj) -> str:
        return MASK if obj.pk else "-"


@admin.register(NiceConnection)
class NiceConnectionAdmin(_MaskedTokenAdmin):
    form = _token_form(
        NiceConnection,
        "access_token",
        ["organization", "line", "base_url", "point_of_contact", "poll_timeout_seconds", "is_active"],
    )
    list_display = ["id", "organization", "line", "point_of_contact", "base_url", "token_display", "is_active"]
    raw_id_fields = ["organization", "line"]


@admin.register(RingCentralConnection)
class RingCentralConnectionAdmin(_MaskedTokenAdmin):
    form = _token_form(
        RingCentralConnection, "bot_token", ["organization", "line", "base_url", "bot_creator_id", "is_active"]
    )
    list_display = ["id", "organization", "line", "bot_creator_id", "base_url", "token_display", "is_active"]
    raw_id_fields = ["organization", "line"]


@admin.register(NiceChat)
class NiceChatAdmin(admin.ModelAdmin):
    list_display = ["id", "chat_session_id", "conversation_id", "state", "polling_started_at", "poll_lease_until"]
    list_filter = ["state"]
    search_fields = ["chat_session_id"]
    raw_id_fields = ["organization", "connection", "conversation"]


@admin.register(RingCentralTeam)
class RingCentralTeamAdmin(admin.ModelAdmin):
    list_display = ["id", "team_id", "conversation_id", "connection_id", "created_at"]
    search_fields = ["team_id"]
    raw_id_fields = ["organization", "connection", "conversation"]


@admin.register(PartnerReply)
class PartnerReplyAdmin(admin.ModelAdmin):
    list_display = ["id", "partner", "external_key", "state", "note", "message_id", "created_at", "kick_after"]
    list_filter = ["partner", "state"]
    raw_id_fields = ["organization", "message"]


@admin.register(ForwardedMessage)
class ForwardedMessageAdmin(admin.ModelAdmin):
    list_display = ["id", "partner", "message_id", "external_id", "created_at"]
    list_filter = ["partner"]
    raw_id_fields = ["message"]


@admin.register(PendingForward)
class PendingForwardAdmin(admin.ModelAdmin):
    """Forwards decided and not done yet (docs/recovery.md): a row that stays here for long is a forward
    the partner keeps refusing; `kick_after` is when the sweep tries it again."""

    list_display = ["id", "partner", "message_id", "created_at", "kick_after"]
    list_filter = ["partner"]
    raw_id_fields = ["message"]
