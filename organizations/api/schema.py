"""drf-spectacular extensions: the API key scheme, so /api/docs/ offers "Authorize" with a key.

Imported by OrganizationsConfig.ready() (extensions register on import)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "organizations.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <key>` (also `Api-Key <key>`). Keys: /api/v1/api-keys.",
        }
