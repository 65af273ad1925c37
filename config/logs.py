"""Log lines as JSON, each with the request id (and, in a worker, the task) it belongs to.

- `RequestIdMiddleware` (first in MIDDLEWARE) takes the caller's `X-Request-ID` when it is a plain token
  (letters, digits, `._-`, ≤ 64), else makes one, keeps it in a context variable for the request, and
  returns it in the response's `X-Request-ID`.
- A task published while a request id is set carries it in a message header (config/celery.py); the
  worker sets it again around the task, so a task's log lines name the request that caused it.
- `ContextFilter` copies request id and task onto every record; `JsonFormatter` writes one JSON object
  per line: time (UTC), level, logger, message, request_id, task_id/task_name, exc_info.
LOG_FORMAT=plain switches to one readable line for development. See docs/operations.md.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

REQUEST_ID_HEADER = "X-Request-ID"
TASK_HEADER = "parley_request_id"  # the Celery message header that carries it to a worker
_VALID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

request_id_var: ContextVar[str] = ContextVar("parley_request_id", default="")
task_var: ContextVar[tuple[str, str]] = ContextVar("parley_task", default=("", ""))


def new_request_id() -> str:
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get(REQUEST_ID_HEADER, "")
        rid = given if _VALID.match(given) else new_request_id()
        request.request_id = rid
        token = request_id_var.set(rid)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response[REQUEST_ID_HEADER] = rid
        return response


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.task_id, record.task_name = task_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            data["request_id"] = request_id
        task_id, task_name = getattr(record, "task_id", "") or "", getattr(record, "task_name", "") or ""
        if not task_id:
            task_id, task_name = task_var.get()
        if task_id:
            data["task_id"], data["task_name"] = task_id, task_name
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exc_info"] = record.exc_text
        if record.stack_info:
            data["stack_info"] = record.stack_info
        return json.dumps(data, ensure_ascii=False, default=str)


def install(handlers: list[logging.Handler], *, json_lines: bool) -> None:
    """Context filter (and JSON format) on handlers configured outside LOGGING (a Celery worker's)."""
    for handler in handlers:
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
        if json_lines and not isinstance(handler.formatter, JsonFormatter):
            handler.setFormatter(JsonFormatter())
