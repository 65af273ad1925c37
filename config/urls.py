from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("config.api_urls")),
    path("webhooks/", include("carriers.urls")),  # carrier callbacks (docs/carriers.md)
    path("integrations/", include("integrations.urls")),  # partner webhooks (docs/integrations.md)
    path("", include("webapp.urls")),  # login, password reset, home (specific paths only, no catch-all)
]

handler404 = "organizations.api.errors.not_found_handler"
