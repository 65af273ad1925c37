"""/api/v1/links (+ bulk, clicks) and /api/v1/blasts/{id}/clicks. See docs/shortener.md.

API keys of scope "shortener" are accepted here (and nowhere else); every queryset is filtered by
request.organization, so another organization's link or blast answers 404.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging.models import Blast
from organizations.api.base import TenantAPIMixin
from organizations.api.errors import ErrorSerializer, error_body
from organizations.auth import HasScope
from organizations.models import ApiKeyScope

from .. import selectors, services
from ..models import Link
from .serializers import (
    BlastClickReportSerializer,
    ClickSerializer,
    LinkBulkCreateSerializer,
    LinkBulkResponseSerializer,
    LinkCreateSerializer,
    LinkFilterSerializer,
    LinkSerializer,
    LinkUpdateSerializer,
)

ShortenerScope = HasScope.of(ApiKeyScope.SHORTENER)


def _spec(data: dict, created_by_id) -> services.LinkSpec:
    return services.LinkSpec(
        target_url=data["target_url"],
        fallback_url=data["fallback_url"],
        expires_at=data["expires_at"],
        message_id=data["message_id"],
        contact_id=data["contact_id"],
        blast_id=data["blast_id"],
        created_by_id=created_by_id,
    )


@extend_schema_view(
    list=extend_schema(summary="List short links (newest first)", parameters=[LinkFilterSerializer]),
    retrieve=extend_schema(summary="A short link with its click counts"),
    create=extend_schema(
        summary="Create a short link",
        request=LinkCreateSerializer,
        responses={201: LinkSerializer, 400: ErrorSerializer},
    ),
    partial_update=extend_schema(
        summary="Change a link's expiry or fallback",
        request=LinkUpdateSerializer,
        responses={200: LinkSerializer, 400: ErrorSerializer},
    ),
)
class LinkViewSet(
    TenantAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    permission_classes = [ShortenerScope]
    serializer_class = LinkSerializer
    queryset = Link.objects.none()
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        links = selectors.links_for_organization(organization_id=self.organization.pk)
        if self.action == "list":
            filters = LinkFilterSerializer(data=self.request.query_params)
            filters.is_valid(raise_exception=True)
            links = links.filter(**filters.validated_data)
        return links

    def _created_by(self):
        user = self.request.user
        return user.pk if getattr(user, "is_authenticated", False) else None

    def create(self, request, *args, **kwargs):
        incoming = LinkCreateSerializer(data=request.data, context={"request": request})
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        link = services.link_create(organization_id=self.organization.pk, created_by_id=self._created_by(), **data)
        return Response(LinkSerializer(link, context={"request": request}).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        link = self.get_object()
        incoming = LinkUpdateSerializer(data=request.data, context={"request": request})
        incoming.is_valid(raise_exception=True)
        link = services.link_update(link=link, **incoming.validated_data)
        return Response(LinkSerializer(link, context={"request": request}).data)

    @extend_schema(
        summary="Create up to 1,000 short links",
        description="Each item is validated on its own: the valid ones are created (one INSERT), the others "
        "come back with an error in the API's error shape, at their index.",
        request=LinkBulkCreateSerializer,
        responses={200: LinkBulkResponseSerializer, 400: ErrorSerializer},
    )
    @action(detail=False, methods=["post"], url_path="bulk")
    def bulk(self, request):
        outer = LinkBulkCreateSerializer(data=request.data)
        outer.is_valid(raise_exception=True)
        items = outer.validated_data["links"]
        results: list[dict | None] = [None] * len(items)
        specs, positions = [], []
        created_by = self._created_by()
        for index, item in enumerate(items):
            one = LinkCreateSerializer(data=item, context={"request": request})
            if one.is_valid():
                specs.append(_spec(one.validated_data, created_by))
                positions.append(index)
            else:
                results[index] = {"index": index, "error": error_body(exceptions.ValidationError(one.errors), None)}
        attribution = services.links_check_attribution(organization_id=self.organization.pk, specs=specs)
        for spec_index, problems in attribution.items():
            index = positions[spec_index]
            results[index] = {"index": index, "error": error_body(exceptions.ValidationError(problems), None)}
        valid = [(positions[i], spec) for i, spec in enumerate(specs) if i not in attribution]
        services.links_create(organization_id=self.organization.pk, specs=[spec for _, spec in valid])
        links = Link.objects.in_bulk([spec.id for _, spec in valid])
        context = {"request": request}
        for index, spec in valid:
            results[index] = {"index": index, "link": LinkSerializer(links[spec.id], context=context).data}
        return Response({"created": len(valid), "failed": len(items) - len(valid), "results": results})

    @extend_schema(
        summary="Clicks of a link (newest first, bots included and flagged)",
        responses={200: ClickSerializer(many=True)},
    )
    @action(detail=True, methods=["get"], url_path="clicks")
    def clicks(self, request, pk=None):
        link = self.get_object()
        page = self.paginate_queryset(selectors.clicks_for_link(link=link))
        return self.get_paginated_response(ClickSerializer(page, many=True).data)


class BlastClicksView(TenantAPIMixin, APIView):
    permission_classes = [ShortenerScope]

    @extend_schema(summary="Click report of a blast", responses={200: BlastClickReportSerializer, 404: ErrorSerializer})
    def get(self, request, blast_id: int):
        blast = get_object_or_404(Blast.objects.filter(organization=self.organization), pk=blast_id)
        report = selectors.blast_click_report(blast=blast)
        return Response(BlastClickReportSerializer({"blast_id": blast.pk, **report}).data)
