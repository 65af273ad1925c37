from rest_framework.routers import SimpleRouter

from .conversations import ConversationViewSet
from .sending import urlpatterns as sending_urls
from .views import BlastViewSet, ContactViewSet, LineViewSet, OptOutViewSet

# No trailing slash: the documented paths are /api/v1/contacts, /api/v1/contacts/{id}, ...
router = SimpleRouter(trailing_slash=False)
router.register("lines", LineViewSet, basename="line")
router.register("contacts", ContactViewSet, basename="contact")
router.register("conversations", ConversationViewSet, basename="conversation")
router.register("opt-outs", OptOutViewSet, basename="opt-out")
router.register("blasts", BlastViewSet, basename="blast")
# The send pipeline's endpoints (messaging/api/sending.py) first: POST conversations/{id}/messages.
urlpatterns = sending_urls + router.urls
