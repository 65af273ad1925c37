"""Carrier accounts as the API shows them: read-only, never a secret (no config, webhook secret, URLs or
basic-auth credentials), with their webhook health (carriers.selectors.webhook_health)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import CarrierAccount


class WebhookHealthSerializer(serializers.Serializer):
    last_accepted_at = serializers.DateTimeField(allow_null=True, help_text="Last callback stored and answered 200.")
    accepted_last_hour = serializers.IntegerField()
    accepted_last_day = serializers.IntegerField()
    inactive_accepted_last_day = serializers.IntegerField(
        help_text="Callbacks accepted while the account was deactivated (applied all the same)."
    )
    refused_last_hour = serializers.IntegerField(help_text="Answered 400, 401, 413 or 503.")
    refused_last_day = serializers.IntegerField()
    last_refused_at = serializers.DateTimeField(allow_null=True)
    last_refused_status = serializers.IntegerField(allow_null=True, help_text="The HTTP status we answered.")
    last_refused_reason = serializers.CharField()
    unprocessable_last_hour = serializers.IntegerField(
        help_text="Accepted, then failed or found invalid by the apply step."
    )
    unprocessable_last_day = serializers.IntegerField()
    last_unprocessable_at = serializers.DateTimeField(allow_null=True)
    last_unprocessable_reason = serializers.CharField()


class CarrierAccountSerializer(serializers.ModelSerializer):
    webhook_health = serializers.SerializerMethodField()

    class Meta:
        model = CarrierAccount
        fields = ["id", "name", "provider", "is_active", "webhook_health", "created_at", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(WebhookHealthSerializer)
    def get_webhook_health(self, obj: CarrierAccount) -> dict:
        return WebhookHealthSerializer(self.context["webhook_health"][obj.pk]).data
