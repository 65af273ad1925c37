"""Sinch SMS (XMS REST API) adapter, and the pure parsers of its callbacks. See docs/carriers.md.

One adapter per carrier account configuration: a requests.Session with its own connection pool,
bearer auth, timeouts, and errors classified transient/permanent. The parsers are module functions
so that the webhook apply task parses thousands of stored bodies without building adapters.
"""

from __future__ import annotations

import email.utils
import time
from datetime import datetime
from urllib.parse import quote

import requests
from django.conf import settings
from django.utils.dateparse import parse_datetime
from requests.adapters import HTTPAdapter

from .base import (
    ActiveNumber,
    BatchResult,
    CarrierAdapter,
    DeliveryReport,
    InboundMessage,
    OutboundBatch,
    PermanentCarrierError,
    TransientCarrierError,
)

REGIONS = ("us", "eu", "au", "br", "ca")
# Sinch's Numbers API (one origin for every region): which numbers a project holds, and the service plan each
# is attached to. Auth: the project's access key (config key_id / key_secret) as HTTP Basic.
NUMBERS_BASE_URL = "https://numbers.api.sinch.com"
DEFAULT_REGION = "us"
# Connect fast-fail (an unreachable carrier should not hold a send worker), read generous enough for a
# 1000-recipient batch under load. Overridable per account: config["connect_timeout"/"read_timeout"].
CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 15.0
# One pool per adapter (i.e. per account per process); a send worker runs a handful of threads at most.
POOL_SIZE = 16

# Sinch status word → our MessageStatus value. Keys lower-cased: Sinch's callbacks say "Delivered",
# its SDKs "DELIVERED".
STATUS_MAP: dict[str, str] = {
    "queued": "sent",
    "dispatched": "sent",
    "delivered": "delivered",
    "failed": "failed",
    "rejected": "failed",
    "aborted": "failed",
    "cancelled": "failed",
    "canceled": "failed",
    "expired": "undelivered",
    "deleted": "undelivered",
    "unknown": "undelivered",
}

RECIPIENT_REPORT_TYPES = frozenset({"recipient_delivery_report_sms", "recipient_delivery_report_mms"})
BATCH_REPORT_TYPES = frozenset({"delivery_report_sms", "delivery_report_mms"})
INBOUND_TYPES = frozenset({"mo_text", "mo_binary", "mo_media"})


def default_base_url(region: str) -> str:
    region = (region or DEFAULT_REGION).lower()
    if region not in REGIONS:
        raise ValueError(f"unknown Sinch region {region!r} (one of {', '.join(REGIONS)})")
    return f"https://{region}.sms.api.sinch.com"


def map_status(carrier_status: str) -> str:
    try:
        return STATUS_MAP[carrier_status.lower()]
    except KeyError:
        raise ValueError(f"unknown Sinch delivery status {carrier_status!r}") from None


def clean_text(value: str) -> str:
    """A string from a callback as PostgreSQL can store it in a text/varchar/jsonb column: NUL (which it
    refuses) and lone surrogates (which are not UTF-8) become U+FFFD. The stored raw body keeps the
    original bytes; this is only for the columns an apply writes (and the values it matches with)."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return value


def _text(value: object) -> str:
    return "" if value is None else clean_text(str(value))


def e164(msisdn: str) -> str:
    """Sinch's MSISDN ("15125550100") → E.164. Cheap on purpose: the matcher compares digits anyway."""
    msisdn = clean_text(str(msisdn).strip())
    return msisdn if msisdn.startswith("+") else "+" + msisdn


def _dt(value) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        # fromisoformat (3.11 reads "Z") is ~10x faster than Django's regex parser: 20k reports/s matter.
        return datetime.fromisoformat(value)
    except ValueError:
        pass
    try:
        return parse_datetime(value)
    except ValueError:
        return None


def _require(payload: dict, key: str, kind: type = str):
    value = payload.get(key)
    if not isinstance(value, kind) or (kind is str and not value):
        raise ValueError(f"'{key}' is missing or not a {kind.__name__}")
    return clean_text(value) if isinstance(value, str) else value


