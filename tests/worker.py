"""Real processes for tests: a Celery worker against the pytest-django test database, the sandbox
carrier, and a tiny scriptable Sinch fake (slow or failing on demand) for crash tests.

Usage (tests must be transactional so the worker sees committed rows):

    from tests.worker import celery_worker_proc, sandbox_carrier  # noqa: F401  (fixtures)

    @pytest.mark.worker
    @pytest.mark.django_db(transaction=True)
    def test_x(celery_worker_proc, sandbox_carrier):
        celery_worker_proc.start(queues="prepare,send")
        ...

The worker is `celery -A config worker -Q <queues> --pool prefork -c 2`, started in its own process
group with DATABASE_URL pointing at the test database (and DATABASE_TEST_NAME for good measure),
the same REDIS_URL/broker as the test process, and a short broker visibility timeout so that a task
of a killed worker is redelivered to the next worker within seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from config.workers import worker_command

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _test_database_url() -> str:
    from urllib.parse import quote

    from django.db import connection

    s = connection.settings_dict
    auth = quote(s["USER"]) + (f":{quote(s['PASSWORD'], safe='')}" if s.get("PASSWORD") else "")
    host = s["HOST"] or "127.0.0.1"
    if host.startswith("/"):  # a Unix-socket folder (the embedded server): the form settings/database.py reads
        return f"postgresql://{auth}@/{s['NAME']}?host={host}" + (f"&port={s['PORT']}" if s["PORT"] else "")
    return f"postgres://{auth}@{host}:{s['PORT'] or 5432}/{s['NAME']}"


def connection_name() -> str:
    from django.db import connection

    return connection.settings_dict["NAME"]


def broker_tasks(task_name: str, queues: tuple[str, ...]) -> list[list]:
    """The args of every `task_name` waiting in the broker's Redis lists `queues`, oldest first per queue."""
    import base64

    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    found = []
    for key in queues:
        for raw in reversed(client.lrange(key, 0, -1)):  # kombu LPUSHes: oldest last
            msg = json.loads(raw)
            if msg["headers"]["task"] == task_name:
                found.append(json.loads(base64.b64decode(msg["body"]))[0])
    return found


def purge_queues() -> None:
    """Drop queued tasks left by an earlier run (only the queue lists and kombu's unacked bookkeeping;
    on RabbitMQ the queues themselves)."""
    import redis
    from django.conf import settings

    from config.queues import Queue, is_amqp

    if is_amqp(settings.CELERY_BROKER_URL):
        purge_amqp_queues(settings.CELERY_BROKER_URL)
        return
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(*[q.value for q in Queue], "unacked", "unacked_index", "unacked_mutex")


def broker_is_redis() -> bool:
    from django.conf import settings

    from config.queues import is_amqp

    return not is_amqp(settings.CELERY_BROKER_URL)


class WorkerProc:
    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="celery-worker-", suffix=".log")[1])
        self._log = None

    def start(
        self,
        queues: str = "prepare,send,default",
        concurrency: int = 2,
        env: dict | None = None,
        ready_timeout: float = 60.0,
        beat: bool = False,
    ) -> WorkerProc:
        """beat=True embeds Celery beat (`-B`, the project's schedule in config/beat.py): the sweepers run
        as in production."""
        if self.proc is not None:
            self.stop()
        if self._log:
            self._log.close()
        full_env = dict(os.environ)
        full_env.update(
            DATABASE_URL=_test_database_url(),
            DATABASE_TEST_NAME=connection_name(),
            DJANGO_SETTINGS_MODULE="tests.worker_settings",
            CELERY_PREFETCH_MULTIPLIER="1",
            PYTHONUNBUFFERED="1",
        )
        full_env.update(env or {})
        # One log file per start: "ready." and task lines of an earlier (killed) worker must not count.
        self.log_path = Path(tempfile.mkstemp(prefix="celery-worker-", suffix=".log")[1])
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            worker_command(
                queues=queues,
                concurrency=concurrency,
                name=f"test-{uuid.uuid4().hex[:8]}@%h",
                standalone=True,
                beat_schedule=str(self.log_path.with_suffix(".beat")) if beat else "",
            ),
            cwd=ROOT,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{self.log()}")
            if b" ready." in self.log_path.read_bytes():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"celery worker not ready after {ready_timeout}s:\n{self.log()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-8000:]

    def kill9(self) -> None:
        """SIGKILL the worker and its pool children at once (the whole process group): a power cut."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None


AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def amqp_reachable(url: str = AMQP_URL) -> str | None:
    """None when RabbitMQ at `url` accepts us; else why not (for pytest.skip)."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # noqa: BLE001 - any failure means: no RabbitMQ for this test
        return f"RabbitMQ not reachable at {url.split('@')[-1]} ({type(exc).__name__}: {exc}); set TEST_AMQP_URL"
    return None


