"""Serializers of the messaging API. They parse and validate input; writes are in messaging.services."""

from __future__ import annotations

from datetime import UTC
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.auth import get_user_model
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, serializers

from carriers.models import CarrierAccount
from organizations.api.base import TenantPrimaryKeyRelatedField

from ..models import Blast, Contact, Conversation, ConversationStatus, Line, Message, OptOut
from ..phone import try_normalize
from ..selectors import blast_quiet_hours_deferrals
from ..services.contacts import IMPORT_MAX_ROWS, OnConflict


class CarrierUnavailable(exceptions.APIException):
    """503 when the carrier cannot confirm a line's number now; the caller retries, nothing was changed."""

    status_code = 503
    default_detail = "The carrier could not confirm this number right now; try again in a minute."
    default_code = "carrier_unavailable"
    field = "phone_number"


class PhoneNumberField(serializers.CharField):
    """Any common way of writing a number in; E.164 out. Invalid numbers are refused naming the field."""

    default_error_messages = {"invalid_phone": "'{value}' is not a valid phone number."}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 40)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        text = super().to_internal_value(data)
        normalized = try_normalize(text)
        if normalized is None:
            self.fail("invalid_phone", value=text)
        return normalized


class OrganizationDateTimeField(serializers.DateTimeField):
    """A time with an offset (or Z) is taken as given; one without ("2026-05-01T09:00") is read in the
    calling organization's time zone (GET /api/v1/organization). A local time that does not exist there
    (the hour skipped when clocks go forward) is refused, naming the field."""

    default_error_messages = {
        "nonexistent": "{value} does not exist in {zone} (clocks skip it); give another time or an offset."
    }

    def enforce_timezone(self, value):
        aware = super().enforce_timezone(value)
        if timezone.is_naive(value) and aware.astimezone(UTC).astimezone(aware.tzinfo).replace(tzinfo=None) != value:
            # ZoneInfo accepts a wall time inside a spring-forward gap; DRF's own check lets it through.
            self.fail("nonexistent", value=value.isoformat(), zone=aware.tzinfo)
        return aware

    def to_representation(self, value):
        # Answers in UTC like every other time of the API: the organization's zone is for reading input
        # (and its historic offsets, e.g. LMT's -05:50:36, are not valid RFC 3339).
        return _UTC_DATETIME.to_representation(value)

    def default_timezone(self):
        organization = getattr(self.context.get("request"), "organization", None)
        if organization is not None:
            try:
                return ZoneInfo(organization.time_zone)
            except (ZoneInfoNotFoundError, ValueError):
                pass  # an unknown zone name (set outside the API) reads as the server's zone, UTC
        return super().default_timezone()


_UTC_DATETIME = serializers.DateTimeField(default_timezone=UTC)


class LineSerializer(serializers.ModelSerializer):
    phone_number = PhoneNumberField()
    carrier_account = TenantPrimaryKeyRelatedField(
        queryset=CarrierAccount.objects.all(), allow_null=True, required=False
    )
    warnings = serializers.SerializerMethodField(
        help_text="What stops this line from working as it is (e.g. no carrier account: sends are refused)."
    )

    class Meta:
        model = Line
        fields = [
            "id",
            "phone_number",
            "name",
            "carrier_account",
            "is_active",
            "rate_per_second",
            "nice_start_polling_on_chat_creation",
            "created_at",
            "updated_at",
            "warnings",
        ]
        read_only_fields = ["id", "created_at", "updated_at", "warnings"]
        # The conditional unique constraint and the carrier's word on the number are checked by the service
        # (messaging.services.lines.line_save), which names the field.
        validators: list = []

    def get_warnings(self, obj: Line) -> list[str]:
        if obj.is_active and obj.carrier_account_id is None:
            return ["carrier_account: the line has no carrier account; sends on it are refused until one is set."]
        return []


