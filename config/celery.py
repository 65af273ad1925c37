"""The Celery app. Workers: `celery -A config worker -Q prepare,send,webhooks,postprocessing,default,bulk`."""

import logging
import os
from datetime import datetime, timedelta

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Celery's shortest broker-side delay on RabbitMQ quorum queues (native delayed delivery counts whole
# seconds, docs/scaling.md).
BROKER_DELAY_FLOOR_S = 1.0


class ParleyCelery(Celery):
    """Celery, with sub-second countdowns that RabbitMQ's quorum queues can carry.

    On quorum queues Celery delays a countdown in the broker, in whole seconds: celery 5.7 computes the
    delay's routing key from int(countdown) and raises ValueError for a countdown under 1 s, so a paced
    remainder due in 0.3 s was never published (config/wakeup.py logs it; the sweeper found it 40 s
    later). Such a countdown is raised to 1 s there: later by under a second, never earlier than asked.
    Redis keeps the exact countdown (the worker holds the task until its ETA)."""

    def _delays_in_broker(self) -> bool:
        queues = self.conf.task_queues or ()
        return any((q.queue_arguments or {}).get("x-queue-type") == "quorum" for q in queues)

    def send_task(self, name, args=None, kwargs=None, countdown=None, eta=None, **options):
        if (countdown or eta) and self._delays_in_broker():
            if countdown is not None and 0 < countdown < BROKER_DELAY_FLOOR_S:
                countdown = BROKER_DELAY_FLOOR_S
            if isinstance(eta, datetime):
                now = datetime.now(eta.tzinfo)
                if timedelta(0) < eta - now < timedelta(seconds=BROKER_DELAY_FLOOR_S):
                    eta = now + timedelta(seconds=BROKER_DELAY_FLOOR_S)
        return super().send_task(name, args, kwargs, countdown=countdown, eta=eta, **options)


app = ParleyCelery("parley")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Periodic work registers itself in each app's tasks module via app.conf.beat_schedule entries in
# config/beat.py, so the schedule is readable in one place.
from config.beat import BEAT_SCHEDULE  # noqa: E402

app.conf.beat_schedule = BEAT_SCHEDULE

# Redis broker: a live worker's deliveries are not handed out again while it lives, so the visibility
# timeout can be short (config/broker_heartbeat.py, docs/recovery.md).
from config.broker_heartbeat import BrokerHeartbeat  # noqa: E402

app.steps["consumer"].add(BrokerHeartbeat)


@signals.task_prerun.connect
def _django_connection_hygiene(**_kwargs):
    # With CELERY_DB_REUSE_MAX set (settings/celery.py) connections outlive tasks; drop broken or
    # expired ones first, exactly as Django does at the start of a request. Never inside an open
    # transaction (a task applied eagerly from code or a test that holds one): closing would break it.
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()
            # A task is worth one round trip: a connection the server dropped (restart, failover) is
            # replaced before the task's first query instead of failing it.
            if conn.connection is not None and not conn.is_usable():
                conn.close()


@signals.worker_init.connect
def _declare_every_queue(sender=None, **_kwargs):
    # RabbitMQ: Celery's delayed-delivery step binds every queue of task_queues, not only those this
    # worker consumes, and gives up on all of them ("Native delayed delivery will not be available")
    # at the first whose exchange nobody declared yet. So each worker declares them all first
    # (idempotent; durable quorum queues).
    worker_app = getattr(sender, "app", None) or app
    if not isinstance(worker_app, ParleyCelery) or not worker_app._delays_in_broker():
        return
    with worker_app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in worker_app.conf.task_queues:
            queue.bind(channel).declare()


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _redact_secrets_in_worker_logs(logger=None, **_kwargs):
    # A worker replaces the root logger's handlers with its own (worker_hijack_root_logger): give those
    # the redaction filter our LOGGING puts on every handler (config/redaction.py), then the request-id
    # context and the JSON format (config/logs.py), in that order.
    from django.conf import settings

    from config import logs, redaction

    redaction.install(logger.handlers if logger is not None else None)
    redaction.install()
    json_lines = getattr(settings, "LOG_FORMAT", "json") != "plain"
    for handlers in (logger.handlers if logger is not None else [], logging.getLogger().handlers):
        logs.install(handlers, json_lines=json_lines)


@signals.before_task_publish.connect
def _carry_request_id(headers=None, **_kwargs):
    # A task enqueued while serving a request (or inside a task that has one) carries its request id.
    from config.logs import TASK_HEADER, request_id_var

    rid = request_id_var.get()
    if rid and headers is not None:
        headers.setdefault(TASK_HEADER, rid)


@signals.task_prerun.connect
def _task_log_context(task_id=None, task=None, **_kwargs):
    from config.logs import TASK_HEADER, request_id_var, task_var

    request = getattr(task, "request", None)
    request_id_var.set(str(getattr(request, TASK_HEADER, None) or ""))
    task_var.set((task_id or "", getattr(task, "name", "") or ""))


@signals.task_postrun.connect
def _task_log_context_end(**_kwargs):
    from config.logs import request_id_var, task_var

    request_id_var.set("")
    task_var.set(("", ""))
