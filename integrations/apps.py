from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Partner integrations"

    def ready(self) -> None:
        # The post-processing processor registers itself on import, without a rank, so it runs after
        # messaging's and the shortener's ranked ones: message.received / message.sent fan out to our tasks.
        from . import processors  # noqa: F401
        from .receivers import connect

        # A closed conversation or an opted-out contact ends its NICE chat (messaging's signals); a
        # membership or user change re-syncs the organization's RingCentral teams.
        connect()