class ContactSerializer(serializers.ModelSerializer):
    phone_number = PhoneNumberField()

    class Meta:
        model = Contact
        fields = [
            "id",
            "phone_number",
            "sender_kind",
            "first_name",
            "last_name",
            "email",
            "custom_fields",
            "created_at",
            "updated_at",
            "archived_at",
            "erased_at",
        ]
        # sender_kind: "phone" for every contact written through the API; a short code or alphanumeric
        # sender only ever arrives as the sender of an inbound text.
        read_only_fields = ["id", "sender_kind", "created_at", "updated_at", "archived_at", "erased_at"]
        # Uniqueness per organization is checked by the service (the serializer cannot see the tenant).
        validators: list = []

    def validate_custom_fields(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be an object.")
        return value


class ContactImportSerializer(serializers.Serializer):
    contacts = serializers.ListField(
        child=serializers.JSONField(),
        max_length=IMPORT_MAX_ROWS,
        allow_empty=False,
        help_text=f"Up to {IMPORT_MAX_ROWS} objects: phone_number (required), first_name, last_name, email, "
        "custom_fields; any other key becomes a custom field.",
    )
    on_conflict = serializers.ChoiceField(choices=OnConflict.choices, default=OnConflict.SKIP)


class ContactImportRowErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="1-based row number (CSV: data rows, header excluded).")
    # An API field named "fields": DRF's metaclass takes declared fields off the class, so the
    # Serializer attribute of that name is untouched (mypy sees the class body only).
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))  # type: ignore[assignment]


class ContactImportResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    skipped = serializers.IntegerField(help_text="Existing contacts left untouched (on_conflict=skip).")
    # An API field named "errors": DRF's metaclass takes declared fields off the class, so the
    # Serializer attribute of that name is untouched (mypy sees the class body only).
    errors = ContactImportRowErrorSerializer(many=True)  # type: ignore[assignment]


class OptOutSerializer(serializers.ModelSerializer):
    phone_number = PhoneNumberField()

    class Meta:
        model = OptOut
        fields = ["id", "phone_number", "source", "reason", "created_at"]
        read_only_fields = ["id", "created_at"]
        validators: list = []


class ContactSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Contact
        fields = ["id", "phone_number", "first_name", "last_name"]
        read_only_fields = fields


class ConversationSerializer(serializers.ModelSerializer):
    contact = ContactSummarySerializer(read_only=True)
    line_phone_number = serializers.CharField(source="line.phone_number", read_only=True)

    class Meta:
        model = Conversation
        fields = [
            "id",
            "line",
            "line_phone_number",
            "contact",
            "status",
            "assignee",
            "last_message_at",
            "last_message_preview",
            "created_at",
        ]
        read_only_fields = fields


class ConversationAssignSerializer(serializers.Serializer):
    assignee = serializers.IntegerField(
        allow_null=True, min_value=1, help_text="A member's user id; null unassigns the conversation."
    )


class ConversationFilterSerializer(serializers.Serializer):
    """Query parameters of GET /api/v1/conversations."""

    status = serializers.ChoiceField(choices=ConversationStatus.choices, required=False)
    line = serializers.IntegerField(required=False, min_value=1)
    assignee = serializers.CharField(
        required=False, help_text="A user id, `me`, or `none` for unassigned conversations."
    )
    contact_phone = PhoneNumberField(required=False)
    updated_since = serializers.DateTimeField(
        required=False, help_text="Conversations whose last message is at or after this time (ISO 8601)."
    )

    def validate_line(self, value):
        organization = self.context["request"].organization
        if not Line.objects.filter(organization=organization, pk=value).exists():
            raise serializers.ValidationError("Unknown line.")
        return value

    def validate_assignee(self, value):
        request = self.context["request"]
        if value == "none":
            return value
        if value == "me":
            if not request.user.is_authenticated:
                raise serializers.ValidationError("`me` needs a signed-in user, not an API key.")
            return request.user.pk
        try:
            user_id = int(value)
        except ValueError:
            raise serializers.ValidationError("A user id, `me` or `none`.") from None
        if not get_user_model().objects.filter(pk=user_id, memberships__organization=request.organization).exists():
            raise serializers.ValidationError("Unknown user.")
        return user_id


class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = [
            "id",
            "conversation",
            "direction",
            "body",
            "rendered_body",
            "media",
            "status",
            "segments",
            "encoding",
            "blast",
            "error_code",
            "error_reason",
            "sent_by",
            "send_at",
            "created_at",
            "sent_at",
            "delivered_at",
            "failed_at",
            "received_at",
        ]
        read_only_fields = fields


