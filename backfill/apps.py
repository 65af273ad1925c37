from django.apps import AppConfig


class BackfillConfig(AppConfig):
    name = "backfill"
    verbose_name = "Status backfill"
