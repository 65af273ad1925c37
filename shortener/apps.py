from django.apps import AppConfig


class ShortenerConfig(AppConfig):
    name = "shortener"

    def ready(self) -> None:
        from messaging.signals import contact_erased

        from .services.links import links_redact_for_contact

        contact_erased.connect(links_redact_for_contact, dispatch_uid="shortener.links_redact_for_contact")

        # Link attribution registers itself (post-processing registry) on import.
        from . import processors  # noqa: F401
