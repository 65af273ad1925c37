"""Partner integrations: connections (with secrets), NICE chats, RingCentral teams, and the two
idempotency tables (what we forwarded to a partner, what a partner asked us to send). See
docs/integrations.md. Secrets (access/bot tokens) never appear in reprs, admin lists, logs or errors.
"""

from __future__ import annotations

import secrets

from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from messaging.models import Conversation, Line, Message
from organizations.models import Organization

MASK = "••••"
# A plain CharField + validator rather than URLField: its form field's scheme default changes in Django 6.
_URL = URLValidator(schemes=["http", "https"])


def _webhook_secret() -> str:
    return secrets.token_urlsafe(24)


class NiceConnection(models.Model):
    """A line whose inbound SMS conversations become NICE CXone chats."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    line = models.OneToOneField(Line, on_delete=models.CASCADE, related_name="nice_connection")
    base_url = models.CharField(
        max_length=300,
        validators=[_URL],
        help_text="CXone API base, e.g. https://api-c18.incontact.com/inContactAPI/services/v27.0",
    )
    access_token = models.CharField(max_length=4000, help_text="OAuth2 bearer token. Secret: never displayed.")
    point_of_contact = models.CharField(max_length=100)
    # Unguessable path segment of /integrations/nice/<secret>/events.
    webhook_secret = models.CharField(max_length=64, unique=True, default=_webhook_secret, editable=False)
    # Seconds one long poll may be held by NICE (the GET's ?timeout=N).
    poll_timeout_seconds = models.PositiveSmallIntegerField(default=20)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"NICE {self.point_of_contact} on line {self.line_id}"

    def __repr__(self) -> str:
        return f"<NiceConnection {self.pk} line={self.line_id} token={MASK}>"


class NiceChatState(models.TextChoices):
    ACTIVE = "active", "Active"
    ENDED = "ended", "Ended"


class NiceChat(models.Model):
    """One CXone chat of a conversation. At most one active chat per conversation.

    Polling: `polling_started_at` set = someone must be polling. The poll lease (`poll_lease_token`,
    `poll_lease_until`) is taken by compare-and-set before each long poll, so one chat is never polled
    twice at once; a lease that expired means its poller died, and the beat job re-kicks it.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    connection = models.ForeignKey(NiceConnection, on_delete=models.CASCADE, related_name="chats")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    chat_session_id = models.CharField(max_length=200)
    contact_id = models.BigIntegerField(null=True, blank=True, help_text="CXone contactId")
    state = models.CharField(max_length=8, choices=NiceChatState.choices, default=NiceChatState.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    polling_started_at = models.DateTimeField(null=True, blank=True)
    poll_lease_token = models.CharField(max_length=32, blank=True, default="")
    poll_lease_until = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    # The newest agent message seen (NICE's own Timestamp, as sent, and parsed when it parses).
    last_agent_timestamp = models.CharField(max_length=64, blank=True, default="")
    last_agent_message_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation"], condition=Q(state="active"), name="uniq_nice_active_chat_per_conversation"
            ),
            models.UniqueConstraint(fields=["connection", "chat_session_id"], name="uniq_nice_chat_session"),
        ]
        indexes = [
            # The beat's re-kick sweep: active chats that are being polled.
            models.Index(
                fields=["poll_lease_until"],
                name="nice_chat_polling",
                condition=Q(state="active", polling_started_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"NICE chat {self.chat_session_id} ({self.state})"


class RingCentralConnection(models.Model):
    """Mirrors conversations into RingCentral teams: for one line, or (line empty) for every line of the
    organization that has no connection of its own."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    line = models.OneToOneField(
        Line, on_delete=models.CASCADE, null=True, blank=True, related_name="ringcentral_connection"
    )
    base_url = models.CharField(max_length=300, validators=[_URL], default="https://platform.ringcentral.com")
    bot_token = models.CharField(max_length=4000, help_text="Bot access token. Secret: never displayed.")
    # The bot's RingCentral person id: its own posts come back by webhook and must be ignored.
    bot_creator_id = models.CharField(max_length=64)
    webhook_secret = models.CharField(max_length=64, unique=True, default=_webhook_secret, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization"], condition=Q(line__isnull=True), name="uniq_rc_org_wide_connection"
            ),
        ]

    def __str__(self) -> str:
        return f"RingCentral for {'line ' + str(self.line_id) if self.line_id else 'organization'}"

    def __repr__(self) -> str:
        return f"<RingCentralConnection {self.pk} org={self.organization_id} line={self.line_id} token={MASK}>"


class RingCentralTeam(models.Model):
    """The private team a conversation is mirrored into (its id is also the chat id posts go to)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    connection = models.ForeignKey(RingCentralConnection, on_delete=models.CASCADE, related_name="teams")
    conversation = models.OneToOneField(Conversation, on_delete=models.CASCADE, related_name="+")
    team_id = models.CharField(max_length=64)
    # The members Parley put in the team (lower-case emails, sorted): what the team sync compares with
    # the organization's non-support users. Null: not known (a team created before the sync existed);
    # its members are then read from RingCentral once.
    member_emails = models.JSONField(null=True, blank=True)
    members_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "team_id"], name="uniq_rc_team")]

    def __str__(self) -> str:
        return f"RingCentral team {self.team_id}"


