"""/api/v1/api-keys: create (the key is in that response only), list (prefix only), revoke (DELETE).
/api/v1/organization: the calling organization's settings (time zone, quiet hours): GET, PATCH (admins)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from organizations import services
from organizations.auth import IsOrganizationAdmin, IsOrganizationAdminOrReadOnly
from organizations.models import ApiKey

from .base import TenantAPIMixin
from .serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    OrganizationSettingsSerializer,
)


class ApiKeyViewSet(
    TenantAPIMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ApiKeySerializer
    permission_classes = [IsOrganizationAdmin]
    queryset = ApiKey.objects.none()

    def get_queryset(self):
        return ApiKey.objects.filter(organization=self.organization)

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer})
    def create(self, request):
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = services.api_key_create(
            organization=self.organization, created_by=request.user, **serializer.validated_data
        )
        data = ApiKeyCreatedSerializer(created.api_key).data
        data["key"] = created.raw_key
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Revoke an API key", responses={204: None})
    def destroy(self, request, pk=None):
        api_key = self.get_object()
        services.api_keys_revoke(organization_id=self.organization.pk, api_key_ids=[api_key.pk])
        return Response(status=status.HTTP_204_NO_CONTENT)


class OrganizationSettingsView(TenantAPIMixin, GenericAPIView):
    """Read by any member; changed by admins (and full-scope API keys)."""

    serializer_class = OrganizationSettingsSerializer

    permission_classes = [IsOrganizationAdminOrReadOnly]

    @extend_schema(summary="The organization's settings (time zone, quiet hours)")
    def get(self, request):
        return Response(self.get_serializer(self.organization).data)

    @extend_schema(summary="Change the organization's time zone or quiet hours")
    def patch(self, request):
        serializer = self.get_serializer(self.organization, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.organization_update_settings(organization=self.organization, **serializer.validated_data)
        return Response(self.get_serializer(self.organization).data)
