"""Celery queues, declared once and split by workload, and routing by task-name prefix."""

from enum import StrEnum


class Queue(StrEnum):
    PREPARE = "prepare"  # queue-time preparation of messages and blasts
    SEND = "send"  # only the carrier call
    WEBHOOKS = "webhooks"  # applying stored carrier webhooks
    POSTPROCESSING = "postprocessing"  # the post-processing outbox drain
    DEFAULT = "default"  # small housekeeping
    BULK = "bulk"  # long jobs: backfill, recompute, migration


# Task names are explicit dotted strings ("messaging.send_batch"); routing by name, so a task's queue
# is visible here in one place, and only here: Celery deprecates the `queue` task attribute
# (CDeprecationWarning), so tasks never pass queue= to their decorator; add a route instead.
TASK_ROUTES = {
    "messaging.prepare_*": {"queue": Queue.PREPARE.value},
    "messaging.send_*": {"queue": Queue.SEND.value},
    "messaging.release_*": {"queue": Queue.DEFAULT.value},
    "carriers.*": {"queue": Queue.WEBHOOKS.value},
    "postprocessing.*": {"queue": Queue.POSTPROCESSING.value},
    "shortener.*": {"queue": Queue.DEFAULT.value},
    "backfill.*": {"queue": Queue.BULK.value},
    "bulk.*": {"queue": Queue.BULK.value},
    "integrations.*": {"queue": Queue.DEFAULT.value},
}

ALL_QUEUES = ",".join(q.value for q in Queue)
