from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"

    def ready(self):
        # The send pipeline's settings cache drops entries when a line/account/organization changes.
        from .cache import connect_signals

        connect_signals()

        # Messaging's post-processing processors (conversation last message, number flags, blast
        # counters) register themselves on import: before the first drain in every process.
        from .processors import register

        register()
