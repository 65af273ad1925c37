from django.urls import path

from . import views

app_name = "integrations"

urlpatterns = [
    path("nice/<str:secret>/events", views.nice_events, name="nice-events"),
    path("ringcentral/<str:secret>/webhook", views.ringcentral_webhook, name="ringcentral-webhook"),
]
