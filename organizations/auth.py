"""API authentication, the tenant of a request, scopes and per-key throttling. See docs/api.md.

Every API request ends up with `request.organization` (the caller's tenant) — from the API key, or for
a session user from `X-Organization-Id` else their first membership — and, for session users,
`request.membership`. Every queryset of the API is filtered by `request.organization`.

Using it from another app's views (the shortener's, for instance):

    from organizations.auth import HasScope
    from organizations.models import ApiKeyScope

    class LinkViewSet(viewsets.ModelViewSet):
        # members, full-scope keys and "shortener" keys; any other view refuses a shortener key.
        permission_classes = [HasScope.of(ApiKeyScope.SHORTENER)]
        def get_queryset(self):
            return Link.objects.filter(organization=self.request.organization)
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.throttling import SimpleRateThrottle

from config.client_ip import client_ip

from . import keyfailures
from .models import ApiKey, ApiKeyScope, Membership, Role

# Accepted `Authorization` schemes, lower-cased: "Bearer <key>" and "Api-Key <key>".
AUTH_SCHEMES = frozenset({"bearer", "api-key"})
ORGANIZATION_HEADER = "HTTP_X_ORGANIZATION_ID"
# last_used_at is informational: writing it on every call would turn each read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer <key>` (or `Api-Key <key>`). One indexed SELECT per request.

    request.user is AnonymousUser (a key belongs to the organization, not to a person), request.auth is
    the ApiKey and request.organization its organization.
    """

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, raw_key = header.partition(" ")
        if scheme.lower() not in AUTH_SCHEMES:
            return None
        raw_key = raw_key.strip()
        if not raw_key:
            raise exceptions.AuthenticationFailed("No API key in the Authorization header.")
        ip = client_ip(request)
        wait = keyfailures.retry_after(ip)
        if wait is not None:
            # Refused before the lookup: a right guess from a blocked address is not confirmed either.
            raise exceptions.Throttled(wait=wait, detail="Too many failed API-key attempts from this address.")
        key = (
            ApiKey.objects.active()
            .select_related("organization")
            .filter(key_hash=ApiKey.hash(raw_key), organization__is_active=True)
            .first()
        )
        if key is None:
            keyfailures.record_failure(ip)
            # Never echo the key back: it is a secret even when wrong.
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        _touch_last_used(key)
        _set_tenant(request, organization=key.organization, membership=None)
        return (AnonymousUser(), key)

    def authenticate_header(self, request):
        # Makes DRF answer 401 (not 403) to a request without credentials.
        return 'Bearer realm="api"'


def _touch_last_used(key: ApiKey) -> None:
    """At most one UPDATE per key per minute: skipped in Python when the loaded value is fresh, and
    the conditional WHERE keeps concurrent requests from all writing it."""
    now = timezone.now()
    cutoff = now - LAST_USED_RESOLUTION
    if key.last_used_at is not None and key.last_used_at > cutoff:
        return
    from django.db.models import Q

    ApiKey.objects.filter(pk=key.pk).filter(Q(last_used_at__isnull=True) | Q(last_used_at__lte=cutoff)).update(
        last_used_at=now
    )
    key.last_used_at = now


def _set_tenant(request, *, organization, membership) -> None:
    request.organization = organization
    request.membership = membership
    # Also on the Django request, for code that only sees that one (middleware, logging).
    django_request = getattr(request, "_request", None)
    if django_request is not None:
        django_request.organization = organization
        django_request.membership = membership


def membership_for(user, organization_id: object = None) -> Membership | None:
    """The membership a session user acts through: the one for `organization_id`, else their first.

    Returns None for an id that is not one of the user's organizations (the caller answers 403)."""
    if not getattr(user, "is_authenticated", False):
        return None
    memberships = Membership.objects.select_related("organization").filter(user=user, organization__is_active=True)
    if organization_id not in (None, ""):
        try:
            org_id = int(str(organization_id))
        except ValueError:
            return None
        return memberships.filter(organization_id=org_id).first()
    return memberships.order_by("id").first()


def resolve_session_tenant(request) -> None:
    """Sets request.organization/membership for a session user (no-op when an API key already did)."""
    if getattr(request, "organization", None) is not None or isinstance(request.auth, ApiKey):
        return
    membership = membership_for(request.user, request.META.get(ORGANIZATION_HEADER))
    _set_tenant(
        request,
        organization=membership.organization if membership else None,
        membership=membership,
    )


class IsOrganizationMember(BasePermission):
    """The default permission of the API: the caller acts for an organization.

    API keys of a restricted scope are refused here; views that serve such a scope use HasScope.of()."""

    allowed_scopes: frozenset[str] = frozenset({ApiKeyScope.ALL})
    message = "You are not a member of this organization."

    def has_permission(self, request, view):
        resolve_session_tenant(request)
        if getattr(request, "organization", None) is None:
            if isinstance(request.auth, ApiKey) or not getattr(request.user, "is_authenticated", False):
                return False
            if request.META.get(ORGANIZATION_HEADER):
                self.message = "X-Organization-Id is not one of your organizations."
            return False
        if isinstance(request.auth, ApiKey) and request.auth.scope not in self.allowed_scopes:
            self.message = f"This API key's scope ({request.auth.scope}) does not allow this endpoint."
            return False
        return True


class HasScope(IsOrganizationMember):
    """IsOrganizationMember that also admits API keys of the given scopes.

    `permission_classes = [HasScope.of(ApiKeyScope.SHORTENER)]` — session members and full-scope keys
    always pass; a key of another scope gets 403."""

    @classmethod
    def of(cls, *scopes: str) -> type[HasScope]:
        allowed = frozenset({ApiKeyScope.ALL, *scopes})
        return type(f"HasScope_{'_'.join(sorted(scopes))}", (cls,), {"allowed_scopes": allowed})


class IsOrganizationAdmin(IsOrganizationMember):
    """Session users with the admin role, or full-scope API keys (for managing API keys)."""

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        if isinstance(request.auth, ApiKey):
            return True
        membership = getattr(request, "membership", None)
        if membership is None or membership.role != Role.ADMIN:
            self.message = "Only organization admins may do this."
            return False
        return True


class IsOrganizationAdminOrReadOnly(IsOrganizationAdmin):
    """Read by any member; changed only by admins (and full-scope API keys): the organization's own
    configuration (settings, lines), which the web app's settings pages also leave to admins."""

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS:
            return IsOrganizationMember.has_permission(self, request, view)
        return super().has_permission(request, view)


class ApiDocsAccess(BasePermission):
    """/api/schema/ and /api/docs/: everyone, or with settings.API_DOCS_REQUIRE_LOGIN a signed-in user or
    an API key (read per request, so it is a deployment switch and tests can flip it)."""

    def has_permission(self, request, view):
        if not getattr(settings, "API_DOCS_REQUIRE_LOGIN", False):
            return True
        return isinstance(request.auth, ApiKey) or bool(getattr(request.user, "is_authenticated", False))


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Per-API-key request rate (REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["api_key"]), counted in Redis.

    Session users are not throttled by it (they are people clicking, and the web app is ours)."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, ApiKey):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