def purge_amqp_queues(url: str = AMQP_URL) -> None:
    """Delete our queues on the test vhost (a worker declares them again, as quorum queues): a queue an
    older run declared with other arguments (a classic one) would make that declaration fail."""
    from kombu import Connection

    from config.queues import Queue

    with Connection(url) as conn:
        for q in Queue:
            channel = conn.channel()
            try:
                channel.queue_delete(q.value)
            except Exception:  # noqa: BLE001,S110 - a queue not declared yet has nothing to delete
                pass
            finally:
                channel.close()


@contextlib.contextmanager
def publishing_to(url: str):
    """This process's Celery app publishes to `url` (the worker under test uses another broker than the
    suite's), with that broker's settings (quorum queues on RabbitMQ); restored afterwards."""
    from django.conf import settings

    from config.celery import app
    from config.queues import broker_settings

    keys = ("broker_url", "broker_transport_options", "task_queues", "worker_detect_quorum_queues")
    keys += ("task_create_missing_queue_type", "task_create_missing_queue_exchange_type")
    before = {key: app.conf.get(key) for key in keys}

    def switch(conf: dict) -> None:
        app.conf.update(conf)
        app._pool = None
        amqp = app.amqp
        amqp._producer_pool = None
        amqp._rtable = None
        for cached in ("queues", "router"):  # cached_property: built again from the new task_queues
            amqp.__dict__.pop(cached, None)

    switch({"broker_url": url, **broker_settings(url, settings.CELERY_BROKER_TRANSPORT_OPTIONS)})
    try:
        yield
    finally:
        switch(before)


def flush_broker() -> None:
    """FLUSHDB of the broker's Redis database: every queued task, kombu's bookkeeping, our caches."""
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


@pytest.fixture
def celery_worker_proc(transactional_db):
    """A not-yet-started worker; call .start(queues=..., concurrency=..., env=...). Stopped at teardown,
    before the test database is flushed."""
    purge_queues()
    worker = WorkerProc()
    yield worker
    worker.stop()
    purge_queues()


class SandboxProc:
    def __init__(self, port: int, proc: subprocess.Popen):
        self.port, self.proc = port, proc
        self.url = f"http://127.0.0.1:{port}"


def start_sandbox(*args: str, port: int | None = None, env: dict | None = None) -> SandboxProc:
    """`python -m carriers.sandbox --port N [args]`, waited for until it answers."""
    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "carriers.sandbox", "--port", str(port), *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_port(port, proc, "sandbox", timeout=20)
    return SandboxProc(port, proc)


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 30) -> None:
    """Until `proc` accepts connections on `port`; RuntimeError if it exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited early") from None
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start")


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@contextlib.contextmanager
def served_web(app: str = "config.wsgi:application", port: int | None = None, **env_extra: str) -> Iterator[str]:
    """The web server (config/webserver.py: Granian) serving `app` against the test database, 1 worker of
    2 threads, on `port` (a free one by default); yields its base URL. The test must be transactional (the
    server is another process)."""
    from config.webserver import web_command

    port = port or free_port()
    env = dict(
        os.environ,
        DATABASE_URL=_test_database_url(),
        DATABASE_TEST_NAME=connection_name(),
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    env.update(env_extra)
    proc = subprocess.Popen(
        web_command(port=port, workers=1, threads=2, app=app), cwd=ROOT, env=env, start_new_session=True
    )
    try:
        wait_port(port, proc, "the web server")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


@pytest.fixture
def sandbox_carrier():
    """The project's sandbox carrier (Sinch XMS on loopback) in a subprocess; .url is its base URL."""
    sandbox = start_sandbox("--delay-min", "0.05", "--delay-max", "0.2")
    yield sandbox
    stop_process(sandbox.proc)


