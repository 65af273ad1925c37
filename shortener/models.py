"""Short links and their clicks. See docs/shortener.md.

A Link is one code → one target. Per-recipient links in sends carry their message, contact and blast,
so a click names them. Clicks are written in batches by "shortener.flush_clicks" (never on the request
path); the counters on Link are maintained by that same batch writer, set-based.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Now


class Link(models.Model):
    # Codes are random (secrets), case-sensitive, from a 62-character alphabet; see shortener/codes.py.
    # Index budget: a blast writes one link per recipient, so each index costs an insert per message.
    # Unique by a constraint (no varchar_pattern_ops "_like" twin); the foreign keys that an index of
    # Meta.indexes already leads with have no index of their own.
    code = models.CharField(max_length=32)
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    target_url = models.TextField()
    fallback_url = models.TextField(blank=True, default="", db_default="")
    # Attribution (optional): the message the link was made for, and its contact and blast.
    message = models.ForeignKey(
        "messaging.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    contact = models.ForeignKey("messaging.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    blast = models.ForeignKey(
        "messaging.Blast", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(db_default=Now())
    expires_at = models.DateTimeField(null=True, blank=True)
    # Maintained by the click batch writer (human clicks only; bots are counted apart).
    click_count = models.IntegerField(default=0, db_default=0)
    unique_click_count = models.IntegerField(default=0, db_default=0)
    bot_click_count = models.IntegerField(default=0, db_default=0)
    last_clicked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["code"], name="link_code_uniq")]
        indexes = [
            models.Index(fields=["organization", "-id"], name="link_org_recent"),
            # API-created links only; deleting a user sets created_by NULL through it.
            models.Index(fields=["created_by"], name="link_created_by", condition=models.Q(created_by__isnull=False)),
            models.Index(fields=["blast"], name="link_blast", condition=models.Q(blast__isnull=False)),
            models.Index(fields=["message"], name="link_message", condition=models.Q(message__isnull=False)),
        ]

    def __str__(self) -> str:
        return self.code


class Click(models.Model):
    """One request for a short link. Never the full IP: a /24 (IPv4) or /48 (IPv6) prefix and a keyed hash."""

    link = models.ForeignKey(Link, on_delete=models.CASCADE, related_name="clicks")
    # A random id given at request time: the batch writer inserts ON CONFLICT DO NOTHING on it, so a
    # batch replayed after a crash between commit and trimming the Redis buffer is not counted twice.
    uid = models.CharField(max_length=24, unique=True)
    clicked_at = models.DateTimeField()
    method = models.CharField(max_length=8, default="GET")
    user_agent = models.CharField(max_length=512, blank=True, default="")
    referrer = models.CharField(max_length=1024, blank=True, default="")
    ip_prefix = models.CharField(max_length=64, blank=True, default="", help_text="/24 or /48 network")
    visitor_hash = models.CharField(max_length=32, blank=True, default="", help_text="HMAC of IP + user agent")
    is_bot = models.BooleanField(default=False)
    bot_reason = models.CharField(max_length=64, blank=True, default="")
    # First human click of this visitor on this link (visitor = contact for attributed links, else hash).
    is_unique = models.BooleanField(default=False)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["link", "-id"], name="click_link_recent")]

    def __str__(self) -> str:
        return f"Click {self.pk} on {self.link_id}"


class LinkVisitor(models.Model):
    """Who has clicked a link already: the unique-click key (INSERT ... ON CONFLICT DO NOTHING)."""

    link = models.ForeignKey(Link, on_delete=models.CASCADE, related_name="+")
    visitor = models.CharField(max_length=40)
    first_clicked_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["link", "visitor"], name="uniq_link_visitor")]

    def __str__(self) -> str:
        return f"{self.visitor} on {self.link_id}"


class AllowedTargetHost(models.Model):
    """A host an organization may link to although shortener/targets.py refuses it by default (a private
    address of its own network, an internal name, our short domain). Exact host names or addresses, as
    they appear in the URL (lower case, IPv6 without brackets); managed in the admin."""

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="+")
    host = models.CharField(max_length=253)
    note = models.CharField(max_length=200, blank=True, help_text="Why this host is allowed.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "host"], name="allowed_target_host_uniq")]

    def __str__(self) -> str:
        return self.host

    def save(self, *args, **kwargs):
        self.host = self.host.strip().strip("[]").rstrip(".").lower()
        super().save(*args, **kwargs)
