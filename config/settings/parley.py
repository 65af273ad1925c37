"""Parley's own settings: public URLs, the sandbox carrier, the short domain."""

from .env import env

# Where carriers reach our webhooks (callback_url is built from it).
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
# The sandbox carrier (python -m carriers.sandbox) that make run, tests and benchmarks send to.
SANDBOX_CARRIER_URL = env("SANDBOX_CARRIER_URL", default="http://127.0.0.1:8090")
# Short-link domain (carriers block public shorteners, so it is our own).
SHORT_LINK_DOMAIN = env("SHORT_LINK_DOMAIN", default="prly.localhost:8000")
SHORT_LINK_SCHEME = env("SHORT_LINK_SCHEME", default="http")
# Default quiet hours for blasts, in the recipient's local time, when an organization sets none.
DEFAULT_QUIET_HOURS = (env("QUIET_HOURS_START", default="21:00"), env("QUIET_HOURS_END", default="08:00"))
