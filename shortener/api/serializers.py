from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from rest_framework import serializers

from .. import conf
from ..models import Click, Link
from ..services import link_validate_target, short_url

BULK_MAX = 1000


def _target(serializer: serializers.Serializer, value: str, field_name: str) -> str:
    # The caller's organization, for its allow-list of otherwise refused hosts (shortener/targets.py).
    organization = getattr(serializer.context.get("request"), "organization", None)
    try:
        return link_validate_target(value, field_name=field_name, organization_id=getattr(organization, "pk", None))
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.message_dict[field_name]) from None


# Ids are bigints: a larger number is refused here rather than reaching the database.
_ID_MAX = 2**63 - 1


class LinkFilterSerializer(serializers.Serializer):
    """Query parameters of GET /api/v1/links (each optional; given, it must be an id)."""

    blast_id = serializers.IntegerField(
        required=False, min_value=1, max_value=_ID_MAX, help_text="Links made for this blast's messages."
    )
    message_id = serializers.IntegerField(
        required=False, min_value=1, max_value=_ID_MAX, help_text="Links made for this message."
    )
    contact_id = serializers.IntegerField(
        required=False, min_value=1, max_value=_ID_MAX, help_text="Links made for this contact."
    )

    def to_internal_value(self, data):
        # DRF's IntegerField reads any Unicode digit ("³" passes str.isdigit, "١" passes int()); ids are ASCII.
        for name in self.fields:
            raw = data.get(name)
            if raw is not None and not (raw.isascii() and raw.isdigit()):
                raise serializers.ValidationError({str(name): ["Must be an integer id."]})
        return super().to_internal_value(data)


class LinkCreateSerializer(serializers.Serializer):
    target_url = serializers.CharField(max_length=conf.TARGET_URL_MAX_LENGTH, trim_whitespace=True)
    fallback_url = serializers.CharField(
        max_length=conf.TARGET_URL_MAX_LENGTH,
        required=False,
        allow_blank=True,
        default="",
        help_text="Where the code goes once expired (else the default fallback, else a 404 page).",
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    message_id = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    contact_id = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    blast_id = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)

    def validate_target_url(self, value):
        return _target(self, value, "target_url")

    def validate_fallback_url(self, value):
        return _target(self, value, "fallback_url") if value else ""

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Must be in the future.")
        return value


class LinkUpdateSerializer(serializers.Serializer):
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="null: never expires; now: expire now; omitted: unchanged."
    )
    fallback_url = serializers.CharField(max_length=conf.TARGET_URL_MAX_LENGTH, required=False, allow_blank=True)

    def validate_fallback_url(self, value):
        return _target(self, value, "fallback_url") if value else ""


class LinkBulkCreateSerializer(serializers.Serializer):
    links = serializers.ListField(
        child=serializers.DictField(),
        min_length=1,
        max_length=BULK_MAX,
        help_text=f"Up to {BULK_MAX} links, each as for POST /api/v1/links. Validated one by one.",
    )


class LinkSerializer(serializers.ModelSerializer):
    short_url = serializers.SerializerMethodField()

    class Meta:
        model = Link
        fields = [
            "id",
            "code",
            "short_url",
            "target_url",
            "fallback_url",
            "expires_at",
            "created_at",
            "message_id",
            "contact_id",
            "blast_id",
            "click_count",
            "unique_click_count",
            "bot_click_count",
            "last_clicked_at",
        ]
        read_only_fields = fields

    def get_short_url(self, link) -> str:
        request = self.context.get("request")
        organization = getattr(request, "organization", None)
        return short_url(link.code, domain=getattr(organization, "short_link_domain", "") or None)


class LinkBulkResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    link = LinkSerializer(required=False)
    error = serializers.DictField(required=False, help_text="Same shape as the API's error body.")


class LinkBulkResponseSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    failed = serializers.IntegerField()
    results = LinkBulkResultSerializer(many=True)


class ClickSerializer(serializers.ModelSerializer):
    class Meta:
        model = Click
        fields = [
            "id",
            "clicked_at",
            "method",
            "user_agent",
            "referrer",
            "ip_prefix",
            "is_bot",
            "bot_reason",
            "is_unique",
        ]
        read_only_fields = fields


class BlastClickReportSerializer(serializers.Serializer):
    blast_id = serializers.IntegerField()
    links = serializers.IntegerField(help_text="Short links made for the blast's messages.")
    messages_with_links = serializers.IntegerField()
    clicks = serializers.IntegerField(help_text="Human clicks (bots and link previews excluded).")
    unique_clickers = serializers.IntegerField(help_text="Distinct contacts with at least one human click.")
    bot_clicks = serializers.IntegerField()
    delivered = serializers.IntegerField()
    click_through_rate = serializers.FloatField(allow_null=True, help_text="unique_clickers / delivered.")
