"""Settings of the Celery worker that tests/worker.py starts: the project's, plus a broker that hands a
killed worker's unacknowledged task to the next worker within seconds (kombu sweeps for expired
unacked messages every interval × throttle seconds: 100 s by default)."""

from config.settings import *  # noqa: F401,F403
from config.settings import CELERY_BROKER_TRANSPORT_OPTIONS

CELERY_BROKER_TRANSPORT_OPTIONS = {
    **CELERY_BROKER_TRANSPORT_OPTIONS,
    "visibility_timeout": 5,
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
