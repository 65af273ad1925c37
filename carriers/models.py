"""Carrier accounts. Their configuration holds secrets: never shown in reprs, admin lists, logs or API output."""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q
from django.utils import timezone

from organizations.models import Organization

# Keys of CarrierAccount.config that are secret; masked everywhere they could be displayed.
SECRET_CONFIG_KEYS = frozenset(
    {"api_token", "apiToken", "password", "client_secret", "token", "basic_auth_password", "key_secret"}
)


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
    # A sent message whose delivery report has not come this long after it was handed to the carrier
    # is overdue: the overdue-report pass asks the carrier about it (docs/backfill.md, "Overdue reports").
    report_delay_seconds = models.PositiveIntegerField(
        default=900,
        help_text="Seconds after sending by which this carrier's delivery reports normally arrive; "
        "later, Parley asks the carrier for the status.",
    )
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

    def webhook_url(self, kind: str = "delivery") -> str:
        """Where the carrier posts: /webhooks/sinch/<secret>/delivery|inbound on PUBLIC_BASE_URL."""
        from django.conf import settings

        return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/webhooks/sinch/{self.webhook_secret}/{kind}"

    @property
    def callback_url(self) -> str:
        """Delivery-report URL sent with each batch (Sinch's callback_url)."""
        return self.webhook_url("delivery")

    @property
    def inbound_url(self) -> str:
        """To configure as the service plan's MO callback in Sinch's dashboard."""
        return self.webhook_url("inbound")


def mask_config(config: dict) -> dict:
    return {k: ("••••" if k in SECRET_CONFIG_KEYS and v else v) for k, v in (config or {}).items()}


class WebhookKind(models.TextChoices):
    DELIVERY = "delivery", "Delivery report"
    INBOUND = "inbound", "Inbound message"


class WebhookState(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSED = "processed", "Processed"
    FAILED = "failed", "Failed"  # gave up (e.g. no matching message after many tries); reason in `error`
    INVALID = "invalid", "Invalid"  # malformed body, answered 400


class WebhookEvent(models.Model):
    """A carrier callback exactly as received, stored before anything else so nothing is lost.

    The view writes one row; the task "carriers.apply_webhooks" (messaging/services/reports.py) claims
    pending rows in pk order and applies them set-based. Rows whose message is not known yet stay pending
    with a backoff. Processed rows are deleted after WEBHOOK_EVENT_RETENTION_DAYS (services.webhook_events_prune).
    """

    # No index of its own: webhook_account_recent leads with account (one index less per stored callback).
    account = models.ForeignKey(CarrierAccount, on_delete=models.CASCADE, related_name="webhook_events", db_index=False)
    kind = models.CharField(max_length=8, choices=WebhookKind.choices)
    body = models.BinaryField(help_text="Raw request body, byte for byte.")
    received_at = models.DateTimeField(default=timezone.now)
    state = models.CharField(max_length=10, choices=WebhookState.choices, default=WebhookState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    # Received while its carrier account was deactivated: accepted and applied all the same (reports of
    # messages in flight must land), flagged here so the operator sees the account is still in use.
    account_inactive = models.BooleanField(default=False, db_default=False)  # db_default: raw INSERTs elsewhere

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The claim query's index: a small partial index over the few pending rows.
            models.Index(fields=["id"], name="webhook_pending", condition=Q(state="pending")),
            models.Index(fields=["account", "-received_at"], name="webhook_account_recent"),
            # Webhook health (carriers.selectors.webhook_health): the few rows the apply could not use.
            # State is already in the pending index's predicate, so this costs no HOT update.
            models.Index(
                fields=["account", "-processed_at"],
                name="webhook_unprocessable",
                condition=Q(state__in=[WebhookState.FAILED, WebhookState.INVALID]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.pk} ({self.state})"

    def body_text(self) -> str:
        return bytes(self.body).decode("utf-8", errors="replace")
