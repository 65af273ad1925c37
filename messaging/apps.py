from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"

    def ready(self):
        # The send pipeline's settings cache drops entries when a line/account/organization changes.
        from .cache import connect_signals

        connect_signals()
