"""Parley's own Prometheus metrics, served at /metrics next to django-prometheus' request, database and
cache metrics (docs/operations.md).

Read at scrape time from the database, Redis and the broker, by one collector. Every query is on a
small partial index or a catalog; nothing scans the message table. The values are cached per process for
CACHE_SECONDS, so any number of scrapers (or a scrape storm) costs one round of queries per interval.
A source that fails (Redis down) leaves its families out and sets parley_metrics_source_up{source} to 0,
so a scrape never fails as a whole.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from . import selectors

log = logging.getLogger(__name__)

CACHE_SECONDS = 10.0


class ParleyCollector(Collector):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: tuple[float, list] | None = None

    def describe(self) -> Iterable:
        # What register() asks for to check names: without it, prometheus_client would call collect()
        # at start-up, querying a database that may not be there yet.
        yield GaugeMetricFamily("parley_metrics_source_up", "", labels=["source"])
        for name in DESCRIBED:
            yield GaugeMetricFamily(name, "")

    def collect(self) -> Iterable:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= CACHE_SECONDS:
                self._cached = (now, list(self._families()))
            return list(self._cached[1])

    def _families(self) -> Iterable:
        up = GaugeMetricFamily("parley_metrics_source_up", "1 if the source answered this scrape", labels=["source"])
        for source, build in (
            ("messages", _messages),
            ("webhooks", _webhooks),
            ("queues", _queues),
            ("outbox", _outbox),
            ("blasts", _blasts),
            ("sends", _sends),
        ):
            try:
                families = list(build())
            except Exception as exc:  # noqa: BLE001 - one failing source must not fail the scrape
                log.warning("metrics source %s failed: %s", source, type(exc).__name__)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from families
        yield up


def _messages():
    in_flight = GaugeMetricFamily(
        "parley_messages_in_flight", "Outbound messages not final yet, by status (exact)", labels=["status"]
    )
    for status, n in selectors.messages_in_flight().items():
        in_flight.add_metric([status], n)
    yield in_flight
    estimated = GaugeMetricFamily(
        "parley_messages_estimated",
        "Messages by status, whole table, estimated from PostgreSQL's statistics (refreshed by ANALYZE)",
        labels=["status"],
    )
    for status, n in selectors.messages_estimated().items():
        estimated.add_metric([status], n)
    yield estimated


def _webhooks():
    accepted = GaugeMetricFamily(
        "parley_webhooks_accepted_last_hour", "Carrier callbacks stored and answered 200", labels=["account"]
    )
    refused = GaugeMetricFamily(
        "parley_webhooks_refused_last_hour", "Carrier callbacks answered anything but 200", labels=["account"]
    )
    for account, (ok, bad) in selectors.webhooks_last_hour().items():
        accepted.add_metric([account], ok)
        refused.add_metric([account], bad)
    yield accepted
    yield refused


def _queues():
    depth = GaugeMetricFamily("parley_queue_depth", "Tasks waiting in the broker, by queue", labels=["queue"])
    for queue, n in selectors.queue_depths().items():
        depth.add_metric([queue], n)
    yield depth


def _outbox():
    pending, lag = selectors.outbox_backlog()
    yield GaugeMetricFamily("parley_outbox_pending", "Post-processing events not drained yet", value=pending)
    yield GaugeMetricFamily(
        "parley_outbox_lag_seconds", "Age of the oldest post-processing event not drained yet (0 if none)", value=lag
    )


def _blasts():
    sending, stalled = selectors.blasts_sending_and_stalled()
    yield GaugeMetricFamily("parley_blasts_sending", "Blasts in status sending", value=sending)
    yield GaugeMetricFamily(
        "parley_blasts_stalled",
        "Sending blasts with work left on our side and no progress for a minute (also in the admin)",
        value=stalled,
    )


def _sends():
    sent = CounterMetricFamily(
        "parley_messages_sent", "Messages the carrier accepted, per line (since the counter began)", labels=["line"]
    )
    for line, n in selectors.sends_per_line().items():
        sent.add_metric([str(line)], n)
    yield sent


DESCRIBED = (
    "parley_messages_in_flight",
    "parley_messages_estimated",
    "parley_webhooks_accepted_last_hour",
    "parley_webhooks_refused_last_hour",
    "parley_queue_depth",
    "parley_outbox_pending",
    "parley_outbox_lag_seconds",
    "parley_blasts_sending",
    "parley_blasts_stalled",
    "parley_messages_sent",
)
_registered: list[ParleyCollector] = []


def register() -> None:
    if not _registered:
        collector = ParleyCollector()
        REGISTRY.register(collector)
        _registered.append(collector)
