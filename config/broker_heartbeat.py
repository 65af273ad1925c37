"""A worker bootstep for the Redis broker: keep the tasks it holds invisible to others, and its queues routable.

Redis has no consumer connections to watch: kombu emulates acks with a sorted set of unacknowledged
deliveries scored by delivery time, and a live worker hands back ("restores") every delivery older than
the visibility timeout. A short timeout is what makes a SIGKILLed worker's tasks run again within
seconds (docs/recovery.md), but alone it would also hand out the tasks a live worker is still running,
or holding for a countdown. So every HEARTBEAT_SECONDS this step re-scores each delivery the worker
still holds (running, reserved, waiting for its ETA) to now: only a dead worker's deliveries age past
the timeout.

It also checks that the queues it consumes are still routable. A FLUSHDB of the broker's database drops
kombu's binding tables with the queues, and from then on every publish (beat's wake-ups included) lands
in kombu's dead-letter queue until a consumer declares its queues again — which a running worker never
does by itself. The step re-declares them when a table is missing.

RabbitMQ needs none of this: it redelivers a consumer's unacknowledged messages when its connection
closes, and bindings are durable. The step does nothing there.
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
    return hasattr(channel, "unacked_index_key") and hasattr(channel, "keyprefix_queue")


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
    # A client from the channel's ordinary pool: `channel.client` owns the connection the event loop's
    # BRPOP is waiting on, and a reply read there would be taken for the BRPOP's.
    with channel.conn_or_acquire() as client:
        if tags:
            # XX: only deliveries still in the index (an ack racing this beat must not re-add its tag).
            client.zadd(channel.unacked_index_key, dict.fromkeys(tags, time.time()), xx=True)
        keys = [channel.keyprefix_queue % q.exchange.name for q in task_consumer.queues]
        missing = [q.name for q, key in zip(task_consumer.queues, keys, strict=True) if not client.exists(key)]
    if missing:
        log.warning("broker lost the bindings of %s (flushed?); declaring the queues again", ", ".join(missing))
        task_consumer.declare()


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
