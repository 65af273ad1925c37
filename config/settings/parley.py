"""Parley's own settings: public URLs, the sandbox carrier, the short domain."""

from datetime import timedelta

from config.embedded import DATA_DIR

from .env import env

# Where carriers reach our webhooks (callback_url is built from it).
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
# The sandbox carrier (python -m carriers.sandbox) that make run, tests and benchmarks send to.
SANDBOX_CARRIER_URL = env("SANDBOX_CARRIER_URL", default="http://127.0.0.1:8090")
# Short-link domain (carriers block public shorteners, so it is our own).
SHORT_LINK_DOMAIN = env("SHORT_LINK_DOMAIN", default="prly.localhost:8000")
SHORT_LINK_SCHEME = env("SHORT_LINK_SCHEME", default="http")
# Organizations' own short domains, served like SHORT_LINK_DOMAIN (each needs DNS and a certificate).
SHORT_LINK_EXTRA_DOMAINS = env.list("SHORT_LINK_EXTRA_DOMAINS", default=[])
# A request body sent without a Content-Length (chunked, HTTP/2 streams) is read to its end before
# Django sees it (config/lanes.py UnsizedBodies); past this many bytes it is answered 413.
UNSIZED_BODY_MAX_SIZE = env.int("UNSIZED_BODY_MAX_SIZE", default=50 * 1024 * 1024)
# WSGI lanes in front of Django (config/lanes.py; config/wsgi.py puts them there), outermost first: each
# answers its own requests before Django's request path and hands every other one on. Import strings, so
# config, at the bottom of the layers, names no app (docs/architecture.md, "Lanes").
WSGI_LANES = ["shortener.wsgi.ShortLinkLane", "carriers.wsgi.WebhookFastLane"]
# Default quiet hours for blasts, in the recipient's local time, when an organization sets none.
DEFAULT_QUIET_HOURS = (env("QUIET_HOURS_START", default="21:00"), env("QUIET_HOURS_END", default="08:00"))

# Status backfill (docs/backfill.md). Outbound messages still sending/sent this long after creation are
# handed to the periodic reconciler ("backfill.reconcile" in config/beat.py, every 10 minutes).
BACKFILL_RECONCILE_AFTER = timedelta(seconds=env.int("BACKFILL_RECONCILE_AFTER_SECONDS", default=3600))
# Messages per line per pass (small: the pass is paced at the account's backfill_rate) and lines per pass.
BACKFILL_RECONCILE_BATCH = env.int("BACKFILL_RECONCILE_BATCH", default=500)
BACKFILL_RECONCILE_LINES = env.int("BACKFILL_RECONCILE_LINES", default=200)
BACKFILL_RECONCILE_RUNS_KEEP_DAYS = env.int("BACKFILL_RECONCILE_RUNS_KEEP_DAYS", default=30)
# How long a carrier keeps delivery reports: a message it has no record of past this is marked unknown.
BACKFILL_CARRIER_RETENTION_DAYS = {
    "sinch": env.int("BACKFILL_SINCH_RETENTION_DAYS", default=14),
    "sandbox": env.int("BACKFILL_SINCH_RETENTION_DAYS", default=14),
    "default": 14,
}
# One task runs a backfill for at most this long, then re-enqueues itself to resume from its cursor
# (a worker's slot is not held for hours). Longer than the Redis broker's visibility timeout (30 s):
# the worker heartbeats the deliveries it holds (config/broker_heartbeat.py), so a running task is
# never handed out again while its worker lives.
BACKFILL_TASK_TIME_BUDGET = env.int("BACKFILL_TASK_TIME_BUDGET_SECONDS", default=600)
# Mail of the web app (password reset). Never printed to the console: a reset link is a credential, and
# console output is the log. Locally each message is a file under .data/mail/; a deployment sets EMAIL_URL
# (smtp://user:password@host:587, django-environ) or EMAIL_BACKEND.
if env("EMAIL_URL", default=""):
    globals().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.filebased.EmailBackend")
    EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=str(DATA_DIR / "mail"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Parley <no-reply@parley.localhost>")