def parse_delivery_payload(payload: object) -> list[DeliveryReport]:
    """A Sinch delivery-report callback (per-recipient, summary or full) → reports.

    A summary report names no recipients: it yields nothing unless the whole batch shares one status,
    in which case one report with recipient "" stands for every recipient of the batch.
    """
    if not isinstance(payload, dict):
        raise ValueError("body is not a JSON object")
    kind = payload.get("type")
    if kind in RECIPIENT_REPORT_TYPES:
        batch_id = _require(payload, "batch_id")
        recipient = payload.get("recipient")
        if not isinstance(recipient, str | int) or not str(recipient).strip():
            raise ValueError("'recipient' is missing")
        word = _require(payload, "status")
        code = payload.get("code")
        return [
            DeliveryReport(
                batch_id=batch_id,
                recipient=e164(str(recipient)),
                status=map_status(word),
                carrier_status=word,
                code=_text(code)[:32],  # Message.error_code
                at=_dt(payload.get("operator_status_at")) or _dt(payload.get("at")),
                client_reference=_text(payload.get("client_reference") or ""),
            )
        ]
    if kind in BATCH_REPORT_TYPES:
        batch_id = _require(payload, "batch_id")
        statuses = _require(payload, "statuses", list)
        client_reference = _text(payload.get("client_reference") or "")
        reports: list[DeliveryReport] = []
        for entry in statuses:
            if not isinstance(entry, dict):
                raise ValueError("'statuses' entries must be objects")
            word = _require(entry, "status")
            status = map_status(word)
            code = _text(entry.get("code"))[:32]
            recipients = entry.get("recipients")
            if recipients is None:
                if len(statuses) == 1:  # summary, whole batch in one status
                    reports.append(DeliveryReport(batch_id, "", status, word, code, None, client_reference))
                continue
            if not isinstance(recipients, list):
                raise ValueError("'recipients' must be a list")
            reports.extend(
                DeliveryReport(batch_id, e164(str(r)), status, word, code, None, client_reference) for r in recipients
            )
        return reports
    raise ValueError(f"unknown delivery report type {kind!r}")


def parse_inbound_payload(payload: object) -> InboundMessage:
    if not isinstance(payload, dict):
        raise ValueError("body is not a JSON object")
    kind = payload.get("type")
    if kind not in INBOUND_TYPES:
        raise ValueError(f"unknown inbound type {kind!r}")
    carrier_id = _require(payload, "id")
    from_number = _require(payload, "from")
    to_number = _require(payload, "to")
    media: list[dict] = []
    if kind == "mo_text":
        body = payload.get("body")
        if not isinstance(body, str):
            raise ValueError("'body' is missing or not a str")
        body = clean_text(body)
    elif kind == "mo_binary":
        # Binary SMS (base64 + UDH) is not text a person wrote: kept as-is for the record.
        body = ""
        media = [
            {
                "content_type": "application/octet-stream",
                "base64": _text(payload.get("body") or ""),
                "udh": _text(payload.get("udh") or ""),
            }
        ]
    else:  # mo_media: {"body": {"subject", "message", "media": [{"url", "content_type", ...}]}}
        raw_body = payload.get("body")
        content: dict = raw_body if isinstance(raw_body, dict) else {}
        body = _text(content.get("message") or "")
        media = [
            {"url": _text(m.get("url", "")), "content_type": _text(m.get("content_type", ""))}
            for m in content.get("media") or []
            if isinstance(m, dict)
        ]
    return InboundMessage(
        carrier_id=carrier_id,
        # As given: a short code ("72345") or an alphanumeric sender ("abc") is not an MSISDN, and
        # adding a "+" would invent a number (messaging classifies senders: messaging/phone.py).
        from_number=from_number.strip(),
        to_number=e164(to_number),
        body=body,
        received_at=_dt(payload.get("received_at")),
        media=media,
    )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


