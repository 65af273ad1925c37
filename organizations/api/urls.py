from rest_framework.routers import SimpleRouter

from .views import ApiKeyViewSet

# No trailing slash: the documented paths are /api/v1/api-keys, /api/v1/contacts/{id}, ...
router = SimpleRouter(trailing_slash=False)
router.register("api-keys", ApiKeyViewSet, basename="api-key")
urlpatterns = router.urls
