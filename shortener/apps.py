from django.apps import AppConfig


class ShortenerConfig(AppConfig):
    name = "shortener"

    def ready(self) -> None:
        from messaging.signals import contact_erased

        from .services.links import links_redact_for_contact

        contact_erased.connect(links_redact_for_contact, dispatch_uid="shortener.links_redact_for_contact")

        # The send pipeline's link step: messaging declares the port, the shortener fills it.
        from messaging.links import LinkStep, link_step_register

        from .services.bodies import links_preview_savings, links_shorten_for_messages
        from .services.links import org_short_domain

        link_step_register(
            LinkStep(
                shorten_for_messages=links_shorten_for_messages,
                preview_savings=links_preview_savings,
                short_domain=org_short_domain,
            )
        )

        # Link attribution registers itself (post-processing registry) on import.
        from . import processors  # noqa: F401
