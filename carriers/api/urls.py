from rest_framework.routers import SimpleRouter

from .views import CarrierAccountViewSet

# No trailing slash, as every router of the API (docs/api.md).
router = SimpleRouter(trailing_slash=False)
router.register("carrier-accounts", CarrierAccountViewSet, basename="carrier-account")
urlpatterns = router.urls
