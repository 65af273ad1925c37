from config.queues import TASK_ROUTES, Queue, broker_settings

from .env import env

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = Queue.DEFAULT.value
CELERY_TASK_ROUTES = TASK_ROUTES
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# Redis broker (docs/recovery.md): a dead worker's unacknowledged tasks are handed to a live worker once
# their delivery is older than visibility_timeout; a live worker re-scores what it holds (running,
# reserved, waiting for a countdown) every third of it (config/broker_heartbeat.py), so a short timeout
# is safe for long tasks and long countdowns alike. Live workers look for expired deliveries every
# unacked_restore_interval seconds (throttle 1: every look scans). The restore mutex expires quickly
# so that a worker killed while restoring does not block the others for kombu's default 5 minutes.
# Worst case after a SIGKILL: 30 + 5 s. RabbitMQ ignores these: it redelivers on connection loss.
_REDIS_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=30),
    "unacked_restore_interval": 5,
    "unacked_restore_throttle": 1,
    "unacked_mutex_expire": 30,
}
# RabbitMQ (CELERY_BROKER_URL=amqp://…): quorum queues, publisher confirms, per-consumer prefetch
# (config/queues.broker_settings, docs/scaling.md). The Redis options above stay in the dict there:
# py-amqp ignores them, and the countdown cap in messaging/tasks.py reads the visibility timeout.
_BROKER = broker_settings(CELERY_BROKER_URL, _REDIS_TRANSPORT_OPTIONS)
CELERY_BROKER_TRANSPORT_OPTIONS = _BROKER["broker_transport_options"]
if "task_queues" in _BROKER:
    CELERY_TASK_QUEUES = _BROKER["task_queues"]
    CELERY_WORKER_DETECT_QUORUM_QUEUES = _BROKER["worker_detect_quorum_queues"]
    CELERY_TASK_CREATE_MISSING_QUEUE_TYPE = _BROKER["task_create_missing_queue_type"]
    CELERY_TASK_CREATE_MISSING_QUEUE_EXCHANGE_TYPE = _BROKER["task_create_missing_queue_exchange_type"]
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_PREFETCH_MULTIPLIER", default=4)
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Celery's Django fixup closes every database connection before and after each task unless this is
# set: one new PostgreSQL connection per task, ~10 ms each (measured: a single-message prepare task
# 16 ms → ~5 ms in a prefork worker). Connections are reused; config/celery.py applies Django's own
# CONN_MAX_AGE / CONN_HEALTH_CHECKS before each task, as a request would.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis key prefix for our own keys (caches, rate-limit buckets), so tests can use their own.
REDIS_KEY_PREFIX = env("REDIS_KEY_PREFIX", default="parley")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_KEY_PREFIX,
        "TIMEOUT": 300,
    }
}
