from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import ApiKeyViewSet, OrganizationSettingsView

# No trailing slash: the documented paths are /api/v1/api-keys, /api/v1/contacts/{id}, ...
router = SimpleRouter(trailing_slash=False)
router.register("api-keys", ApiKeyViewSet, basename="api-key")
urlpatterns = [
    path("organization", OrganizationSettingsView.as_view(), name="organization-settings"),
    *router.urls,
]
