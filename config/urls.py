from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from config.health import healthz, readyz


class ApiDocsView(SpectacularSwaggerView):
    """The Swagger page: with API_DOCS_REQUIRE_LOGIN a visitor who is not signed in is sent to the login
    page (the schema it loads answers 401 to them anyway: organizations.auth.ApiDocsAccess)."""

    permission_classes = [AllowAny]  # checked in get(), to redirect a browser rather than answer 401
    schema = None  # a page, not an API endpoint

    def get(self, request, *args, **kwargs):
        if settings.API_DOCS_REQUIRE_LOGIN and not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return super().get(request, *args, **kwargs)


urlpatterns = [
    # Probes and metrics first (docs/operations.md).
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("", include("django_prometheus.urls")),  # GET /metrics (keep it off the public internet)
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", ApiDocsView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("config.api_urls")),
    path("webhooks/", include("carriers.urls")),  # carrier callbacks (docs/carriers.md)
    path("integrations/", include("integrations.urls")),  # partner webhooks (docs/integrations.md)
    path("", include("webapp.urls")),  # login, password reset, home (specific paths only, no catch-all)
]

handler404 = "organizations.api.errors.not_found_handler"
