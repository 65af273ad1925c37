"""v1 → v2 migration: read-only models of the v1 tables, and the tool's own bookkeeping tables.

The V1* models are unmanaged views of the v1 database (alias "v1", PascalCase quoted table and column
names kept as they are); `migration_v1.routers.V1Router` sends them there and refuses writes. The other
models live in the v2 database: run records, per-(scope, table) checkpoints, quarantined rows and the
v1 → v2 id map used to resolve references set-based in SQL. See docs/migration_v1.md.
"""

from __future__ import annotations

from django.db import models


class V1Model(models.Model):
    V1_SOURCE = True

    class Meta:
        abstract = True
        managed = False
        app_label = "migration_v1"


class V1Account(V1Model):  # noqa: DJ008 (read-only rows of another system)
    account_id = models.IntegerField(primary_key=True, db_column="AccountId")
    name = models.CharField(max_length=200, db_column="Name")
    time_zone = models.CharField(max_length=64, null=True, db_column="TimeZone")
    is_active = models.BooleanField(db_column="IsActive")
    created_on = models.DateTimeField(db_column="CreatedOn")

    class Meta(V1Model.Meta):
        db_table = "Accounts"


class V1User(V1Model):  # noqa: DJ008 (read-only rows of another system)
    user_id = models.IntegerField(primary_key=True, db_column="UserId")
    account_id = models.IntegerField(db_column="AccountId")
    email = models.CharField(max_length=256, db_column="Email")
    first_name = models.CharField(max_length=100, null=True, db_column="FirstName")
    last_name = models.CharField(max_length=100, null=True, db_column="LastName")
    role = models.SmallIntegerField(db_column="Role")
    is_deleted = models.BooleanField(db_column="IsDeleted")
    created_on = models.DateTimeField(db_column="CreatedOn")

    class Meta(V1Model.Meta):
        db_table = "Users"


class V1Line(V1Model):  # noqa: DJ008 (read-only rows of another system)
    line_id = models.IntegerField(primary_key=True, db_column="LineId")
    account_id = models.IntegerField(db_column="AccountId")
    phone_number = models.CharField(max_length=20, db_column="PhoneNumber")
    name = models.CharField(max_length=100, null=True, db_column="Name")
    provider = models.CharField(max_length=20, null=True, db_column="Provider")
    # JSON holding secrets (apiToken): never print, log or quarantine it unmasked.
    provider_config = models.TextField(null=True, db_column="ProviderConfig")
    is_deleted = models.BooleanField(db_column="IsDeleted")
    created_on = models.DateTimeField(db_column="CreatedOn")

    class Meta(V1Model.Meta):
        db_table = "Lines"

    def __repr__(self) -> str:  # never the provider config
        return f"<V1Line {self.line_id} account={self.account_id}>"


class V1Contact(V1Model):  # noqa: DJ008 (read-only rows of another system)
    contact_id = models.IntegerField(primary_key=True, db_column="ContactId")
    account_id = models.IntegerField(db_column="AccountId")
    phone_number = models.CharField(max_length=20, null=True, db_column="PhoneNumber")
    first_name = models.CharField(max_length=100, null=True, db_column="FirstName")
    last_name = models.CharField(max_length=100, null=True, db_column="LastName")
    email = models.CharField(max_length=256, null=True, db_column="Email")
    is_opted_out = models.BooleanField(db_column="IsOptedOut")
    opted_out_on = models.DateTimeField(null=True, db_column="OptedOutOn")
    created_on = models.DateTimeField(db_column="CreatedOn")

    class Meta(V1Model.Meta):
        db_table = "Contacts"


class V1Conversation(V1Model):  # noqa: DJ008 (read-only rows of another system)
    conversation_id = models.IntegerField(primary_key=True, db_column="ConversationId")
    line_id = models.IntegerField(db_column="LineId")
    contact_id = models.IntegerField(db_column="ContactId")
    is_closed = models.BooleanField(db_column="IsClosed")
    assigned_user_id = models.IntegerField(null=True, db_column="AssignedUserId")
    last_message_on = models.DateTimeField(null=True, db_column="LastMessageOn")
    is_deleted = models.BooleanField(db_column="IsDeleted")
    created_on = models.DateTimeField(db_column="CreatedOn")

    class Meta(V1Model.Meta):
        db_table = "Conversations"


