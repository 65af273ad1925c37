"""Carrier accounts. Their configuration holds secrets: never shown in reprs, admin lists, logs or API output."""

from __future__ import annotations

import secrets

from django.db import models

from organizations.models import Organization

# Keys of CarrierAccount.config that are secret; masked everywhere they could be displayed.
SECRET_CONFIG_KEYS = frozenset({"api_token", "apiToken", "password", "client_secret", "token", "basic_auth_password"})


class Provider(models.TextChoices):
    SINCH = "sinch", "Sinch"
    SANDBOX = "sandbox", "Sandbox (Sinch wire format, local)"


def _webhook_secret() -> str:
    return secrets.token_urlsafe(24)


class CarrierAccount(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="carrier_accounts")
    name = models.CharField(max_length=100)
    provider = models.CharField(max_length=16, choices=Provider.choices, default=Provider.SINCH)
    # Sinch: {"service_plan_id", "api_token", "region", "base_url" (optional override)}.
    config = models.JSONField(default=dict, blank=True)
    # Unguessable path segment of this account's webhook URLs.
    webhook_secret = models.CharField(max_length=64, unique=True, default=_webhook_secret, editable=False)
    # Optional basic auth that the carrier must present on webhooks.
    webhook_username = models.CharField(max_length=100, blank=True)
    webhook_password = models.CharField(max_length=200, blank=True)
    # Carrier requests per second for the status backfill (Sinch allows more; be a good citizen).
    backfill_rate = models.FloatField(default=10.0)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_provider_display()})"

    def __repr__(self) -> str:
        return f"<CarrierAccount {self.pk} {self.provider} org={self.organization_id}>"

    def masked_config(self) -> dict:
        return mask_config(self.config)


def mask_config(config: dict) -> dict:
    return {k: ("••••" if k in SECRET_CONFIG_KEYS and v else v) for k, v in (config or {}).items()}
