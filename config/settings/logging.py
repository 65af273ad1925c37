from .env import env

# Every handler carries the redaction filter (config/redaction.py): paths with webhook secrets and reset
# tokens are logged by Django itself. A handler added here must list "redact_secrets" too
# (tests/security/test_logs.py checks every configured handler).
# Lines are JSON objects with the request id (config/logs.py, docs/operations.md); LOG_FORMAT=plain for a
# readable line in development. The context filter runs after the redaction filter.
LOG_FORMAT = env("LOG_FORMAT", default="json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_secrets": {"()": "config.redaction.RedactSecretsFilter"},
        "context": {"()": "config.logs.ContextFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "config.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain" if LOG_FORMAT == "plain" else "json",
            "filters": ["redact_secrets", "context"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
