"""Carriers test fixtures: the sandbox carrier (real HTTP), an account and line on it, webhook helpers."""

from __future__ import annotations

import pytest

from tests.sandbox import callback_recorder, sandbox_carrier  # noqa: F401  (fixtures)
from tests.webhooks import (  # noqa: F401  (fixtures and helpers, shared with tests/messaging)
    account,
    fresh_webhook_caches,
    line,
    post_webhook,
    recipient_report,
    wsgi_post,
)


@pytest.fixture(autouse=True)
def _fresh_caches(request):
    request.getfixturevalue("fresh_webhook_caches")