class FakeSinch:
    """A scriptable Sinch XMS fake in a thread of the test process, for what the sandbox has no knob for.

    - `hold_seconds`: POST /batches waits this long before answering (a worker can be killed mid-call);
    - `accept_before_hold`: record the batch on arrival (the carrier got it even if the caller dies)
      or only after the hold, and only if the caller is still connected (a caller killed during the
      hold leaves no batch at the carrier, however long the hold outlasts it);
    - `fail_next`: list of HTTP statuses to answer the next POSTs with (500, 429, 400...);
    - `release`: when set to a threading.Event, POST /batches answers only once it is set (at most 60 s):
      the test decides when the caller learns the batch id.
    GET /batches?client_reference=... lists accepted batches, as Sinch's list endpoint does.
    """

    def __init__(self):
        self.batches: list[dict] = []
        self.requests: list[dict] = []
        self.hold_seconds = 0.0
        self.accept_before_hold = True
        self.fail_next: list[int] = []
        self.release: threading.Event | None = None
        self.lock = threading.Lock()
        self.arrived = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    payload = json.loads(raw)
                except ValueError:
                    payload = None
                if len(raw) < length or not isinstance(payload, dict) or "to" not in payload:
                    # A caller killed mid-request leaves a torn body: Sinch refuses it, nothing is sent.
                    return self._answer(400, {"code": "syntax_invalid_json", "text": "torn or invalid body"})
                with fake.lock:
                    fake.requests.append(payload)
                    status = fake.fail_next.pop(0) if fake.fail_next else 201
                if status != 201:
                    code = "syntax_invalid_parameter_format" if status == 400 else "internal"
                    return self._answer(status, {"code": code, "text": f"fake says {status}"})
                batch = {**payload, "id": "FB" + uuid.uuid4().hex[:20].upper()}
                if fake.accept_before_hold:
                    with fake.lock:
                        fake.batches.append(batch)
                fake.arrived.set()
                if fake.hold_seconds:
                    time.sleep(fake.hold_seconds)
                if fake.release is not None:
                    fake.release.wait(60)
                if not fake.accept_before_hold:
                    if self._caller_gone():
                        return  # killed during the hold: the carrier never got the batch
                    with fake.lock:
                        fake.batches.append(batch)
                self._answer(201, batch)

            def _caller_gone(self) -> bool:
                # A caller killed with SIGKILL leaves its socket closed by the kernel: EOF (or a reset)
                # is readable at once. Without this check a hold that outlasted the test's own waits
                # (a loaded machine) recorded the dead caller's batch, and its 20 texts went twice.
                try:
                    return self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
                except BlockingIOError:
                    return False
                except OSError:
                    return True

            def do_GET(self):  # noqa: N802
                url = urlsplit(self.path)
                ref = (parse_qs(url.query).get("client_reference") or [""])[0]
                with fake.lock:
                    found = [b for b in fake.batches if not ref or b.get("client_reference") == ref]
                self._answer(200, {"batches": found[:1] if ref else found, "count": len(found), "page": 0})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeSinch:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def recipients_sent(self) -> list[str]:
        with self.lock:
            return [r for b in self.batches for r in b["to"]]


@pytest.fixture
def fake_sinch():
    with FakeSinch() as fake:
        yield fake
