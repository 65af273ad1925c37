"""Requests through config.wsgi.application — the app the web server serves, lanes included
(config/lanes.py) — for tests that must cover both a lane and Django's own route."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass


@dataclass
class WsgiResponse:
    status_code: int
    content: bytes
    headers: dict[str, str]

    def json(self):
        return json.loads(self.content)

    def __getitem__(self, name: str) -> str:
        return self.headers[name]


def wsgi_request(method: str, path: str, body: bytes = b"", **meta) -> WsgiResponse:
    """One request through config.wsgi.application. As Django's test client does, the connection-closing
    signal receivers are disconnected for the call: the test's transaction must survive the "request"."""
    from django.core import signals
    from django.db import close_old_connections

    from config.wsgi import application

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.url_scheme": "http",
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        **meta,
    }
    started: list = []
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        chunks = application(environ, lambda status, hdrs, exc_info=None: started.extend((status, hdrs)))
        content = b"".join(chunks)
        getattr(chunks, "close", lambda: None)()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    status, hdrs = started
    return WsgiResponse(int(status.split()[0]), content, dict(hdrs))


class WsgiClient:
    """The few Client methods the tests use, through the WSGI application; default META as given."""

    def __init__(self, **defaults):
        self.defaults = defaults

    def get(self, path: str, **meta) -> WsgiResponse:
        return wsgi_request("GET", path, **{**self.defaults, **meta})

    def head(self, path: str, **meta) -> WsgiResponse:
        return wsgi_request("HEAD", path, **{**self.defaults, **meta})

    def post(self, path: str, data: bytes = b"", **meta) -> WsgiResponse:
        return wsgi_request("POST", path, data, **{**self.defaults, **meta})
