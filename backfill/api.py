"""Status backfill API (docs/backfill.md): start a run for a line, read a run's progress.

POST /api/v1/lines/{id}/backfill-statuses → 202 {"id", "state", "url"} (organization admins and
full-scope API keys: a run spends the carrier account's request budget).
GET  /api/v1/backfill-runs/{id} → the run, its counts and progress. Both tenant scoped: another
organization's line or run answers 404.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging.models import Line
from messaging.status import AWAITING_CARRIER
from organizations.api.base import TenantAPIMixin
from organizations.auth import IsOrganizationAdmin

from .models import BackfillRun
from .services import CHECKABLE, BackfillOptions, backfill_run_start


class BackfillRequestSerializer(serializers.Serializer):
    since = serializers.DateTimeField(required=False, allow_null=True)
    until = serializers.DateTimeField(required=False, allow_null=True)
    status = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(CHECKABLE)), required=False, allow_empty=False
    )
    limit = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    dry_run = serializers.BooleanField(required=False, default=False)
    rate = serializers.FloatField(required=False, allow_null=True, min_value=0.01, max_value=1000)


class BackfillStartedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField()
    url = serializers.URLField(help_text="Where to follow the run (GET /api/v1/backfill-runs/{id}).")


class BackfillRunSerializer(serializers.ModelSerializer):
    progress = serializers.FloatField(
        read_only=True, allow_null=True, help_text="0..1; null while the total is unknown."
    )

    class Meta:
        model = BackfillRun
        fields = [
            "id",
            "organization",
            "line",
            "kind",
            "state",
            "options",
            "counts",
            "total",
            "processed",
            "progress",
            "error",
            "error_samples",
            "created_at",
            "started_at",
            "finished_at",
        ]


class LineBackfillStatusesView(TenantAPIMixin, APIView):
    permission_classes = [IsOrganizationAdmin]

    @extend_schema(
        summary="Ask the carrier for the status of a line's messages (a backfill run)",
        request=BackfillRequestSerializer,
        responses={202: BackfillStartedSerializer},
    )
    def post(self, request, line_id: int):
        line = get_object_or_404(Line, pk=line_id, organization=self.organization)
        data = BackfillRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        if line.carrier_account_id is None:
            raise serializers.ValidationError({"line": ["This line has no carrier account to ask."]})
        options = BackfillOptions(
            since=v.get("since"),
            until=v.get("until"),
            statuses=tuple(v.get("status") or sorted(AWAITING_CARRIER)),
            limit=v.get("limit"),
            dry_run=v["dry_run"],
            rate=v.get("rate"),
        )
        user_id = request.user.pk if getattr(request.user, "is_authenticated", False) else None
        run = backfill_run_start(
            organization_id=self.organization.id, line_id=line.id, options=options, created_by_id=user_id
        )
        url = request.build_absolute_uri(reverse("backfill-run-detail", args=[run.id]))
        return Response({"id": run.id, "state": run.state, "url": url}, status=status.HTTP_202_ACCEPTED)


class BackfillRunView(TenantAPIMixin, APIView):
    @extend_schema(summary="A backfill run: its counts and progress", responses={200: BackfillRunSerializer})
    def get(self, request, run_id: int):
        run = get_object_or_404(BackfillRun, pk=run_id, organization=self.organization)
        return Response(BackfillRunSerializer(run).data)


urlpatterns = [
    path("lines/<int:line_id>/backfill-statuses", LineBackfillStatusesView.as_view(), name="line-backfill-statuses"),
    path("backfill-runs/<int:run_id>", BackfillRunView.as_view(), name="backfill-run-detail"),
]
