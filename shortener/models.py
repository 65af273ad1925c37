"""Short links and their clicks. See docs/shortener.md.

A Link is one code → one target. Per-recipient links in sends carry their message, contact and blast,
so a click names them. Clicks are written in batches by "shortener.flush_clicks" (never on the request
path); the counters on Link are maintained by that same batch writer, set-based.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import MD5, Now


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


# --- click rollups: what the reports read instead of clicks and links (docs/shortener.md, "Rollups") ------
# Kept by the writers of their source rows, in the same transaction and counting only the rows that
# statement really wrote (the click writer counts the clicks its INSERT ... ON CONFLICT (uid) DO NOTHING
# returned, links_create the links its INSERT returned, link attribution the links its UPDATE moved), so a
# replayed click batch or a retried drain batch counts nothing twice. Rebuilt from clicks and links by
# `manage.py recompute_click_rollups` (shortener/services/rollups.py), which also checks them.


class ClickRollup(models.Model):
    """An organization's clicks per blast (NULL: links of no blast) and 10-second slot of `clicked_at`,
    human and bot apart: a blast report's clicks over time and totals, the organization's clicks per day."""

    # Slot width in seconds: every report bucket is a multiple of it, and every time zone's day boundary
    # (offsets are whole quarter hours) falls on a slot boundary.
    SLOT_SECONDS = 10

    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    # Launched blasts are never deleted (only drafts, which have no links), so CASCADE loses no click.
    blast = models.ForeignKey("messaging.Blast", null=True, on_delete=models.CASCADE, related_name="+", db_index=False)
    slot = models.BigIntegerField()  # floor(epoch of clicked_at / SLOT_SECONDS)
    clicks = models.IntegerField(default=0)  # human clicks
    bot_clicks = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "slot", "blast"], name="uniq_click_rollup", nulls_distinct=False
            )
        ]
        indexes = [
            models.Index(fields=["blast", "slot"], name="click_rollup_blast", condition=models.Q(blast__isnull=False))
        ]

    def __str__(self) -> str:
        return (
            f"Org {self.organization_id} blast {self.blast_id} slot {self.slot}: {self.clicks} + {self.bot_clicks} bots"
        )


class BlastLinkRollup(models.Model):
    """A blast's links per target URL, with the sums of their counters: the report's top links and its
    click totals without reading the blast's (one per recipient) links."""

    blast = models.ForeignKey("messaging.Blast", on_delete=models.CASCADE, related_name="+", db_index=False)
    target_url = models.TextField()
    links = models.IntegerField(default=0)
    clicks = models.IntegerField(default=0)
    unique_clicks = models.IntegerField(default=0)
    bot_clicks = models.IntegerField(default=0)

    class Meta:
        # By the target's hash: a btree entry of a long URL could pass the index's row size limit.
        constraints = [models.UniqueConstraint(models.F("blast"), MD5("target_url"), name="uniq_blast_link_rollup")]

    def __str__(self) -> str:
        return f"Blast {self.blast_id}: {self.target_url} ({self.links} links, {self.clicks} clicks)"


class BlastClicker(models.Model):
    """A contact with a human click on a link of the blast: the blast's unique clickers are its rows."""

    blast = models.ForeignKey("messaging.Blast", on_delete=models.CASCADE, related_name="+", db_index=False)
    contact = models.ForeignKey("messaging.Contact", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["blast", "contact"], name="uniq_blast_clicker")]

    def __str__(self) -> str:
        return f"Blast {self.blast_id}: contact {self.contact_id}"
