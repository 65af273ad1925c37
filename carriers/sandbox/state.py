"""The sandbox carrier's state: what a Sinch account holds and decides, without HTTP.

Configuration (`SandboxConfig`, from flags or SANDBOX_* variables), batches and their recipients'
outcomes, the delivery reports it schedules (posted by `sender.ReportSender`), inbound texts and the
counters the control endpoints read. Each recipient's outcome is a pure function of (seed, batch id,
recipient) and its due time of the batch's creation time (encoded in the ULID batch id), so with
`--workers N` any process answers for a batch another process accepted. The HTTP side that speaks
Sinch's XMS wire format over it is server.py. See docs/carriers.md.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
import zlib
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .sender import ReportSender

DELIVERY_REPORT_KINDS = ("none", "summary", "full", "per_recipient", "per_recipient_final")
FINAL_STATUSES = ("Delivered", "Failed", "Expired", "Rejected", "Aborted", "Cancelled", "Deleted", "Unknown")
# Sinch's codes for each status (0 = delivered; 4xx = Sinch-internal reasons; operator codes vary).
STATUS_CODES = {
    "Queued": 400,
    "Dispatched": 401,
    "Delivered": 0,
    "Failed": 60,
    "Expired": 406,
    "Rejected": 408,
    "Aborted": 402,
    "Cancelled": 407,
    "Deleted": 0,
    "Unknown": 0,
}
_MSISDN = re.compile(r"^\+?[1-9]\d{6,14}$")
_PARAM_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,16}$")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.-]{1,16})\}")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass
class SandboxConfig:
    """Every knob has a CLI flag (python -m carriers.sandbox --help) and a SANDBOX_* env variable."""

    host: str = "127.0.0.1"
    port: int = 8090
    token: str = ""  # required bearer token; empty = any non-empty token is accepted
    delay_min: float = 0.05  # seconds from acceptance to a recipient's final status
    delay_max: float = 0.5
    mix: dict[str, float] = field(default_factory=lambda: {"Delivered": 1.0})
    dispatched: bool = True  # per_recipient: post an intermediate Dispatched before the final one
    duplicate_rate: float = 0.0  # chance a report is posted twice
    out_of_order_rate: float = 0.0  # chance Dispatched is posted after the final report
    error_rate: float = 0.0  # chance an API request is answered 500
    throttle_rate: float = 0.0  # chance an API request is answered 429 (Retry-After: 1)
    rate_limit: float = 0.0  # API requests/s per process beyond which 429 is answered (0 = off)
    inbound_url: str = ""  # where POST /_sandbox/inbound posts the mo_text
    default_callback_url: str = ""  # the service plan's callback URL, when a batch names none
    report_concurrency: int = 32
    report_attempts: int = 10
    max_batches: int = 200_000  # kept in memory per process (oldest dropped)
    seed: str = "sandbox"
    # A JSON-lines file of accepted batches, appended on acceptance and read back at start: a restarted
    # sandbox still knows (and answers lookups for) what it accepted before, as Sinch's database would.
    # The reports the old process had not posted yet are gone with it, as in a real carrier crash.
    journal: str = ""
    # The Numbers API reports every number as held by whichever project asks, attached to the plan of the
    # project's name (`make run`: lines of the demo's sandbox account take any number). Off: only numbers
    # registered with POST /_sandbox/numbers are held.
    hold_any_number: bool = False

    @classmethod
    def from_env(cls) -> SandboxConfig:
        c = cls()
        e = os.environ
        c.token = e.get("SANDBOX_TOKEN", c.token)
        c.delay_min = _env_float("SANDBOX_DELAY_MIN", c.delay_min)
        c.delay_max = _env_float("SANDBOX_DELAY_MAX", c.delay_max)
        if e.get("SANDBOX_MIX"):
            c.mix = parse_mix(e["SANDBOX_MIX"])
        c.dispatched = e.get("SANDBOX_DISPATCHED", "1") not in ("0", "false", "no")
        c.duplicate_rate = _env_float("SANDBOX_DUPLICATE_RATE", c.duplicate_rate)
        c.out_of_order_rate = _env_float("SANDBOX_OUT_OF_ORDER_RATE", c.out_of_order_rate)
        c.error_rate = _env_float("SANDBOX_ERROR_RATE", c.error_rate)
        c.throttle_rate = _env_float("SANDBOX_THROTTLE_RATE", c.throttle_rate)
        c.rate_limit = _env_float("SANDBOX_RATE_LIMIT", c.rate_limit)
        c.inbound_url = e.get("SANDBOX_INBOUND_URL", c.inbound_url)
        c.default_callback_url = e.get("SANDBOX_CALLBACK_URL", c.default_callback_url)
        c.report_concurrency = int(e.get("SANDBOX_REPORT_CONCURRENCY", c.report_concurrency))
        c.seed = e.get("SANDBOX_SEED", c.seed)
        c.journal = e.get("SANDBOX_JOURNAL", c.journal)
        c.hold_any_number = e.get("SANDBOX_HOLD_ANY_NUMBER", "0") in ("1", "true", "yes")
        return c


def parse_mix(text: str) -> dict[str, float]:
    """ "delivered=0.9,failed=0.05,expired=0.05" → {"Delivered": 0.9, ...} (normalised to sum 1)."""
    words = {s.lower(): s for s in FINAL_STATUSES}
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition("=")
        if name.strip().lower() not in words:
            raise ValueError(f"unknown status {name!r} in mix (one of {', '.join(FINAL_STATUSES)})")
        mix[words[name.strip().lower()]] = float(weight or 1)
    total = sum(mix.values())
    if total <= 0:
        raise ValueError("mix weights must sum to more than 0")
    return {k: v / total for k, v in mix.items()}


def now_iso(ts: float | None = None) -> str:
    dt = datetime.fromtimestamp(time.time() if ts is None else ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def new_batch_id(ts: float | None = None) -> str:
    """A ULID (Sinch's ids look like 01FC66621XXXXX119Z8PMV1QPQ): 48-bit ms time + 80 random bits."""
    value = (int((time.time() if ts is None else ts) * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in range(25, -1, -1))


def batch_created_at(batch_id: str) -> float | None:
    if len(batch_id) != 26:
        return None
    value = 0
    for ch in batch_id.upper():
        index = _CROCKFORD.find(ch)
        if index < 0:
            return None
        value = (value << 5) | index
    return (value >> 80) / 1000.0


def _fraction(*parts: str) -> float:
    return zlib.crc32(":".join(parts).encode()) / 2**32


# admit()'s verdict for {"lose_answer": true}: do the request, then close the connection unanswered.
LOSE_ANSWER: tuple[int, dict, dict] = (0, {}, {})


class SinchError(Exception):
    def __init__(self, status: int, code: str, text: str):
        super().__init__(text)
        self.status, self.code, self.text = status, code, text


@dataclass
class Batch:
    id: str
    plan: str
    to: list[str]
    from_: str
    body: str
    type: str
    delivery_report: str
    callback_url: str
    client_reference: str
    parameters: dict
    created: float  # unix time
    send_at: str | None
    expire_at: str | None
    canceled: bool = False

    def as_json(self) -> dict:
        data = {
            "id": self.id,
            "to": self.to,
            "from": self.from_,
            "canceled": self.canceled,
            "body": self.body,
            "type": self.type,
            "created_at": now_iso(self.created),
            "modified_at": now_iso(self.created),
            "delivery_report": self.delivery_report,
            "flash_message": False,
        }
        for key, value in (
            ("callback_url", self.callback_url),
            ("client_reference", self.client_reference),
            ("parameters", self.parameters),
            ("send_at", self.send_at),
            ("expire_at", self.expire_at),
        ):
            if value:
                data[key] = value
        return data


def render_body(body: str, parameters: dict, recipient: str) -> str:
    if not parameters:
        return body

    def fill(match: re.Match) -> str:
        values = parameters.get(match.group(1))
        if values is None:
            return match.group(0)
        return values.get(recipient, values.get(recipient.lstrip("+"), values.get("default", "")))

    return _PLACEHOLDER.sub(fill, body)


class SandboxState:
    """Everything one sandbox process holds, plus the outcome rules shared by all processes."""

    def __init__(self, config: SandboxConfig, sender: ReportSender | None = None):
        self.config = config
        self.lock = threading.Lock()
        self.batches: OrderedDict[str, Batch] = OrderedDict()
        self.by_reference: dict[str, list[str]] = {}
        self.inbounds: list[dict] = []
        self.forced: list[dict] = []  # queued forced answers (/_sandbox/next)
        self.status_overrides: dict[str, str] = {}  # msisdn → final status word
        # The Numbers API's view: E.164 → (project id, service plan id) of the project that holds it.
        self.numbers: dict[str, tuple[str, str]] = {}
        self.counters = {
            "requests": 0,
            "batches": 0,
            "recipients": 0,
            "reports_scheduled": 0,
            "throttled": 0,
            "errors_injected": 0,
        }
        self.sender = sender or ReportSender(concurrency=config.report_concurrency, max_attempts=config.report_attempts)
        self._bucket = (config.rate_limit, time.monotonic())
        # An outage window (POST /_sandbox/outage): every API request is answered `outage_status` until then.
        self.outage_until = 0.0
        self.outage_status = 503
        # (unix time, method, path) of the last API requests, for tests of our pacing (GET /_sandbox/requests).
        self.request_log: deque[tuple[float, str, str]] = deque(maxlen=20_000)
        self._journal_lock = threading.Lock()
        if config.journal:
            self._journal_load(config.journal)

    # -- journal ------------------------------------------------------------------------------------------

    def _journal_load(self, path: str) -> None:
        if not os.path.exists(path):
            return
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    d = json.loads(line)
                except ValueError:
                    continue  # a line torn by a kill mid-write
                batch = Batch(
                    d["id"], d["plan"], d["to"], d["from"], d["body"], d["type"], d["delivery_report"],
                    d.get("callback_url", ""), d.get("client_reference", ""), d.get("parameters") or {},
                    d["created"], d.get("send_at"), d.get("expire_at"),
                )  # fmt: skip
                self.batches[batch.id] = batch
                if batch.client_reference:
                    self.by_reference.setdefault(batch.client_reference, []).append(batch.id)

    def _journal_append(self, batch: Batch) -> None:
        record = {**batch.as_json(), "plan": batch.plan, "created": batch.created}
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._journal_lock, open(self.config.journal, "a", encoding="utf-8") as f:
            f.write(line)

    # -- outcomes ------------------------------------------------------------------------------------

    def outcome(self, batch_id: str, msisdn: str) -> tuple[str, float]:
        """(final status word, seconds after acceptance it becomes final)."""
        c = self.config
        digits = msisdn.lstrip("+")
        word = self.status_overrides.get(digits)
        if word is None:
            x, acc = _fraction(c.seed, batch_id, digits), 0.0
            word = next(iter(c.mix))
            for name, weight in c.mix.items():
                acc += weight
                word = name
                if x < acc:
                    break
        delay = c.delay_min + _fraction(c.seed, "delay", batch_id, digits) * max(0.0, c.delay_max - c.delay_min)
        return word, delay

    def recipient_report(
        self, batch_id: str, msisdn: str, client_reference: str, created: float, at: float | None = None
    ) -> dict:
        word, delay = self.outcome(batch_id, msisdn)
        now = time.time() if at is None else at
        if now < created + delay:
            word = "Dispatched"
        report = {
            "type": "recipient_delivery_report_sms",
            "batch_id": batch_id,
            "recipient": msisdn.lstrip("+"),
            "code": STATUS_CODES[word],
            "status": word,
            "at": now_iso(now),
            "operator_status_at": now_iso(min(now, created + delay)),
        }
        if client_reference:
            report["client_reference"] = client_reference
        return report

    # -- rate limiting and injected failures ------------------------------------------------------------

    def admit(self) -> tuple[int, dict, dict] | None:
        """None to proceed, or a forced (status, body, headers) answer; LOSE_ANSWER: proceed, then drop
        the connection instead of answering (the carrier did the work, its answer never arrives)."""
        c = self.config
        with self.lock:
            self.counters["requests"] += 1
            if self.outage_until and time.monotonic() < self.outage_until:
                self.counters["errors_injected"] += 1
                body = {"code": "service_unavailable", "text": "Outage (sandbox)"}
                return self.outage_status, body, {}
            if self.forced:
                spec = self.forced[0]
                spec["count"] = spec.get("count", 1) - 1
                if spec["count"] <= 0:
                    self.forced.pop(0)
                forced = dict(spec)
            else:
                forced = None
            if forced is None and c.rate_limit > 0:
                tokens, last = self._bucket
                now = time.monotonic()
                tokens = min(c.rate_limit, tokens + (now - last) * c.rate_limit)
                if tokens < 1:
                    self._bucket = (tokens, now)
                    self.counters["throttled"] += 1
                    return 429, {"code": "too_many_requests", "text": "Too many requests"}, {"Retry-After": "1"}
                self._bucket = (tokens - 1, now)
        if forced is not None:
            if forced.get("sleep"):
                time.sleep(float(forced["sleep"]))
            if forced.get("lose_answer"):
                return LOSE_ANSWER
            if not forced.get("status"):
                return None
            headers = {"Retry-After": str(forced["retry_after"])} if forced.get("retry_after") is not None else {}
            body = forced.get("body") or {
                "code": forced.get("code", "internal_error"),
                "text": forced.get("text", "Injected by the sandbox"),
            }
            return int(forced["status"]), body, headers
        if c.error_rate and random.random() < c.error_rate:
            self.counters["errors_injected"] += 1
            return 500, {"code": "internal_error", "text": "Internal error (sandbox)"}, {}
        if c.throttle_rate and random.random() < c.throttle_rate:
            self.counters["throttled"] += 1
            return 429, {"code": "too_many_requests", "text": "Too many requests"}, {"Retry-After": "1"}
        return None

    # -- API operations -------------------------------------------------------------------------------

    def create_batch(self, plan: str, data: object) -> Batch:
        if not isinstance(data, dict):
            raise SinchError(400, "syntax_invalid_json", "The JSON body is not an object")
        to = data.get("to")
        if not isinstance(to, list) or not 1 <= len(to) <= 1000:
            raise SinchError(400, "syntax_constraint_violation", "to: size must be between 1 and 1000")
        for number in to:
            if not isinstance(number, str) or not _MSISDN.match(number):
                raise SinchError(400, "syntax_invalid_parameter_format", f"to: invalid msisdn {number!r}")
        kind = data.get("type", "mt_text")
        if kind not in ("mt_text", "mt_binary"):
            raise SinchError(400, "syntax_invalid_parameter_format", f"type: unknown value {kind!r}")
        body = data.get("body")
        if not isinstance(body, str) or body == "":
            raise SinchError(400, "syntax_constraint_violation", "body: may not be empty")
        sender = data.get("from", "")
        if not isinstance(sender, str):
            raise SinchError(400, "syntax_invalid_parameter_format", "from: must be a string")
        report = data.get("delivery_report", "none")
        if report not in DELIVERY_REPORT_KINDS:
            raise SinchError(400, "syntax_invalid_parameter_format", f"delivery_report: unknown value {report!r}")
        callback = data.get("callback_url") or ""
        if not isinstance(callback, str) or (callback and not callback.startswith(("http://", "https://"))):
            raise SinchError(400, "syntax_invalid_parameter_format", "callback_url: must be an http(s) URL")
        reference = data.get("client_reference") or ""
        if not isinstance(reference, str) or len(reference) > 128:
            raise SinchError(400, "syntax_constraint_violation", "client_reference: at most 128 characters")
        parameters = data.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise SinchError(400, "syntax_invalid_parameter_format", "parameters: must be an object")
        for name, values in parameters.items():
            if not _PARAM_NAME.match(name) or not isinstance(values, dict):
                raise SinchError(400, "syntax_invalid_parameter_format", f"parameters: invalid parameter {name!r}")
            for key, value in values.items():
                if not isinstance(value, str) or len(value) > 160:
                    raise SinchError(
                        400,
                        "syntax_invalid_parameter_format",
                        f"parameters.{name}.{key}: values are strings of at most 160 characters",
                    )
        if report != "none" and not (callback or self.config.default_callback_url):
            raise SinchError(403, "missing_callback_url", "A delivery report was requested without callback URL")
        created = time.time()
        batch = Batch(
            new_batch_id(created),
            plan,
            to,
            sender,
            body,
            kind,
            report,
            callback,
            reference,
            parameters,
            created,
            data.get("send_at"),
            data.get("expire_at"),
        )
        if self.config.journal:
            # Recorded before it is visible or answered: accepted means recorded (a failed write is a 500).
            try:
                self._journal_append(batch)
            except OSError as exc:
                raise SinchError(500, "internal_error", f"journal write failed: {type(exc).__name__}") from None
        with self.lock:
            self.batches[batch.id] = batch
            if reference:
                self.by_reference.setdefault(reference, []).append(batch.id)
            while len(self.batches) > self.config.max_batches:
                _, old = self.batches.popitem(last=False)
                if old.client_reference in self.by_reference:
                    ids = self.by_reference[old.client_reference]
                    if old.id in ids:
                        ids.remove(old.id)
                    if not ids:
                        del self.by_reference[old.client_reference]
            self.counters["batches"] += 1
            self.counters["recipients"] += len(to)
        self._schedule_reports(batch)
        return batch

    def _schedule_reports(self, batch: Batch) -> None:
        url = batch.callback_url or self.config.default_callback_url
        if batch.delivery_report == "none" or not url:
            return
        c = self.config
        start = time.monotonic()
        items: list[tuple[float, str, bytes]] = []
        if batch.delivery_report in ("per_recipient", "per_recipient_final"):
            for msisdn in batch.to:
                word, delay = self.outcome(batch.id, msisdn)
                final = self.recipient_report(
                    batch.id, msisdn, batch.client_reference, batch.created, at=batch.created + delay
                )
                body = json.dumps(final).encode()
                items.append((start + delay, url, body))
                if c.duplicate_rate and random.random() < c.duplicate_rate:
                    items.append((start + delay + random.uniform(0.01, 0.3), url, body))
                if batch.delivery_report == "per_recipient" and c.dispatched:
                    early = self.recipient_report(
                        batch.id, msisdn, batch.client_reference, batch.created, at=batch.created + delay / 3
                    )
                    late = c.out_of_order_rate and random.random() < c.out_of_order_rate
                    items.append((start + (delay + 0.05 if late else delay / 3), url, json.dumps(early).encode()))
        else:
            last = max(self.outcome(batch.id, m)[1] for m in batch.to)
            report = self.batch_report(batch, full=batch.delivery_report == "full", at=batch.created + last)
            report["type"] = "delivery_report_sms"
            items.append((start + last, url, json.dumps(report).encode()))
        with self.lock:
            self.counters["reports_scheduled"] += len(items)
        self.sender.schedule(items)

    def batch_report(
        self,
        batch: Batch,
        *,
        full: bool,
        at: float | None = None,
        status_filter: set[str] | None = None,
        code_filter: set[str] | None = None,
    ) -> dict:
        groups: dict[tuple[str, int], list[str]] = {}
        for msisdn in batch.to:
            r = self.recipient_report(batch.id, msisdn, batch.client_reference, batch.created, at=at)
            groups.setdefault((r["status"], r["code"]), []).append(r["recipient"])
        statuses = []
        for (word, code), recipients in groups.items():
            if status_filter and word.lower() not in status_filter:
                continue
            if code_filter and str(code) not in code_filter:
                continue
            entry = {"code": code, "status": word, "count": len(recipients)}
            if full:
                entry["recipients"] = recipients
            statuses.append(entry)
        report = {
            "type": "delivery_report_sms",
            "batch_id": batch.id,
            "total_message_count": len(batch.to),
            "statuses": statuses,
        }
        if batch.client_reference:
            report["client_reference"] = batch.client_reference
        return report

    def find_batch(self, batch_id: str) -> Batch | None:
        with self.lock:
            return self.batches.get(batch_id)

    def list_batches(self, query: dict[str, str]) -> dict:
        page, size = int(query.get("page", 0)), min(int(query.get("page_size", 30)), 100)
        with self.lock:
            if query.get("client_reference"):
                ids = self.by_reference.get(query["client_reference"], [])
                batches = [self.batches[i] for i in ids if i in self.batches]
            else:
                batches = list(self.batches.values())
        if query.get("from"):
            senders = set(query["from"].split(","))
            batches = [b for b in batches if b.from_ in senders]
        batches.sort(key=lambda b: b.created, reverse=True)
        chunk = batches[page * size : (page + 1) * size]
        return {"count": len(batches), "page": page, "page_size": len(chunk), "batches": [b.as_json() for b in chunk]}

    def list_delivery_reports(self, query: dict[str, str]) -> dict:
        page, size = int(query.get("page", 0)), min(int(query.get("page_size", 30)), 100)
        statuses = {s.strip().lower() for s in query.get("status", "").split(",") if s.strip()}
        codes = {s.strip() for s in query.get("code", "").split(",") if s.strip()}
        with self.lock:
            if query.get("client_reference"):
                ids = self.by_reference.get(query["client_reference"], [])
                batches = [self.batches[i] for i in ids if i in self.batches]
            else:
                batches = list(self.batches.values())
        now = time.time()
        reports = []
        for batch in batches:
            for msisdn in batch.to:
                r = self.recipient_report(batch.id, msisdn, batch.client_reference, batch.created, at=now)
                if r["status"] == "Dispatched":  # the list holds finished reports only
                    continue
                if (statuses and r["status"].lower() not in statuses) or (codes and str(r["code"]) not in codes):
                    continue
                reports.append(r)
        chunk = reports[page * size : (page + 1) * size]
        return {"count": len(reports), "page": page, "page_size": len(chunk), "delivery_reports": chunk}

    def add_inbound(self, data: dict) -> dict:
        kind = data.get("type", "mo_text")
        mo = {
            "type": kind,
            "id": new_batch_id(),
            "from": str(data.get("from", "")).lstrip("+"),
            "to": str(data.get("to", "")).lstrip("+"),
            "body": data.get("body", ""),
            "received_at": now_iso(),
            "sent_at": now_iso(),
            "operator_id": "310260",
        }
        if kind == "mo_binary":
            mo["udh"] = data.get("udh", "")
        if data.get("client_reference"):
            mo["client_reference"] = data["client_reference"]
        with self.lock:
            self.inbounds.append(mo)
        url = data.get("url") or self.config.inbound_url
        if url:
            self.sender.schedule([(time.monotonic(), url, json.dumps(mo).encode())])
        return mo

    def reset(self) -> None:
        with self.lock:
            self.batches.clear()
            self.by_reference.clear()
            self.inbounds.clear()
            self.forced.clear()
            self.status_overrides.clear()
            self.numbers.clear()
            self.outage_until = 0.0
            self.request_log.clear()
            for key in self.counters:
                self.counters[key] = 0
        self.sender.clear()
