"""Building blocks every tenant-scoped API view uses: permission, throttle, pagination, scoped FKs."""

from __future__ import annotations

from rest_framework import serializers

from organizations.auth import ApiKeyRateThrottle, IsOrganizationMember

from .pagination import KeysetPagination


class TenantAPIMixin:
    """Mix into every API view. Querysets must filter by `self.request.organization`: another
    tenant's object then answers 404, never 403, so ids do not leak across tenants."""

    permission_classes = [IsOrganizationMember]
    throttle_classes = [ApiKeyRateThrottle]
    pagination_class = KeysetPagination

    @property
    def organization(self):
        return self.request.organization


class TenantPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A foreign key accepted only when it belongs to the caller's organization; another tenant's id
    is refused with the same 400 as a nonexistent one ("Invalid pk ... object does not exist")."""

    def get_queryset(self):
        queryset = super().get_queryset()
        request = self.context.get("request")
        organization = getattr(request, "organization", None)
        if organization is None:
            return queryset.none()
        return queryset.filter(organization=organization)
