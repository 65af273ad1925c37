from django.apps import AppConfig


class MigrationV1Config(AppConfig):
    name = "migration_v1"
