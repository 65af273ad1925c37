"""Celery queues, declared once and split by workload, and routing by task-name prefix.

On RabbitMQ the queues are quorum queues (replicated, durable; docs/scaling.md): `broker_settings` gives
the Celery settings that differ by broker, so the settings module and the tests (which switch a
process's broker) apply the same ones.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


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
    "carriers.prune_*": {"queue": Queue.BULK.value},  # before carriers.*: not on the apply's queue
    "carriers.*": {"queue": Queue.WEBHOOKS.value},
    "postprocessing.*": {"queue": Queue.POSTPROCESSING.value},
    "shortener.*": {"queue": Queue.DEFAULT.value},
    "backfill.*": {"queue": Queue.BULK.value},
    "bulk.*": {"queue": Queue.BULK.value},
    "integrations.*": {"queue": Queue.DEFAULT.value},
}

ALL_QUEUES = ",".join(q.value for q in Queue)


AMQP_SCHEMES = frozenset({"amqp", "amqps", "pyamqp"})


def is_amqp(broker_url: str) -> bool:
    return broker_url.split(":", 1)[0].lower() in AMQP_SCHEMES


def amqp_queues() -> list:
    """Every queue of the enum as a RabbitMQ quorum queue, each bound to a topic exchange of its own name.

    Topic, not direct: Celery delays a countdown on quorum queues in the broker ("native delayed
    delivery": a chain of TTL queues feeding a `celery_delayed_delivery` exchange that re-routes on
    `#.<routing key>`), which only works through topic or fanout exchanges; with a direct exchange the
    worker would hold every countdown task in memory until its ETA, blocking its prefetch slots.
    """
    from kombu import Exchange
    from kombu import Queue as KombuQueue

    return [
        KombuQueue(
            q.value,
            Exchange(q.value, type="topic"),
            routing_key=q.value,
            queue_arguments={"x-queue-type": "quorum"},
        )
        for q in Queue
    ]


def broker_settings(broker_url: str, transport_options: dict[str, Any]) -> dict[str, Any]:
    """The Celery settings (lower-case names, as app.conf has them) that depend on the broker.

    RabbitMQ: quorum queues; publisher confirms (a publish returns once the broker has the message on a
    quorum of nodes, and a refused one raises, so `config.wakeup.wake` logs it and the sweepers re-kick
    it); no global QoS (quorum queues refuse it: `worker_detect_quorum_queues` makes the worker use
    per-consumer prefetch); queues a benchmark or test adds by name (the naive path's) are quorum too.
    Redis: the enum's queues are created on first use with Celery's defaults, nothing to declare.
    """
    if not is_amqp(broker_url):
        return {"broker_transport_options": dict(transport_options)}
    return {
        "broker_transport_options": {**transport_options, "confirm_publish": True},
        "task_queues": amqp_queues(),
        "worker_detect_quorum_queues": True,
        "task_create_missing_queue_type": "quorum",
        "task_create_missing_queue_exchange_type": "topic",
    }
