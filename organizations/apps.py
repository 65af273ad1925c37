from django.apps import AppConfig


class OrganizationsConfig(AppConfig):
    name = "organizations"
    verbose_name = "Organizations (tenants, members, API keys)"

    def ready(self):
        from .api import schema  # noqa: F401  (registers the OpenAPI auth extension)
