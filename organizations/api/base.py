"""Building blocks every tenant-scoped API view uses: permission, throttle, pagination, scoped FKs."""

from __future__ import annotations

from rest_framework import serializers

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

    permission_classes = [IsOrganizationMember]
    throttle_classes = [ApiKeyRateThrottle]
    pagination_class = KeysetPagination

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
        request = self.context.get("request")
        organization = getattr(request, "organization", None)
        if organization is None:
            return queryset.none()
        return queryset.filter(organization=organization)
