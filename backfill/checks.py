"""Asking the carrier about one stuck message, paced and retried. Runs in the pool's threads: HTTP only,
never the database (the main thread reads and applies in batches).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime

from carriers.base import CarrierAdapter, CarrierError, DeliveryReport, TransientCarrierError
from messaging.status import MessageStatus, is_final

from .pacing import TokenBucket

# Transient failures (timeouts, 5xx) are retried this many times in all, backing off from 0.5 s.
TRANSIENT_ATTEMPTS = 4
# 429s pause the pool instead of counting as attempts; after this many in a row for one request the
# carrier is clearly overloaded for good and the message is counted as an error for this run.
MAX_THROTTLED = 20
# Without a Retry-After, the first 429 pauses the pool this long, doubling up to the maximum.
DEFAULT_RETRY_AFTER = 1.0
MAX_RETRY_AFTER = 60.0


@dataclass(frozen=True, slots=True)
class StuckMessage:
    id: int
    status: str
    batch_id: str
    recipient: str  # E.164: carrier_recipient, else the contact's number
    client_reference: str
    # When we last handed it to the carrier (sending_at, else created_at): the carrier's retention
    # window counts from there.
    handed_at: datetime


@dataclass(frozen=True, slots=True)
class Outcome:
    message: StuckMessage
    report: DeliveryReport | None = None  # None and no error: the carrier has no record
    error: str = ""
    calls: int = 0


class Throttled(Exception):
    pass


class CarrierCaller:
    """Wraps the adapter's read calls with the shared bucket and the retry policy."""

    def __init__(self, adapter: CarrierAdapter, bucket: TokenBucket, *, sleep=time.sleep):
        self.adapter, self.bucket, self._sleep = adapter, bucket, sleep

    def _call(self, fn, *args, **kwargs):
        transient_failures = throttled = 0
        while True:
            self.bucket.acquire()
            try:
                return fn(*args, **kwargs)
            except TransientCarrierError as exc:
                if exc.http_status == 429:
                    throttled += 1
                    if throttled > MAX_THROTTLED:
                        raise
                    backoff = DEFAULT_RETRY_AFTER * 2 ** min(throttled - 1, 6)
                    self.bucket.pause(min(MAX_RETRY_AFTER, exc.retry_after or backoff))
                    continue
                transient_failures += 1
                if transient_failures >= TRANSIENT_ATTEMPTS:
                    raise
                self._sleep(0.5 * 2 ** (transient_failures - 1) * (0.5 + random.random()))

    def check(self, message: StuckMessage) -> Outcome:
        calls = 0
        try:
            if message.batch_id:
                # The batch id is authoritative: no record under it means no record at all.
                calls += 1
                report = self._call(
                    self.adapter.fetch_recipient_status, batch_id=message.batch_id, recipient=message.recipient
                )
                return Outcome(message, report=report, calls=calls)
            if not message.client_reference:
                return Outcome(message, calls=calls)
            # Batch id never recorded (the send step died after the carrier call): the finished
            # reports are listed by our client reference...
            calls += 1
            reports = self._call(self.adapter.find_by_client_reference, message.client_reference)
            report = _pick(reports, message.recipient)
            if report is not None:
                return Outcome(message, report=report, calls=calls)
            # ...a report still in flight (Queued/Dispatched) is not listed: find the batch, then ask.
            calls += 1
            batch_id = self._call(self.adapter.find_batch_by_client_reference, message.client_reference)
            if not batch_id:
                return Outcome(message, calls=calls)
            calls += 1
            report = self._call(self.adapter.fetch_recipient_status, batch_id=batch_id, recipient=message.recipient)
            if report is None:
                # The carrier accepted the batch but reports nothing for the recipient yet: at least "sent".
                report = DeliveryReport(
                    batch_id=batch_id, recipient=message.recipient, status=MessageStatus.SENT, carrier_status=""
                )
            return Outcome(message, report=report, calls=calls)
        except CarrierError as exc:
            detail = f"{type(exc).__name__}: {exc}"
            if exc.code or exc.http_status:
                detail += f" (http {exc.http_status}, code {exc.code or '-'})"
            return Outcome(message, error=detail[:300], calls=calls)


def _pick(reports: list[DeliveryReport], recipient: str) -> DeliveryReport | None:
    """Our reference may be per batch: keep the recipient's own report, the furthest along if several."""
    mine = [r for r in reports if r.recipient == recipient] if recipient else list(reports)
    if not mine and len(reports) == 1 and not reports[0].recipient:
        mine = list(reports)
    if not mine:
        return None
    return max(mine, key=lambda r: (is_final(r.status), r.at.timestamp() if r.at else 0.0))