class AudienceSerializer(serializers.Serializer):
    contact_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, allow_empty=False, max_length=100_000
    )
    all = serializers.BooleanField(required=False, default=False, help_text="Every contact of the organization.")
    custom_fields = serializers.DictField(
        required=False, help_text="Filter: contacts whose custom_fields contain these key/values."
    )
    created_since = serializers.DateTimeField(required=False, help_text="Filter: contacts created at or after.")

    def validate(self, attrs):
        chosen = [
            bool(attrs.get("contact_ids")),
            attrs.get("all", False),
            bool(attrs.get("custom_fields")) or attrs.get("created_since") is not None,
        ]
        if sum(chosen) != 1:
            raise serializers.ValidationError(
                "Give exactly one of: contact_ids, all=true, or a filter (custom_fields / created_since)."
            )
        return attrs

    def validate_contact_ids(self, value):
        ids = list(dict.fromkeys(value))
        organization = self.context["request"].organization
        known = set(
            Contact.objects.filter(organization=organization, id__in=ids, archived_at__isnull=True).values_list(
                "id", flat=True
            )
        )
        missing = [i for i in ids if i not in known]
        if missing:
            shown = ", ".join(str(i) for i in missing[:20])
            raise serializers.ValidationError(f"Unknown contact ids: {shown}{'…' if len(missing) > 20 else ''}.")
        return ids


class BlastSerializer(serializers.ModelSerializer):
    line = TenantPrimaryKeyRelatedField(queryset=Line.objects.filter(is_active=True))
    audience = AudienceSerializer(write_only=True)
    send_at = OrganizationDateTimeField(required=False, allow_null=True, help_text="When to send; empty: at launch.")
    deferred_by_quiet_hours = serializers.SerializerMethodField(
        help_text="Messages held back by the recipients' quiet hours, waiting to be sent."
    )
    quiet_hours_resume_at = serializers.SerializerMethodField(
        help_text="When the first of the deferred messages goes out (null: none deferred)."
    )

    class Meta:
        model = Blast
        fields = [
            "id",
            "line",
            "name",
            "body",
            "status",
            "send_at",
            "audience",
            "created_at",
            "launched_at",
            "completed_at",
            "canceled_at",
            "recipient_count",
            "opted_out_count",
            "sent_count",
            "delivered_count",
            "failed_count",
            "undelivered_count",
            "delivery_rate",
            "deferred_by_quiet_hours",
            "quiet_hours_resume_at",
        ]
        read_only_fields = [f for f in fields if f not in ("line", "name", "body", "send_at", "audience")]

    def get_deferred_by_quiet_hours(self, obj: Blast) -> int:
        return blast_quiet_hours_deferrals(blast=obj)[0]

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_quiet_hours_resume_at(self, obj: Blast):
        at = blast_quiet_hours_deferrals(blast=obj)[1]
        return serializers.DateTimeField().to_representation(at) if at is not None else None

    def validate_line(self, value: Line) -> Line:
        if value.carrier_account_id is None:
            raise serializers.ValidationError("The line has no carrier account: a blast on it could only fail.")
        return value

    def validate_body(self, value):
        if not value.strip():
            raise serializers.ValidationError("The message may not be blank.")
        return value


class _SegmentRangeSerializer(serializers.Serializer):
    min = serializers.IntegerField()
    max = serializers.IntegerField()


class _LinkSavingsSerializer(serializers.Serializer):
    chars_saved = serializers.IntegerField()
    segments_before = serializers.IntegerField()
    segments_after = serializers.IntegerField()


class BlastPreviewSerializer(serializers.Serializer):
    """What a launch would do now (messaging.selectors.blast_preview); for the schema."""

    blast = serializers.IntegerField()
    status = serializers.CharField()
    recipient_count = serializers.IntegerField()
    opted_out_count = serializers.IntegerField()
    sendable_count = serializers.IntegerField()
    deferred_by_quiet_hours = serializers.IntegerField(help_text="Recipients now inside their quiet hours.")
    quiet_hours_resume_at = serializers.DateTimeField(
        allow_null=True, help_text="When the first of them would go out (null: none deferred)."
    )
    segments_total = serializers.IntegerField()
    segments_per_message = _SegmentRangeSerializer()
    encodings = serializers.ListField(child=serializers.CharField())
    sample = serializers.CharField(allow_null=True, help_text="The text as the first recipient would get it.")
    links = _LinkSavingsSerializer(allow_null=True, help_text="Short-link savings; null without links.")


@extend_schema_field({"type": "string", "format": "binary"})
class _FileField(serializers.FileField):
    pass


class ContactImportCsvSerializer(serializers.Serializer):
    """multipart/form-data variant of the import."""

    file = _FileField(help_text="CSV with a header row; phone_number required, unknown columns → custom_fields.")
    on_conflict = serializers.ChoiceField(choices=OnConflict.choices, default=OnConflict.SKIP)
