"""Security settings: the secret key, allowed hosts, HTTPS, cookies, login lockout, API docs access.

See docs/security.md. Production is told apart from a laptop by two things a deployer sets anyway:
DJANGO_DEBUG off (the default) with a real DJANGO_SECRET_KEY, and an https PUBLIC_BASE_URL, which turns
on HSTS, the HTTPS redirect and secure cookies unless each is set explicitly.
"""

from datetime import timedelta
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from .base import DEBUG
from .env import env
from .parley import PUBLIC_BASE_URL, SHORT_LINK_DOMAIN, SHORT_LINK_EXTRA_DOMAINS

# Known to everyone who has read this file: accepted only with DEBUG on. `make services` (config/embedded.py)
# writes a random key for the local checkout, and the test settings set their own.
DEV_SECRET_KEY = "dev-only-insecure-key-change-me-in-production-0123456789"  # noqa: S105
SECRET_KEY = env("DJANGO_SECRET_KEY", default=DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is not set and DEBUG is off: refusing to start with the published development key. "
        "Set DJANGO_SECRET_KEY to a long random value (python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
        "or DJANGO_DEBUG=1 on a development machine."
    )
# Key of the hash that keeps an erased contact's opt-out as proof without the number
# (messaging/services/erasure.py). Set it in production and never rotate it: a new key stops matching
# the erased opt-outs. Unset, it is derived from SECRET_KEY (fine on a laptop).
CONTACT_ERASURE_HASH_KEY = env("CONTACT_ERASURE_HASH_KEY", default="") or SECRET_KEY
# Keys that signed earlier sessions and reset links, accepted while they expire after a key rotation.
SECRET_KEY_FALLBACKS = env.list("DJANGO_SECRET_KEY_FALLBACKS", default=[])


def _host(url_or_host: str) -> str:
    """The host name of a URL or of a bare host[:port] (no port, lower case)."""
    if "//" not in url_or_host:
        url_or_host = f"//{url_or_host}"
    return (urlsplit(url_or_host).hostname or "").lower()


_PUBLIC = urlsplit(PUBLIC_BASE_URL)
PUBLIC_HOST = _host(PUBLIC_BASE_URL)
# ".localhost" is localhost and every name under it (they resolve to loopback: RFC 6761).
LOCAL_HOSTS = [".localhost", "127.0.0.1", "[::1]"]
SHORT_LINK_HOSTS = [_host(d) for d in [SHORT_LINK_DOMAIN, *SHORT_LINK_EXTRA_DOMAINS] if d]

# The hosts we answer for. Default: the public base URL's host and the short-link domains, plus the
# loopback names when the public URL is itself local (a laptop, `make run`). A wildcard is refused
# outside DEBUG: with "*" any Host header reaches the app (docs/security.md).
ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS",
    default=[
        PUBLIC_HOST,
        *(
            LOCAL_HOSTS
            if PUBLIC_HOST in ("127.0.0.1", "[::1]", "::1")
            or PUBLIC_HOST == "localhost"
            or PUBLIC_HOST.endswith(".localhost")
            else []
        ),
    ],
)
if not DEBUG and "*" in ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "DJANGO_ALLOWED_HOSTS may not contain '*' with DEBUG off: list the host names this app is served on."
    )
# Short-link hosts are always ours to answer (the redirect lane claims them by name).
ALLOWED_HOSTS = list(dict.fromkeys([*ALLOWED_HOSTS, *SHORT_LINK_HOSTS]))
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# HTTPS. On by default when the public base URL is https (a real deployment); a laptop on http keeps them
# off so `make run` works. Behind a TLS-terminating proxy set DJANGO_SECURE_PROXY_SSL_HEADER, e.g.
# "HTTP_X_FORWARDED_PROTO,https", or every request looks like plain http and is redirected forever.
_HTTPS = _PUBLIC.scheme == "https"
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=_HTTPS)
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=365 * 24 * 3600 if _HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=_HTTPS)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=_HTTPS)
_proxy_header = env.list("DJANGO_SECURE_PROXY_SSL_HEADER", default=[])
SECURE_PROXY_SSL_HEADER = (_proxy_header[0], _proxy_header[1]) if len(_proxy_header) == 2 else None
# Health checks of a load balancer speak plain http to the app: exempt them from the redirect.
SECURE_REDIRECT_EXEMPT = [r"^(healthz|readyz)/?$"]
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=_HTTPS)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=_HTTPS)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Clients behind this many reverse proxies: the client IP is then taken from X-Forwarded-For, counted from
# the right (config/client_ip.py). 0 trusts only the socket address (REMOTE_ADDR).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# Login lockout (django-axes) on /login/ and /admin/login/. Failed attempts are kept in PostgreSQL
# (the database handler: shared by every web machine, survives restarts, listed in the admin); after
# AXES_FAILURE_LIMIT failures of one username from one IP, that pair is refused with 429 for the cool-off.
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
# Username and IP together: a stranger cannot lock a user out from elsewhere by failing on purpose.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "config.client_ip.client_ip"
AXES_LOCKOUT_TEMPLATE = "webapp/locked_out.html"
# No row per successful login (the database handler's access log): failures are what lockout needs.
AXES_DISABLE_ACCESS_LOG = True

# Failed API-key attempts per client IP (organizations/auth.py): past the limit within the window the IP gets
# 429 with Retry-After until the window ends, counted in Redis.
API_KEY_FAILURE_LIMIT = env.int("API_KEY_FAILURE_LIMIT", default=20)
API_KEY_FAILURE_WINDOW_SECONDS = env.int("API_KEY_FAILURE_WINDOW_SECONDS", default=300)
