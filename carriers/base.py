"""The carrier adapter interface. One adapter per provider, looked up in carriers.registry.

The send pipeline calls `send_batch` and nothing else on its hot path; webhooks call the parse
methods; the status backfill calls `fetch_recipient_status` / `find_by_client_reference`.
See docs/carriers.md.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime


class CarrierError(Exception):
    """Base of every carrier failure. `code`/`text` are the carrier's own words (never secrets)."""

    transient = False

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        text: str = "",
        http_status: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.code, self.text, self.http_status, self.retry_after = code, text, http_status, retry_after


class TransientCarrierError(CarrierError):
    """Timeouts, connection errors, 5xx, 429: try again later (429 carries retry_after)."""

    transient = True


class PermanentCarrierError(CarrierError):
    """Any other 4xx: the request itself is wrong; retrying cannot help."""


@dataclass(frozen=True, slots=True)
class OutboundBatch:
    """Up to 1000 recipients of one line. `body` may hold ${name} placeholders filled per recipient
    from `parameters` ({name: {recipient_e164: value, "default": ""}}), as Sinch's batches do."""

    from_number: str
    recipients: list[str]  # E.164
    body: str
    parameters: dict[str, dict[str, str]] = field(default_factory=dict)
    client_reference: str = ""
    callback_url: str = ""
    delivery_report: str = "per_recipient_final"
    send_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class BatchResult:
    batch_id: str
    accepted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """One recipient's status as the carrier reports it, mapped to our MessageStatus."""

    batch_id: str
    recipient: str  # E.164
    status: str  # a messaging.status.MessageStatus value
    carrier_status: str  # the carrier's word, e.g. "Delivered"
    code: str = ""
    at: datetime | None = None
    client_reference: str = ""


@dataclass(frozen=True, slots=True)
class InboundMessage:
    carrier_id: str
    from_number: str  # as the carrier gave it: an MSISDN with or without "+", a short code, an alphanumeric id
    to_number: str  # E.164
    body: str
    received_at: datetime | None = None
    media: list[dict] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ActiveNumber:
    """A number the carrier account's project holds (Sinch's Numbers API "active number")."""

    phone_number: str  # E.164
    service_plan_id: str = ""  # the SMS service plan it is attached to ("" = none yet)
    capabilities: tuple[str, ...] = ()


class CarrierAdapter(abc.ABC):
    """Bound to one CarrierAccount's configuration. Must be cheap to build and safe to cache per process."""

    provider: str

    @abc.abstractmethod
    def send_batch(self, batch: OutboundBatch) -> BatchResult:
        """One carrier call. Raises TransientCarrierError or PermanentCarrierError."""

    @abc.abstractmethod
    def parse_delivery_reports(self, payload: dict) -> list[DeliveryReport]:
        """Per-recipient or summary/full callback body → reports. ValueError if malformed."""

    @abc.abstractmethod
    def parse_inbound(self, payload: dict) -> InboundMessage:
        """MO callback body → inbound message. ValueError if malformed."""

    @abc.abstractmethod
    def fetch_recipient_status(self, *, batch_id: str, recipient: str) -> DeliveryReport | None:
        """The carrier's current status of one recipient of a batch; None if it has no record."""

    @abc.abstractmethod
    def find_by_client_reference(self, client_reference: str) -> list[DeliveryReport]:
        """Reports the carrier holds for our client_reference (batch id never recorded on our side)."""

    @abc.abstractmethod
    def find_batch_by_client_reference(self, client_reference: str) -> str | None:
        """The batch id the carrier created for our client_reference, if any (send recovery)."""

    def active_number(self, phone_number: str) -> ActiveNumber | None:
        """The number as the carrier account holds it, or None when the account does not hold it.
        Raises TransientCarrierError when the carrier cannot be asked now."""
        raise PermanentCarrierError(f"{type(self).__name__} cannot look numbers up", code="unsupported")
