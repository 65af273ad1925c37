from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from organizations.models import ApiKey, Organization


class ApiKeySerializer(serializers.ModelSerializer):
    """A key as listed: its prefix only, never the key or its hash."""

    is_active = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "scope", "created_at", "last_used_at", "revoked_at", "is_active"]
        read_only_fields = fields

    def get_is_active(self, obj: ApiKey) -> bool:
        return obj.revoked_at is None


class ApiKeyCreateSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = ["name", "scope"]


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The API key. Shown only in this response.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


@extend_schema_field({"type": "string", "pattern": r"^\d{2}:\d{2}(:\d{2}(\.\d+)?)?$", "example": "21:00:00"})
class LocalTimeField(serializers.TimeField):
    """A wall-clock time without a zone ("21:00" in, "21:00:00" out): OpenAPI's `format: time` means an
    RFC 3339 time with an offset, which quiet hours are not (they apply in each recipient's own zone)."""


# Parses only: the rules (an IANA zone; a window that is on is not empty) are
# organizations.services.organization_update_settings, which the web app calls too.
class OrganizationSettingsSerializer(serializers.ModelSerializer):
    """The calling organization's sending settings. Quiet hours: blasts are not delivered between
    quiet_hours_start and quiet_hours_end in the recipient's local time (the number's zone, else the
    organization's time_zone); the window may wrap midnight. quiet_hours_enabled=false turns them off."""

    quiet_hours_start = LocalTimeField(required=False)
    quiet_hours_end = LocalTimeField(required=False)

    class Meta:
        model = Organization
        fields = ["id", "name", "time_zone", "quiet_hours_enabled", "quiet_hours_start", "quiet_hours_end"]
        read_only_fields = ["id", "name"]
