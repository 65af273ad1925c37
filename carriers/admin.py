"""Admin for carrier accounts (secrets masked) and stored webhooks (failed ones are visible and requeueable)."""

from __future__ import annotations

import contextlib
import json
import time

from django import forms
from django.contrib import admin
from django.utils.html import format_html, format_html_join

from . import breaker
from .health import webhook_refusals
from .models import SECRET_CONFIG_KEYS, CarrierAccount, WebhookEvent, WebhookState, mask_config
from .selectors import webhook_health
from .services import webhook_requeue


class CarrierAccountForm(forms.ModelForm):
    """Secret config values are shown masked; submitting the mask keeps the stored value."""

    class Meta:
        model = CarrierAccount
        fields = [
            "organization",
            "name",
            "provider",
            "config",
            "webhook_username",
            "webhook_password",
            "backfill_rate",
            "report_delay_seconds",
            "is_active",
        ]
        widgets = {"webhook_password": forms.PasswordInput(render_value=False)}

    # Write-only: never rendered back; empty keeps the stored token.
    new_api_token = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        label="Replace API token",
        help_text="Leave empty to keep the current token. The token is never displayed.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["config"] = mask_config(self.instance.config)
        self.fields["webhook_password"].required = False

    def clean_config(self):
        config = self.cleaned_data["config"] or {}
        stored = (self.instance.config if self.instance.pk else None) or {}
        for key in SECRET_CONFIG_KEYS:
            if config.get(key) == "••••" and key in (stored or {}):
                config[key] = stored[key]
        return config

    def clean(self):
        cleaned = super().clean()
        assert cleaned is not None  # ModelForm.clean returns cleaned_data
        token = cleaned.get("new_api_token")
        if token and isinstance(cleaned.get("config"), dict):
            cleaned["config"] = {**cleaned["config"], "api_token": token}
        return cleaned

    def clean_webhook_password(self):
        value = self.cleaned_data.get("webhook_password")
        return value if value else (self.instance.webhook_password if self.instance.pk else "")


@admin.register(CarrierAccount)
class CarrierAccountAdmin(admin.ModelAdmin):
    form = CarrierAccountForm
    list_display = [
        "name",
        "organization",
        "provider",
        "masked_config_display",
        "is_active",
        "webhooks_refused",
        "send_breaker",
        "updated_at",
    ]
    list_filter = ["provider", "is_active"]
    search_fields = ["name", "organization__name"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    readonly_fields = [
        "masked_config_display",
        "webhook_urls",
        "webhook_health_display",
        "send_breaker",
        "created_at",
        "updated_at",
    ]
    fields = [
        "organization",
        "name",
        "provider",
        "masked_config_display",
        "config",
        "new_api_token",
        "webhook_username",
        "webhook_password",
        "backfill_rate",
        "report_delay_seconds",
        "is_active",
        "send_breaker",
        "webhook_urls",
        "webhook_health_display",
        "created_at",
        "updated_at",
    ]

    @admin.display(description="Config (secrets masked)")
    def masked_config_display(self, obj: CarrierAccount) -> str:
        if not obj.pk:
            return "-"
        return format_html("<code>{}</code>", json.dumps(obj.masked_config(), sort_keys=True))

    @admin.display(description="Webhook URLs")
    def webhook_urls(self, obj: CarrierAccount) -> str:
        if not obj.pk:
            return "-"
        return format_html("{}<br>{}", obj.callback_url, obj.inbound_url)

    @admin.display(description="Sends (circuit breaker)")
    def send_breaker(self, obj: CarrierAccount) -> str:
        """The carrier as the send pipeline sees it (carriers/breaker.py): open = its lines' sends pause."""
        if not obj.pk:
            return "-"
        fields = breaker.state(account_id=obj.pk)
        state = fields.get("state", breaker.CLOSED)
        opened = int(fields.get("opened") or 0)
        if state == breaker.CLOSED:
            return f"closed (opened {opened}× recently)" if opened else "closed"
        if state == breaker.OPEN:
            wait = max(0.0, float(fields.get("open_until") or 0) - time.time())
            return f"OPEN: sends paused, next probe in {wait:.0f} s"
        return "HALF-OPEN: probing the carrier"

    @admin.display(description="Webhooks refused (1 h / 24 h)")
    def webhooks_refused(self, obj: CarrierAccount) -> str:
        # Redis only (one round trip a row): the list stays cheap; the full health is on the account's page.
        refused = webhook_refusals([obj.pk])[obj.pk]
        if not refused.last_day:
            return "0 / 0"
        return f"{refused.last_hour} / {refused.last_day} (last: {refused.last_status} {refused.last_reason})"

    @admin.display(description="Webhook health")
    def webhook_health_display(self, obj: CarrierAccount) -> str:
        if not obj.pk:
            return "-"
        h = webhook_health(account_ids=[obj.pk])[obj.pk]
        rows = [
            ("Last accepted", h.last_accepted_at or "never"),
            ("Accepted (1 h / 24 h)", f"{h.accepted_last_hour} / {h.accepted_last_day}"),
            ("Accepted while deactivated (24 h)", h.inactive_accepted_last_day),
            ("Refused (1 h / 24 h)", f"{h.refused_last_hour} / {h.refused_last_day}"),
            (
                "Last refused",
                f"{h.last_refused_at} — {h.last_refused_status} {h.last_refused_reason}"
                if h.last_refused_at
                else "never",
            ),
            ("Unprocessable (1 h / 24 h)", f"{h.unprocessable_last_hour} / {h.unprocessable_last_day}"),
            (
                "Last unprocessable",
                f"{h.last_unprocessable_at} — {h.last_unprocessable_reason}" if h.last_unprocessable_at else "never",
            ),
        ]
        return format_html(
            "<table>{}</table>",
            format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
        )


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ["id", "account", "kind", "state", "account_inactive", "attempts", "received_at", "error"]
    list_filter = ["state", "kind", "account_inactive"]
    search_fields = ["error"]
    readonly_fields = [
        "account",
        "kind",
        "pretty_body",
        "received_at",
        "state",
        "attempts",
        "next_attempt_at",
        "processed_at",
        "error",
        "account_inactive",
    ]
    exclude = ["body"]
    actions = ["requeue"]
    list_select_related = ["account"]
    show_full_result_count = False  # the table is large; COUNT(*) per page view is not worth it

    @admin.display(description="Body")
    def pretty_body(self, obj: WebhookEvent) -> str:
        text = obj.body_text()
        with contextlib.suppress(ValueError):
            text = json.dumps(json.loads(text), indent=2)
        return format_html("<pre>{}</pre>", text)

    @admin.action(description="Requeue (back to pending)")
    def requeue(self, request, queryset):
        ids = list(queryset.exclude(state=WebhookState.PENDING).values_list("pk", flat=True))
        count = webhook_requeue(event_ids=ids)
        self.message_user(request, f"{count} webhook(s) requeued.")

    def has_add_permission(self, request):
        return False
