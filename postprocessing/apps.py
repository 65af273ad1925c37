from django.apps import AppConfig


class PostprocessingConfig(AppConfig):
    name = "postprocessing"
    verbose_name = "Post-processing"

    def ready(self) -> None:
        # Processors register themselves on import; importing them here makes the registry complete
        # in every process (web, worker, commands) before the first drain.
        from . import processors  # noqa: F401
