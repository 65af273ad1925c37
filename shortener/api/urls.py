from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import BlastClicksView, LinkViewSet

# No trailing slash, like the rest of /api/v1 (docs/api.md).
router = SimpleRouter(trailing_slash=False)
router.register("links", LinkViewSet, basename="link")
urlpatterns = [
    path("blasts/<int:blast_id>/clicks", BlastClicksView.as_view(), name="blast-clicks"),
    *router.urls,
]
