"""Tenants. Every other row in Parley belongs to exactly one Organization."""

from __future__ import annotations

import hashlib
import secrets
from datetime import time

from django.conf import settings
from django.db import models


class Organization(models.Model):
    name = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, default="America/Chicago")
    # Blasts are not delivered between start and end in the recipient's local time (the window may wrap
    # midnight). Off is its own setting: start = end is refused while on (a constraint), never a code.
    quiet_hours_enabled = models.BooleanField(default=True)
    quiet_hours_start = models.TimeField(default=time(21, 0))
    quiet_hours_end = models.TimeField(default=time(8, 0))
    help_text = models.CharField(
        max_length=320, default="Reply STOP to unsubscribe. Msg&data rates may apply.", blank=True
    )
    opt_out_reply = models.CharField(
        max_length=320,
        default="You have been unsubscribed and will receive no more messages. Reply START to resubscribe.",
    )
    opt_in_reply = models.CharField(max_length=320, default="You have been resubscribed. Reply STOP to unsubscribe.")
    short_link_domain = models.CharField(max_length=253, blank=True, help_text="Overrides the default short domain.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    v1_id = models.IntegerField(null=True, blank=True, unique=True, help_text="v1 AccountId this came from.")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(quiet_hours_enabled=True, quiet_hours_start=models.F("quiet_hours_end")),
                name="org_quiet_hours_window_not_empty",
                violation_error_message="Quiet hours that are on need a start different from their end.",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    AGENT = "agent", "Agent"
    # Our own staff placed in a client's account to help them: never a RingCentral team member, etc.
    SUPPORT = "support", "Support"


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)
    created_at = models.DateTimeField(auto_now_add=True)
    v1_id = models.IntegerField(null=True, blank=True, unique=True, help_text="v1 UserId this came from.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="uniq_membership")]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"


class ApiKeyScope(models.TextChoices):
    ALL = "all", "Full API"
    SHORTENER = "shortener", "Link shortener only"


class ApiKeyQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    """A per-organization API key. Only its SHA-256 is stored; the key is shown once, at creation."""

    PREFIX_LEN = 8

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=PREFIX_LEN, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scope = models.CharField(max_length=16, choices=ApiKeyScope.choices, default=ApiKeyScope.ALL)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def __repr__(self) -> str:
        return f"<ApiKey {self.pk} {self.prefix}… org={self.organization_id}>"

    @staticmethod
    def hash(raw_key: str) -> str:
        return hashlib.sha256(raw_key.encode()).hexdigest()

    @staticmethod
    def generate() -> str:
        return "pk_" + secrets.token_urlsafe(32)