class V1Blast(V1Model):  # noqa: DJ008 (read-only rows of another system)
    blast_id = models.IntegerField(primary_key=True, db_column="BlastId")
    account_id = models.IntegerField(db_column="AccountId")
    line_id = models.IntegerField(db_column="LineId")
    name = models.CharField(max_length=200, null=True, db_column="Name")
    body = models.TextField(db_column="Body")
    created_by_user_id = models.IntegerField(null=True, db_column="CreatedByUserId")
    created_on = models.DateTimeField(db_column="CreatedOn")
    sent_on = models.DateTimeField(null=True, db_column="SentOn")

    class Meta(V1Model.Meta):
        db_table = "Blasts"


class V1Message(V1Model):  # noqa: DJ008 (read-only rows of another system)
    message_id = models.BigIntegerField(primary_key=True, db_column="MessageId")
    conversation_id = models.IntegerField(null=True, db_column="ConversationId")
    line_id = models.IntegerField(db_column="LineId")
    contact_phone = models.CharField(max_length=20, db_column="ContactPhone")
    direction = models.CharField(max_length=1, db_column="Direction")
    # bytea in the PostgreSQL host: SQL Server's nvarchar holds NULs and unpaired surrogates that
    # PostgreSQL text rejects (see sql/v1_schema.sql).
    body = models.BinaryField(null=True, db_column="Body")
    status = models.SmallIntegerField(db_column="Status")
    provider_message_id = models.CharField(max_length=100, null=True, db_column="ProviderMessageId")
    error_code = models.CharField(max_length=20, null=True, db_column="ErrorCode")
    sent_by_user_id = models.IntegerField(null=True, db_column="SentByUserId")
    blast_id = models.IntegerField(null=True, db_column="BlastId")
    created_on = models.DateTimeField(db_column="CreatedOn")
    status_updated_on = models.DateTimeField(null=True, db_column="StatusUpdatedOn")

    class Meta(V1Model.Meta):
        db_table = "Messages"


class V1MessageMedia(V1Model):  # noqa: DJ008 (read-only rows of another system)
    message_media_id = models.IntegerField(primary_key=True, db_column="MessageMediaId")
    message_id = models.BigIntegerField(db_column="MessageId")
    url = models.CharField(max_length=2000, db_column="Url")
    content_type = models.CharField(max_length=100, null=True, db_column="ContentType")

    class Meta(V1Model.Meta):
        db_table = "MessageMedia"


# ---------------------------------------------------------------------------------------------------
# The tool's own tables (v2 database).


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (rerun resumes)"


class MigrationRun(models.Model):
    scope = models.CharField(max_length=32, help_text='"all", "account:<id>" or "line:<id>".')
    mode = models.CharField(max_length=8, default="migrate", help_text="migrate or verify.")
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=RunStatus.choices, default=RunStatus.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Per table: read, written, merged, quarantined, skipped (already migrated), seconds; plus
    # quarantine counts by reason, warnings, and for verify the differences found.
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"v1 {self.mode} #{self.pk} {self.scope} ({self.status})"


class MigrationCheckpoint(models.Model):
    """Highest v1 id of `table` whose batch committed, per scope. Written in the batch's transaction."""

    scope = models.CharField(max_length=32)
    table = models.CharField(max_length=32)
    last_v1_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "table"], name="uniq_v1_checkpoint")]

    def __str__(self) -> str:
        return f"{self.scope} {self.table} > {self.last_v1_id}"


class QuarantinedRow(models.Model):
    """A v1 row that could not be migrated, kept whole (secrets removed) with the reason."""

    run = models.ForeignKey(MigrationRun, null=True, on_delete=models.SET_NULL, related_name="quarantined")
    v1_table = models.CharField(max_length=32)
    v1_id = models.BigIntegerField()
    reason = models.CharField(max_length=64)
    detail = models.CharField(max_length=300, blank=True)
    row = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["v1_table", "v1_id"]
        constraints = [models.UniqueConstraint(fields=["v1_table", "v1_id"], name="uniq_v1_quarantine")]
        indexes = [models.Index(fields=["reason"], name="v1_quarantine_reason")]

    def __str__(self) -> str:
        return f"{self.v1_table} {self.v1_id}: {self.reason}"


class IdMap(models.Model):
    """v1 id → v2 id for rows that other tables reference, merged rows included.

    Contacts, conversations and users can merge (same normalized number, same (line, contact), same
    normalized email): several v1 ids then point at one v2 row, and `merged` marks every one but the
    row whose v1_id the v2 row carries. Messages resolve their references by joining here in SQL.
    """

    v1_table = models.CharField(max_length=32)
    v1_id = models.BigIntegerField()
    v2_id = models.BigIntegerField()
    merged = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["v1_table", "v1_id"], name="uniq_v1_idmap")]

    def __str__(self) -> str:
        return f"{self.v1_table} {self.v1_id} → {self.v2_id}{' (merged)' if self.merged else ''}"
