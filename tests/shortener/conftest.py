import pytest
from django.test import Client

from shortener import conf
from shortener.cache import redis_client
from tests.messages import blast_with_messages  # noqa: F401  (fixture: the link-attribution processor's test)
from tests.wsgi import WsgiClient

SHORT_HOST = "prly.localhost:8000"


@pytest.fixture(autouse=True)
def _clean_short_keys(settings):
    # Our keys only (REDIS_KEY_PREFIX is per engineer), so other suites sharing the server are untouched.
    settings.SHORT_LINK_DOMAIN = SHORT_HOST
    # Keys apart from a benchmark or dev server sharing REDIS_URL / REDIS_KEY_PREFIX (whose cached links
    # and click buffer the cleanup below would otherwise delete, and whose flusher would eat our clicks).
    settings.REDIS_KEY_PREFIX = f"{settings.REDIS_KEY_PREFIX}-tests"
    client = redis_client()
    keys = list(client.scan_iter(f"{conf.redis_key_prefix()}:*", count=1000))
    if keys:
        client.delete(*keys)
    yield


@pytest.fixture(params=["django", "lane"])
def short_client(request):
    """Requests to the short host through Django's test client (the middleware route) and through the
    WSGI application with its short-link lane (shortener/wsgi.py): every redirect test runs on both."""
    if request.param == "lane":
        return WsgiClient(HTTP_HOST=SHORT_HOST)
    return Client(HTTP_HOST=SHORT_HOST)


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Runs on_commit callbacks (the Redis caching of new links) at the end of the block, as a commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def buffered_clicks() -> int:
    return redis_client().llen(conf.clicks_buffer_key())