class SinchAdapter(CarrierAdapter):
    provider = "sinch"

    def __init__(
        self,
        *,
        service_plan_id: str,
        api_token: str,
        base_url: str,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        project_id: str = "",
        numbers_base_url: str = NUMBERS_BASE_URL,
        numbers_auth: tuple[str, str] | None = None,
    ):
        if not service_plan_id or not api_token:
            raise ValueError("Sinch configuration needs service_plan_id and api_token")
        self.base_url = base_url.rstrip("/")
        self.service_plan_id = service_plan_id
        self.root = f"{self.base_url}/xms/v1/{quote(service_plan_id, safe='')}"
        self.timeout = (connect_timeout, read_timeout)
        self.session = requests.Session()
        # No urllib3 retries: a POST /batches that timed out may have been accepted; the send pipeline
        # decides (find_batch_by_client_reference) instead of us sending twice.
        http = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE, max_retries=0)
        self.session.mount("https://", http)
        self.session.mount("http://", http)
        self.session.headers.update({"Authorization": f"Bearer {api_token}", "Accept": "application/json"})
        self.project_id = project_id
        self.numbers_root = f"{numbers_base_url.rstrip('/')}/v1/projects/{quote(project_id, safe='')}"
        self._numbers_auth = numbers_auth

    def __repr__(self) -> str:  # never the token
        return f"<SinchAdapter {self.base_url} plan={self.service_plan_id}>"

    @classmethod
    def from_account(cls, account) -> SinchAdapter:
        config = account.config or {}
        sandbox = account.provider == "sandbox"
        base_url = config.get("base_url") or ""
        if not base_url:
            if account.provider == "sandbox":
                base_url = settings.SANDBOX_CARRIER_URL
            else:
                base_url = default_base_url(config.get("region") or DEFAULT_REGION)
        return cls(
            service_plan_id=str(config.get("service_plan_id") or ""),
            api_token=str(config.get("api_token") or ""),
            base_url=base_url,
            connect_timeout=float(config.get("connect_timeout") or CONNECT_TIMEOUT),
            read_timeout=float(config.get("read_timeout") or READ_TIMEOUT),
            # The sandbox serves the Numbers API on its own origin, its project named after the plan.
            project_id=str(config.get("project_id") or (config.get("service_plan_id") if sandbox else "") or ""),
            numbers_base_url=config.get("numbers_base_url") or (base_url if sandbox else NUMBERS_BASE_URL),
            numbers_auth=(
                (str(config["key_id"]), str(config.get("key_secret") or "")) if config.get("key_id") else None
            ),
        )

    # -- HTTP -------------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: dict | None = None,
        params: dict | None = None,
        allow_404: bool = False,
        root: str | None = None,
        auth: tuple[str, str] | None = None,
    ):
        url = (root or self.root) + path
        try:
            response = self.session.request(method, url, json=json, params=params, timeout=self.timeout, auth=auth)
        except requests.Timeout as exc:
            raise TransientCarrierError(f"Sinch {method} {path}: timeout", code="timeout") from exc
        except requests.ConnectionError as exc:
            raise TransientCarrierError(f"Sinch {method} {path}: connection error", code="connection") from exc
        except requests.RequestException as exc:
            raise TransientCarrierError(f"Sinch {method} {path}: {type(exc).__name__}", code="request") from exc
        status = response.status_code
        if status < 400:
            try:
                return response.json() if response.content else {}
            except ValueError as exc:
                raise TransientCarrierError(f"Sinch {method} {path}: invalid JSON answer", http_status=status) from exc
        if allow_404 and status == 404:
            return None
        code, text = "", ""
        try:
            body = response.json()
            if isinstance(body, dict) and isinstance(body.get("error"), dict):  # the Numbers API's shape
                code, text = str(body["error"].get("status") or ""), str(body["error"].get("message") or "")
            elif isinstance(body, dict):
                code, text = str(body.get("code") or ""), str(body.get("text") or "")
        except ValueError:
            text = response.text[:200]
        message = f"Sinch {method} {path}: HTTP {status}" + (f" {code}: {text}" if code or text else "")
        if status == 429 or status >= 500:
            retry_after = _retry_after(response.headers.get("Retry-After")) if status == 429 else None
            raise TransientCarrierError(message, code=code, text=text, http_status=status, retry_after=retry_after)
        raise PermanentCarrierError(message, code=code, text=text, http_status=status)

    # -- interface ----------------------------------------------------------------------------------

    def send_batch(self, batch: OutboundBatch) -> BatchResult:
        payload: dict = {
            "to": list(batch.recipients),
            "from": batch.from_number,
            "body": batch.body,
            "delivery_report": batch.delivery_report,
        }
        if batch.parameters:
            payload["parameters"] = batch.parameters
        if batch.client_reference:
            payload["client_reference"] = batch.client_reference
        if batch.callback_url:
            payload["callback_url"] = batch.callback_url
        if batch.send_at:
            payload["send_at"] = batch.send_at.isoformat()
        answer = self._call("POST", "/batches", json=payload)
        batch_id = answer.get("id") if isinstance(answer, dict) else None
        if not batch_id:
            raise TransientCarrierError("Sinch POST /batches: answer without a batch id")
        return BatchResult(batch_id=batch_id, accepted_at=_dt(answer.get("created_at")))

    def parse_delivery_reports(self, payload: dict) -> list[DeliveryReport]:
        return parse_delivery_payload(payload)

    def parse_inbound(self, payload: dict) -> InboundMessage:
        return parse_inbound_payload(payload)

    def fetch_recipient_status(self, *, batch_id: str, recipient: str) -> DeliveryReport | None:
        path = f"/batches/{quote(batch_id, safe='')}/delivery_report/{quote(recipient.lstrip('+'), safe='')}"
        answer = self._call("GET", path, allow_404=True)
        if not answer:
            return None
        return parse_delivery_payload(answer)[0]

    def find_by_client_reference(self, client_reference: str) -> list[DeliveryReport]:
        reports: list[DeliveryReport] = []
        page, page_size = 0, 100
        while True:
            answer = self._call(
                "GET",
                "/delivery_reports",
                params={"client_reference": client_reference, "page": page, "page_size": page_size},
            )
            items = (answer or {}).get("delivery_reports") or []
            for item in items:
                reports.extend(parse_delivery_payload(item))
            if len(items) < page_size or (page + 1) * page_size >= int((answer or {}).get("count") or 0):
                return reports
            page += 1

    def find_batch_by_client_reference(self, client_reference: str) -> str | None:
        answer = self._call("GET", "/batches", params={"client_reference": client_reference, "page_size": 1})
        batches = (answer or {}).get("batches") or []
        return batches[0].get("id") if batches else None

    def fetch_batch_report(self, *, batch_id: str, full: bool = True) -> list[DeliveryReport]:
        """GET /batches/{id}/delivery_report?type=full|summary (works without any callback)."""
        answer = self._call(
            "GET",
            f"/batches/{quote(batch_id, safe='')}/delivery_report",
            params={"type": "full" if full else "summary"},
            allow_404=True,
        )
        return parse_delivery_payload(answer) if answer else []

    def active_number(self, phone_number: str) -> ActiveNumber | None:
        """GET {numbers}/v1/projects/{project}/activeNumbers/{number}: 404 when the project does not hold it."""
        if not self.project_id:
            raise PermanentCarrierError(
                "Sinch numbers lookup: the carrier account has no project_id (and key_id/key_secret)",
                code="not_configured",
            )
        answer = self._call(
            "GET",
            f"/activeNumbers/{quote(phone_number, safe='+')}",
            allow_404=True,
            root=self.numbers_root,
            auth=self._numbers_auth,
        )
        if not answer:
            return None
        sms = answer.get("smsConfiguration") or {}
        return ActiveNumber(
            phone_number=e164(str(answer.get("phoneNumber") or phone_number)),
            service_plan_id=str(sms.get("servicePlanId") or "") if isinstance(sms, dict) else "",
            capabilities=tuple(str(c) for c in answer.get("capability") or ()),
        )

    def close(self) -> None:
        self.session.close()
