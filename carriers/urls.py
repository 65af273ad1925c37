"""Webhook URLs, included at /webhooks/ by config/urls.py."""

from django.urls import path

from . import views

app_name = "carriers"

urlpatterns = [
    path("sinch/<str:secret>/delivery", views.sinch_delivery, name="sinch-delivery"),
    path("sinch/<str:secret>/inbound", views.sinch_inbound, name="sinch-inbound"),
]
