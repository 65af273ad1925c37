"""Secrets out of log lines: the filter config/settings/logging.py puts on every handler.

Paths carry secrets by design — carrier and partner webhook URLs authenticate by a secret path segment
(/webhooks/sinch/<secret>/…, /integrations/nice/<secret>/…, /integrations/ringcentral/<secret>/…) and a
password-reset link holds its token (/reset/<uid>/<token>/) — and Django logs paths (django.request's
"Not Found: /webhooks/sinch/…"). So every record is rewritten before any handler formats it: the message
with its arguments, the exception text and the stack. Patterns, not known values: a secret that was never
stored (a wrong guess, an old rotated one) is hidden as well. See docs/security.md.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Webhook endpoints of every carrier and partner: /webhooks/<partner>/<secret>, /integrations/<partner>/<secret>.
    (re.compile(r"(/(?:webhooks|integrations)/[A-Za-z0-9_.-]+/)[^/\s?#\"'<>]+"), rf"\g<1>{REDACTED}"),
    # Password reset: /reset/<uidb64>/<token>/ (Django swaps the token for "set-password" after the first visit).
    (re.compile(r"(/reset/[A-Za-z0-9_-]+/)(?!set-password\b)[^/\s?#\"'<>]+"), rf"\g<1>{REDACTED}"),
    # Credentials in headers that got logged: Authorization values.
    (re.compile(r"\b(Bearer|Api-Key|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE), rf"\g<1> {REDACTED}"),
    # Our API keys wherever they appear (organizations.models.ApiKey: "pk_" + 43 url-safe characters).
    (re.compile(r"\bpk_[A-Za-z0-9_-]{20,}"), f"pk_{REDACTED}"),
    # Secret-looking query parameters.
    (
        re.compile(
            r"([?&](?:token|access_token|secret|api_key|apikey|key|password|signature|code)=)[^&\s#\"'<>]+",
            re.IGNORECASE,
        ),
        rf"\g<1>{REDACTED}",
    ),
)


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecretsFilter(logging.Filter):
    """Rewrites the record in place (message, exception and stack text) and lets it through.

    In place, so a handler added later to the same logger (a test's capture, an agent's) sees the redacted
    record too once any configured handler has run; every configured handler carries this filter."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_parley_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to logging's own error report
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        # django.request attaches the request: formatters that print it would show the raw path.
        request = getattr(record, "request", None)
        if request is not None:
            record.request = _RedactedRequest(request)  # type: ignore[attr-defined]
        record._parley_redacted = True
        return True


class _RedactedRequest:
    """The request a django.request record carries, with path, full path and repr redacted."""

    def __init__(self, request):
        self._request = request

    def __getattr__(self, name):
        value = getattr(self._request, name)
        if name in ("path", "path_info") and isinstance(value, str):
            return redact(value)
        return value

    def get_full_path(self, *args, **kwargs):
        return redact(self._request.get_full_path(*args, **kwargs))

    def build_absolute_uri(self, *args, **kwargs):
        return redact(self._request.build_absolute_uri(*args, **kwargs))

    def __repr__(self):
        return redact(repr(self._request))

    __str__ = __repr__


def install(handlers: list[logging.Handler] | None = None) -> None:
    """Adds the filter to handlers that lack it (default: the root logger's), e.g. after Celery replaced
    them with its own."""
    for handler in handlers if handlers is not None else logging.getLogger().handlers:
        if not any(isinstance(f, RedactSecretsFilter) for f in handler.filters):
            handler.addFilter(RedactSecretsFilter())
