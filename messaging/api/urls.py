from rest_framework.routers import SimpleRouter

from .conversations import ConversationViewSet
from .views import BlastViewSet, ContactViewSet, LineViewSet, OptOutViewSet

# No trailing slash: the documented paths are /api/v1/contacts, /api/v1/contacts/{id}, ...
router = SimpleRouter(trailing_slash=False)
router.register("lines", LineViewSet, basename="line")
router.register("contacts", ContactViewSet, basename="contact")
router.register("conversations", ConversationViewSet, basename="conversation")
router.register("opt-outs", OptOutViewSet, basename="opt-out")
router.register("blasts", BlastViewSet, basename="blast")
urlpatterns = router.urls
