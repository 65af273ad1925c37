"""The sandbox carrier's HTTP side: a real server speaking Sinch's XMS REST API, for dev, tests and benchmarks.

Stdlib only (ThreadingHTTPServer, HTTP/1.1 keep-alive), no Django: it is the carrier, not our app.
The handler parses requests, answers in Sinch's wire format and delegates every decision to the
state (state.py: batches, outcomes, reports, inbound texts, counters). Lists (batches,
delivery_reports, inbounds) cover the answering process only. See docs/carriers.md.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from .state import (
    FINAL_STATUSES,
    LOSE_ANSWER,
    SandboxConfig,
    SandboxState,
    SinchError,
    batch_created_at,
    render_body,
)

_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_ROUTE = re.compile(r"^/xms/v1/(?P<plan>[^/]+)/(?P<rest>.*)$")
# Sinch's Numbers API: GET /v1/projects/{project}/activeNumbers/{phoneNumber}.
_NUMBER_ROUTE = re.compile(r"^/v1/projects/(?P<project>[^/]+)/activeNumbers/(?P<number>[^/]+)$")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SinchSandbox/1.0"
    # Headers and body leave in one write, and Nagle is off: two small writes on a keep-alive
    # connection otherwise meet the client's delayed ACK (~40 ms a response, measured: ~350 req/s).
    disable_nagle_algorithm = True
    state: SandboxState  # set on the subclass built by make_server

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature; silence per-request logs
        pass

    # -- plumbing ------------------------------------------------------------------------------------

    def _send(self, status: int, body: object = None, headers: dict | None = None) -> None:
        if getattr(self, "_lose_answer", False):
            # The request was carried out; its answer is lost (the connection drops unanswered).
            self._lose_answer = False
            self.close_connection = True
            return
        payload = b"" if body is None else json.dumps(body).encode()
        self.log_request(status)
        head = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
            "Content-Type: application/json",
            f"Content-Length: {len(payload)}",
        ]
        head.extend(f"{name}: {value}" for name, value in (headers or {}).items())
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)

    def _read_json(self) -> object:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw)
        except ValueError:
            raise SinchError(400, "syntax_invalid_json", "The JSON is not well formed") from None

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return False
        expected = self.state.config.token
        return not expected or auth[7:].strip() == expected

    def do_GET(self):  # noqa: N802 - stdlib naming
        self._dispatch("GET")

    def do_POST(self):  # noqa: N802
        self._dispatch("POST")

    def do_DELETE(self):  # noqa: N802
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            if parts.path.startswith("/_sandbox/"):
                return self._control(method, parts.path, query)
            number_match = _NUMBER_ROUTE.match(parts.path)
            if number_match and method == "GET":
                return self._active_number(unquote(number_match["project"]), unquote(number_match["number"]))
            match = _ROUTE.match(parts.path)
            if not match:
                raise SinchError(404, "not_found", "Unknown path")
            if not self._authorized():
                # Sinch answers a missing or wrong token with 401 and its error shape.
                if method == "POST":
                    self.rfile.read(int(self.headers.get("Content-Length") or 0))
                return self._send(401, {"code": "unauthorized", "text": "Invalid or missing bearer token"})
            self.state.request_log.append((time.time(), method, parts.path))
            forced = self.state.admit()
            if forced is LOSE_ANSWER:
                self._lose_answer = True
            elif forced is not None:
                if method == "POST":
                    self.rfile.read(int(self.headers.get("Content-Length") or 0))
                return self._send(*forced)
            self._api(method, match.group("plan"), unquote(match.group("rest")).strip("/"), query)
        except SinchError as exc:
            self._send(exc.status, {"code": exc.code, "text": exc.text})
        except (ValueError, KeyError) as exc:
            self._send(400, {"code": "syntax_invalid_parameter_format", "text": str(exc)})

    def _active_number(self, project: str, number: str) -> None:
        """The Numbers API's active number, as Sinch answers it: 200 with the number's SMS configuration,
        404 in Google's error shape when the project does not hold it. Basic (access key) or Bearer auth."""
        auth = self.headers.get("Authorization", "")
        if not (auth.startswith("Basic ") and auth[6:].strip()) and not self._authorized():
            return self._send(401, {"error": {"code": 401, "message": "Unauthorized", "status": "UNAUTHENTICATED"}})
        self.state.request_log.append((time.time(), "GET", self.path))
        number = "+" + number.strip().lstrip("+")
        with self.state.lock:
            held = self.state.numbers.get(number)
        if held is None and self.state.config.hold_any_number:
            held = (project, project)
        if held is None or held[0] != project:
            return self._send(
                404,
                {"error": {"code": 404, "message": f"Number {number} not found", "status": "NOT_FOUND", "details": []}},
            )
        return self._send(
            200,
            {
                "phoneNumber": number,
                "projectId": project,
                "displayName": "",
                "regionCode": "US",
                "type": "LOCAL",
                "capability": ["SMS"],
                "smsConfiguration": {"servicePlanId": held[1], "campaignId": ""},
            },
        )

    def _api(self, method: str, plan: str, rest: str, query: dict[str, str]) -> None:
        state = self.state
        segments = rest.split("/") if rest else []
        if segments == ["batches"] and method == "POST":
            new_batch = state.create_batch(plan, self._read_json())
            return self._send(201, new_batch.as_json())
        if segments == ["batches"] and method == "GET":
            return self._send(200, state.list_batches(query))
        if len(segments) >= 2 and segments[0] == "batches":
            batch_id = segments[1]
            batch = state.find_batch(batch_id)
            if len(segments) == 2 and method in ("GET", "DELETE"):
                if batch is None:
                    raise SinchError(404, "not_found", f"Batch {batch_id} not found")
                if method == "DELETE":
                    batch.canceled = True
                return self._send(200, batch.as_json())
            if len(segments) == 3 and segments[2] == "delivery_report" and method == "GET":
                if batch is None:
                    raise SinchError(404, "not_found", f"Batch {batch_id} not found")
                kind = query.get("type", "summary")
                if kind not in ("summary", "full"):
                    raise SinchError(400, "syntax_invalid_parameter_format", f"type: unknown value {kind!r}")
                statuses = {s.strip().lower() for s in query.get("status", "").split(",") if s.strip()}
                codes = {s.strip() for s in query.get("code", "").split(",") if s.strip()}
                return self._send(
                    200, state.batch_report(batch, full=kind == "full", status_filter=statuses, code_filter=codes)
                )
            if len(segments) == 4 and segments[2] == "delivery_report" and method == "GET":
                msisdn = segments[3].lstrip("+")
                if batch is not None:
                    if msisdn not in {m.lstrip("+") for m in batch.to}:
                        raise SinchError(404, "not_found", f"No recipient {msisdn} in batch {batch_id}")
                    return self._send(
                        200, state.recipient_report(batch_id, msisdn, batch.client_reference, batch.created)
                    )
                created = batch_created_at(batch_id)
                # Accepted by another --workers process: the outcome rules are shared, so answer from them.
                if created is None or created > time.time() or time.time() - created > 14 * 86400:
                    raise SinchError(404, "not_found", f"Batch {batch_id} not found")
                return self._send(200, state.recipient_report(batch_id, msisdn, "", created))
        if segments == ["delivery_reports"] and method == "GET":
            return self._send(200, state.list_delivery_reports(query))
        if segments and segments[0] == "inbounds" and method == "GET":
            with state.lock:
                inbounds = list(state.inbounds)
            if len(segments) == 2:
                found = next((i for i in inbounds if i["id"] == segments[1]), None)
                if found is None:
                    raise SinchError(404, "not_found", "Inbound not found")
                return self._send(200, found)
            page, size = int(query.get("page", 0)), min(int(query.get("page_size", 30)), 100)
            chunk = inbounds[::-1][page * size : (page + 1) * size]
            return self._send(200, {"count": len(inbounds), "page": page, "page_size": len(chunk), "inbounds": chunk})
        raise SinchError(404, "not_found", f"Unknown operation {method} {rest}")

    def _control(self, method: str, path: str, query: dict[str, str]) -> None:
        """Test/dev hooks outside Sinch's API: inject inbound, inspect, reset, force answers."""
        state = self.state
        if path == "/_sandbox/inbound" and method == "POST":
            data = self._read_json()
            if not isinstance(data, dict) or not data.get("from") or not data.get("to"):
                raise SinchError(400, "syntax_constraint_violation", "from and to are required")
            return self._send(202, state.add_inbound(data))
        if path == "/_sandbox/batches" and method == "GET":
            listing = state.list_batches({**query, "page_size": query.get("page_size", "100")})
            for data in listing["batches"]:
                data["messages"] = [
                    {"to": m, "body": render_body(data["body"], data.get("parameters", {}), m)} for m in data["to"]
                ]
            return self._send(200, listing)
        if path == "/_sandbox/next" and method == "POST":
            data = self._read_json()
            specs = data if isinstance(data, list) else [data]
            if not all(isinstance(s, dict) for s in specs):
                raise SinchError(400, "syntax_invalid_json", "expected an object or a list of objects")
            with state.lock:
                state.forced.extend(dict(s) for s in specs if isinstance(s, dict))
            return self._send(204)
        if path == "/_sandbox/outage" and method == "POST":
            data = self._read_json()
            if not isinstance(data, dict) or not isinstance(data.get("seconds"), int | float):
                raise SinchError(400, "syntax_invalid_json", 'expected {"seconds": N[, "status": 503]}')
            with state.lock:
                state.outage_until = time.monotonic() + float(data["seconds"])
                state.outage_status = int(data.get("status") or 503)
            return self._send(204)
        if path == "/_sandbox/requests" and method == "GET":
            with state.lock:
                log = list(state.request_log)
            return self._send(200, {"requests": [{"at": at, "method": m, "path": p} for at, m, p in log]})
        if path == "/_sandbox/outcomes" and method == "POST":
            data = self._read_json()
            if not isinstance(data, dict):
                raise SinchError(400, "syntax_invalid_json", "expected {msisdn: status}")
            words = {s.lower(): s for s in FINAL_STATUSES}
            with state.lock:
                for msisdn, word in data.items():
                    state.status_overrides[str(msisdn).lstrip("+")] = words[str(word).lower()]
            return self._send(204)
        if path == "/_sandbox/sink" and method == "POST":
            # A do-nothing receiver: lets a benchmark measure another sandbox's report posting alone.
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state.lock:
                state.counters["sink"] = state.counters.get("sink", 0) + 1
            return self._send(200)
        if path == "/_sandbox/stats" and method == "GET":
            with state.lock:
                counters = dict(state.counters)
            return self._send(
                200,
                {
                    **counters,
                    "reports": dict(state.sender.stats),
                    "reports_pending": state.sender.pending(),
                    "pid": os.getpid(),
                },
            )
        if path == "/_sandbox/numbers" and method == "POST":
            # {"+15125550100": {"project": "p", "service_plan_id": "plan"}}; project defaults to the plan.
            data = self._read_json()
            if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
                raise SinchError(400, "syntax_invalid_json", 'expected {"+1...": {"service_plan_id": ...}}')
            with state.lock:
                for number, held in data.items():
                    plan = str(held.get("service_plan_id") or "")
                    state.numbers["+" + str(number).lstrip("+")] = (str(held.get("project") or plan), plan)
            return self._send(204)
        if path == "/_sandbox/reset" and method == "POST":
            state.reset()
            return self._send(204)
        raise SinchError(404, "not_found", "Unknown sandbox control path")


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    reuse_port = False

    def handle_error(self, request, client_address):
        # A client that gave up (timeout test, load generator stopping) is not the sandbox's error.
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def server_bind(self):
        # SO_REUSEPORT: --workers processes each bind the same port; the kernel spreads connections.
        if self.reuse_port:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


def make_server(config: SandboxConfig, *, reuse_port: bool = False) -> tuple[SandboxHTTPServer, SandboxState]:
    state = SandboxState(config)
    handler = type("BoundHandler", (Handler,), {"state": state})
    server_cls = type("BoundServer", (SandboxHTTPServer,), {"reuse_port": reuse_port})
    server = server_cls((config.host, config.port), handler)
    return server, state


class SandboxThread:
    """In-process sandbox for tests: `with SandboxThread(SandboxConfig(port=0)) as sb: sb.url ...`."""

    def __init__(self, config: SandboxConfig | None = None):
        self.config = config or SandboxConfig(port=0)
        self.server, self.state = make_server(self.config)
        self.port = self.server.server_address[1]
        self.url = f"http://{self.config.host}:{self.port}"
        self.service_plan_id = "sandboxplan" + uuid.uuid4().hex[:8]
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="sandbox-http", daemon=True
        )

    def start(self) -> SandboxThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.state.sender.stop()

    def __enter__(self) -> SandboxThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
