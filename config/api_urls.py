"""Every /api/v1/ route, gathered from the apps' api packages."""

from django.urls import include, path

urlpatterns = [
    path("", include("messaging.api.urls")),
    path("", include("organizations.api.urls")),
    path("", include("backfill.api")),
    path("", include("shortener.api.urls")),  # /links, /blasts/{id}/clicks (docs/shortener.md)
    path("", include("carriers.api.urls")),  # /carrier-accounts with webhook health (docs/carriers.md)
]