class Partner(models.TextChoices):
    NICE = "nice", "NICE CXone"
    RINGCENTRAL = "ringcentral", "RingCentral"


class ForwardedMessage(models.Model):
    """A message of ours that a partner has (NICE send-text, RingCentral post): never forwarded twice."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    partner = models.CharField(max_length=12, choices=Partner.choices)
    external_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "partner"], name="uniq_forwarded_message")]

    def __str__(self) -> str:
        return f"Message {self.message_id} → {self.get_partner_display()} {self.external_id}"


class PendingForward(models.Model):
    """A message the dispatcher decided to forward to a partner that has not been forwarded yet: what a
    lost task leaves behind (docs/recovery.md). Written in the post-processing drain's transaction, by
    the statement that makes the decision (services/forwards.py), so a sweep only ever re-kicks what
    the dispatcher chose; deleted in the statement that records its ForwardedMessage, or when the task
    finds nothing left to forward. `kick_after` is the lease: the sweep re-kicks a row past it and moves
    it on (compare-and-set), longer after each kick; a task retrying after a partner error moves it past
    its countdown."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    partner = models.CharField(max_length=12, choices=Partner.choices)
    kick_after = models.DateTimeField()
    kicks = models.PositiveSmallIntegerField(db_default=0)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "partner"], name="uniq_pending_forward")]
        indexes = [models.Index(fields=["kick_after"], name="pending_forward_due")]

    def __str__(self) -> str:
        return f"Message {self.message_id} → {self.get_partner_display()} (pending)"


class ReplyState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent as SMS"
    SKIPPED = "skipped", "Skipped"


class PartnerReply(models.Model):
    """A partner-side reply (NICE agent message, RingCentral post) that becomes an outbound SMS: the
    unique key makes it exactly once (NICE: chat + Timestamp + text digest; RingCentral: post id)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    partner = models.CharField(max_length=12, choices=Partner.choices)
    connection_id = models.BigIntegerField()
    external_key = models.CharField(max_length=200)
    payload = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=8, choices=ReplyState.choices, default=ReplyState.PENDING)
    note = models.CharField(max_length=200, blank=True)
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # The lease of a pending reply (RingCentral's are sent by a task after commit): past it, the sweep
    # wakes the task again (docs/recovery.md). Null on a reply stored before the lease existed: due.
    kick_after = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["partner", "connection_id", "external_key"], name="uniq_partner_reply")
        ]
        indexes = [
            models.Index(fields=["message"], name="partner_reply_message", condition=Q(message__isnull=False)),
            # The sweep's probe: pending replies are few (a reply leaves pending in its task's transaction).
            models.Index(fields=["kick_after"], name="partner_reply_pending", condition=Q(state=ReplyState.PENDING)),
        ]

    def __str__(self) -> str:
        return f"{self.get_partner_display()} reply {self.external_key} ({self.state})"
