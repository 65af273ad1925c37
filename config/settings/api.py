from .env import env

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "organizations.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["organizations.auth.IsOrganizationMember"],
    "DEFAULT_SCHEMA_CLASS": "organizations.api.schema.ParleyAutoSchema",
    # JSON with a nesting bound (organizations/api/parsers.py); forms as DRF's defaults.
    "DEFAULT_PARSER_CLASSES": [
        "organizations.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "organizations.api.errors.exception_handler",
    # Every view is throttled per API key unless it says otherwise (session users are not counted).
    "DEFAULT_THROTTLE_CLASSES": ["organizations.auth.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": "6000/min"},
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Parley API",
    "DESCRIPTION": "Business texting: lines, contacts, conversations, blasts, opt-outs and short links.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the app's own static files (drf-spectacular-sidecar), not a CDN: offline-proof.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # /api/schema/ and /api/docs/: open unless API_DOCS_REQUIRE_LOGIN (checked per request, config/urls.py).
    "SERVE_PERMISSIONS": ["organizations.auth.ApiDocsAccess"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Request bodies are documented as JSON only. DRF's form parsers still read form posts (the browsable
    # API, quick curl tests), but a form cannot carry the nested objects several endpoints take, so they
    # are not what clients should write against. Operations that take other types say so (contact import).
    "PARSER_WHITELIST": ["organizations.api.parsers.BoundedJSONParser"],
}

# Require a signed-in user (session) or an API key for /api/docs/ and /api/schema/ (docs/security.md).
API_DOCS_REQUIRE_LOGIN = env.bool("API_DOCS_REQUIRE_LOGIN", default=False)
