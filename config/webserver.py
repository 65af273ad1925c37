"""The web app's server command, one definition for `make run` (config/devserver.py) and the benchmarks.

Granian (a Rust HTTP server with a WSGI interface) serves `config.wsgi:application`. Chosen over
gunicorn by measurement: the busiest URL is the carrier delivery-report webhook (one request per
recipient), and with the same app, 2 workers and wrk posting Sinch reports
(bench/bench_webhooks.py), gunicorn (gthread) spent 0.54–0.65 ms of CPU per request against 0.35 ms
for Granian (1,800–1,900 against 2,700–2,900 stored reports/s); in the closed-loop send benchmark
the web tier's CPU fell by a third and end-to-end messages/s rose by a quarter (docs/send-pipeline.md).

Threads: each worker runs the WSGI app in `threads` blocking threads, so concurrent webhook INSERTs
of a worker wait on PostgreSQL together (their commits share WAL flushes).
"""

from __future__ import annotations

import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
WSGI_APP = "config.wsgi:application"


def web_command(
    *,
    port: int,
    workers: int = 2,
    threads: int = 4,
    host: str = "127.0.0.1",
    app: str = WSGI_APP,
    log_level: str = "warning",
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "wsgi",
        app,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--blocking-threads",
        str(threads),
        "--backlog",
        "2048",
        "--no-ws",
        "--working-dir",
        str(BASE_DIR),
        # Never an access log: the carrier webhook URLs carry their account's secret in the path.
        "--no-access-log",
        "--log-level",
        log_level,
    ]
