"""A worker bootstep for the Redis broker: keep the tasks a live worker holds invisible to the others.

Redis has no consumer connections to watch: kombu emulates acks with a sorted set of unacknowledged
deliveries scored by delivery time, and a live worker hands back ("restores") every delivery older than
the visibility timeout. A short timeout is what makes a SIGKILLed worker's tasks run again within
seconds (docs/recovery.md), but alone it would also hand out the tasks a live worker is still running,
or holding for a countdown. So every visibility_timeout / 3 seconds this step re-scores each delivery the
worker still holds (running, reserved, waiting for its ETA) to now: only a dead worker's deliveries age
past the timeout.

RabbitMQ needs none of this: it redelivers a consumer's unacknowledged messages when its connection
closes. The step does nothing there.
"""

from __future__ import annotations

import logging
import time

from celery import bootsteps

log = logging.getLogger("parley.broker")

# A third of the visibility timeout (settings/celery.py): two beats may be missed before a live
# worker's delivery could be taken for a dead one's.
HEARTBEAT_FRACTION = 3


def _is_redis(channel) -> bool:
    return hasattr(channel, "unacked_index_key") and hasattr(channel, "conn_or_acquire")


def held_delivery_tags(channel) -> list[str]:
    """Deliveries this channel holds and has not acknowledged (running, reserved, waiting for an ETA)."""
    qos = channel.qos
    dirty = set(getattr(qos, "_dirty", ()))
    return [tag for tag in list(qos._delivered) if tag not in dirty]


def beat(consumer) -> None:
    task_consumer = getattr(consumer, "task_consumer", None)
    if task_consumer is None:
        return
    channel = task_consumer.channel
    if not _is_redis(channel):
        return
    tags = held_delivery_tags(channel)
    if not tags:
        return
    # A client from the channel's ordinary pool: `channel.client` owns the connection the event loop's
    # BRPOP is waiting on, and a reply read there would be taken for the BRPOP's.
    with channel.conn_or_acquire() as client:
        # XX: only deliveries still in the index (an ack racing this beat must not re-add its tag; after a
        # FLUSHDB there is nothing left to protect, and the sweepers re-kick what was lost).
        client.zadd(channel.unacked_index_key, dict.fromkeys(tags, time.time()), xx=True)


class BrokerHeartbeat(bootsteps.StartStopStep):
    """Consumer step: `beat` every visibility_timeout / 3 seconds on the worker's event loop."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self.tref = None

    def start(self, c):
        options = c.app.conf.broker_transport_options or {}
        interval = max(1.0, float(options.get("visibility_timeout", 3600)) / HEARTBEAT_FRACTION)
        self.tref = c.timer.call_repeatedly(interval, self._beat, (c,), priority=10)

    def _beat(self, c) -> None:
        try:
            beat(c)
        except Exception:  # noqa: BLE001 - a broker hiccup must not stop the worker; the next beat tries again
            log.warning("broker heartbeat failed", exc_info=True)

    def stop(self, c):
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
