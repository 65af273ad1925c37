"""Building blocks every tenant-scoped API view uses: permission, throttle, pagination, scoped FKs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.throttling import BaseThrottle

if TYPE_CHECKING:
    from rest_framework.permissions import _PermissionClass  # the stubs' name for what APIView takes

from organizations.auth import ApiKeyRateThrottle, IsOrganizationMember

from .pagination import KeysetPagination


def check_query_params(query_params) -> None:
    """Refuse a query parameter given twice or given empty: `?limit=` and `?limit=5&limit=500` used to be
    read as "default" and "the last one", so a client's mistake went unnoticed; now it is a 400 naming it."""
    problems = {}
    for name, values in query_params.lists():
        if len(values) > 1:
            problems[name] = ["Give this parameter once."]
        elif values == [""]:
            problems[name] = ["May not be empty: leave the parameter out instead."]
    if problems:
        raise serializers.ValidationError(problems)


class TenantAPIMixin:
    # Mix into every API view (kept as a comment: a docstring here would become every operation's
    # description in the OpenAPI schema). Querysets must filter by `self.request.organization`: another
    # tenant's object then answers 404, never 403, so ids do not leak across tenants.

    # Typed as DRF's views type them, so the mixin may come first in a view's bases.
    permission_classes: Sequence[_PermissionClass] = [IsOrganizationMember]
    throttle_classes: Sequence[type[BaseThrottle]] = [ApiKeyRateThrottle]
    pagination_class: type[BasePagination] | None = KeysetPagination
    request: Any  # DRF's Request, carrying the organization its authentication resolved

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        # After authentication and permissions: a caller who may not call learns nothing from a 400.
        check_query_params(request.query_params)

    @property
    def organization(self):
        return self.request.organization


class TenantPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A foreign key accepted only when it belongs to the caller's organization; another tenant's id
    is refused with the same 400 as a nonexistent one ("Invalid pk ... object does not exist")."""

    def get_queryset(self):
        queryset = super().get_queryset()
        assert queryset is not None  # DRF refuses a related field without a queryset earlier
        request = self.context.get("request")
        organization = getattr(request, "organization", None)
        if organization is None:
            return queryset.none()
        return queryset.filter(organization=organization)
