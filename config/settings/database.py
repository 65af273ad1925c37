from .env import env

# Persistent connections are mandatory on hot paths: measured here, a connection per request cuts a
# one-query view from ~1,100 to ~200 requests/s. CONN_MAX_AGE keeps one per thread/process for reuse.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/parley"),
}
# A Unix-socket URL (the embedded server's: postgresql://postgres@/parley?host=/path/to/socket-dir) is
# parsed by django-environ into OPTIONS["host"]; move it to HOST, where Django and every DSN built from
# the settings (the migration tool, test fixtures, workers) look for it.
if not DATABASES["default"].get("HOST") and "host" in DATABASES["default"].get("OPTIONS", {}):
    DATABASES["default"]["HOST"] = DATABASES["default"]["OPTIONS"].pop("host")
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=600)
# Off for requests (Django's default): a health check is one "SELECT 1" round trip before the first
# query of every request, measured at ~0.25 ms of CPU on a ~0.5 ms webhook request. A connection the
# server dropped fails one request (webhooks answer 503 and the carrier retries) and Django closes it
# at the end of that request. Celery tasks check theirs before each task (config/celery.py).
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DATABASE_CONN_HEALTH_CHECKS", default=False)
# Behind PgBouncer in transaction mode (docs/scaling.md) consecutive transactions of one Django connection
# may run on different server connections: a server-side cursor (QuerySet.iterator(), DECLARE … WITH HOLD
# in autocommit) would be fetched from a connection that never declared it. Django then reads iterator()
# results client-side in chunks. Prepared statements need nothing here: Django's psycopg backend sets
# prepare_threshold=None, which also makes a `prepare=True` execute a plain one (messaging/services/sql.py).
DATABASE_TRANSACTION_POOLING = env.bool("DATABASE_TRANSACTION_POOLING", default=False)
if DATABASE_TRANSACTION_POOLING:
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
DATABASES["default"].setdefault("TEST", {})
if env("DATABASE_TEST_NAME", default=""):
    DATABASES["default"]["TEST"]["NAME"] = env("DATABASE_TEST_NAME")

# The v1 database, read-only source of the migration tool (migration_v1). Absent unless configured.
if env("V1_DATABASE_URL", default=""):
    DATABASES["v1"] = env.db_url("V1_DATABASE_URL")
    DATABASES["v1"]["CONN_MAX_AGE"] = 0
    DATABASES["v1"]["TEST"] = {"MIRROR": None, "NAME": env("V1_DATABASE_TEST_NAME", default=None)}

DATABASE_ROUTERS = ["migration_v1.routers.V1Router"]
