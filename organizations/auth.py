"""API authentication (per-organization API keys) and the organization-member permission.

Filled in by the API work; the seam: request.organization is the caller's tenant.
"""

from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        return None


class IsOrganizationMember(BasePermission):
    def has_permission(self, request, view):
        return bool(getattr(request, "organization", None))
