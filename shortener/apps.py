from django.apps import AppConfig


class ShortenerConfig(AppConfig):
    name = "shortener"
