from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = "Operations: metrics"

    def ready(self) -> None:
        from .metrics import register

        register()
