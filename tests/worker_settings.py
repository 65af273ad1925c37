"""Settings of the Celery worker that tests/worker.py starts: the project's, with a broker that hands a
killed worker's unacknowledged task to the next worker within seconds (5 s instead of the project's
30 s; the worker's heartbeat keeps what it holds, config/broker_heartbeat.py). Tests that measure the
project's own recovery start the worker with DJANGO_SETTINGS_MODULE=config.settings."""

from config.settings import *  # noqa: F401,F403
from config.settings import CELERY_BROKER_TRANSPORT_OPTIONS

CELERY_BROKER_TRANSPORT_OPTIONS = {
    **CELERY_BROKER_TRANSPORT_OPTIONS,
    "visibility_timeout": 5,
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
