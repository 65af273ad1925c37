"""Shared helpers of the benchmarks: Django setup, processes (the web app, Celery workers, the sandbox
carrier), seeding with COPY, polling counters, percentiles. Other bench scripts may import it:

    from common import django_setup; django_setup()   # (bench/ is on sys.path when a script runs)
    from common import Procs, start_web, start_worker, start_sandbox, seed_org, seed_contacts

With DATABASE_URL / REDIS_URL unset, the settings use the embedded services (`make services`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# Benchmarks run with DEBUG off, where the settings refuse the published development key; the processes a
# benchmark starts inherit this one. (`make services` writes a key of the checkout's own, which wins.)
if not os.environ.get("DJANGO_SECRET_KEY"):
    from config.embedded import ENV_FILE

    if "DJANGO_SECRET_KEY=" not in (ENV_FILE.read_text() if ENV_FILE.exists() else ""):
        os.environ["DJANGO_SECRET_KEY"] = "bench-only-secret-key-never-used-outside-the-benchmarks-4d2e7b"  # noqa: S105


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def log(msg: str) -> None:
    print(msg, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_wrk() -> str:
    """The wrk load generator, installed from the system packages when missing."""
    import shutil

    path = shutil.which("wrk")
    if path:
        return path
    log("wrk is missing: apt-get install -y wrk")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "install", "-y", "wrk"], check=True, stdout=subprocess.DEVNULL)
    return shutil.which("wrk") or "wrk"


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}") from None
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not start")


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


class Procs:
    """Processes started by a bench, stopped together (in reverse order) at the end."""

    def __init__(self):
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def add(self, name: str, proc: subprocess.Popen) -> subprocess.Popen:
        self.procs.append((name, proc))
        return proc

    def stop(self, name: str) -> None:
        for n, p in self.procs:
            if n == name:
                stop(p)

    def stop_all(self) -> None:
        for _name, proc in reversed(self.procs):
            stop(proc)
        self.procs.clear()


def bench_env(**extra) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "bench")]),
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start_web(
    port: int, *, workers: int = 2, threads: int = 4, env: dict | None = None, app: str | None = None
) -> subprocess.Popen:
    """The web app as `make run` serves it (config/webserver.py: Granian, `workers` processes of `threads`
    threads), or another WSGI `app` under the same server. Threads matter for webhooks: each stored report
    is one committed INSERT (one WAL flush), and concurrent requests share flushes (group commit)."""
    from config.webserver import WSGI_APP, web_command

    proc = subprocess.Popen(
        web_command(port=port, workers=workers, threads=threads, app=app or WSGI_APP),
        env=env or bench_env(),
        start_new_session=True,
    )
    wait_port(port, proc, "web")
    return proc


def start_worker(
    queues: str, *, concurrency: int = 2, env: dict | None = None, include: str = "", ready_timeout: float = 60
) -> subprocess.Popen:
    """`celery -A config worker -Q <queues> --pool prefork -c N`, returned once it says ready."""
    log_path = Path(tempfile.mkstemp(prefix=f"bench-worker-{queues.replace(',', '-')}-", suffix=".log")[1])
    from config.workers import worker_command

    cmd = worker_command(
        queues=queues,
        concurrency=concurrency,
        name=f"bench-{queues.replace(',', '-')}-{os.getpid()}@%h",
        standalone=True,
        loglevel=os.environ.get("BENCH_WORKER_LOGLEVEL", "WARNING"),
        include=include,
    )
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env or bench_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    # --loglevel WARNING hides "ready."; wait for the consumer via a ping instead.
    from config.celery import app

    deadline = time.monotonic() + ready_timeout
    name = cmd[cmd.index("-n") + 1].replace("%h", socket.gethostname())
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker {queues} exited:\n{log_path.read_text()[-3000:]}")
        try:
            if app.control.ping(destination=[name], timeout=0.5):
                return proc
        except Exception:  # noqa: BLE001, S110 - not up yet
            pass
        time.sleep(0.3)
    raise RuntimeError(f"worker {queues} not ready:\n{log_path.read_text()[-3000:]}")


def start_sandbox(port: int, *args: str, workers: int = 1, env: dict | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "carriers.sandbox", "--port", str(port), "--workers", str(workers), *args],
        cwd=ROOT,
        env=env or bench_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_port(port, proc, "sandbox")
    return proc


def purge_queues(*names: str) -> None:
    """Empty our queues (all by default) on the bench's broker, Redis or RabbitMQ. All of them: also drop
    the apply task's debounce key — a run that stopped its workers during an apply task left it set (60 s
    TTL), and the next run's reports then never published the apply task (no beat in a bench sweeps)."""
    import redis
    from django.conf import settings
    from django.core.cache import cache

    from carriers.services import APPLY_DEBOUNCE_KEY
    from config.queues import Queue, is_amqp

    if not names:
        cache.delete(APPLY_DEBOUNCE_KEY)
    names = names or tuple(q.value for q in Queue)
    if not is_amqp(settings.CELERY_BROKER_URL):
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(*names)
        return
    from kombu import Connection

    with Connection(settings.CELERY_BROKER_URL) as conn:
        for name in names:
            channel = conn.channel()
            try:
                channel.queue_purge(name)
            except Exception:  # noqa: BLE001, S110 - not declared yet: nothing to purge
                pass
            finally:
                channel.close()


def broker_name() -> str:
    from django.conf import settings

    from config.queues import is_amqp

    return "rabbitmq" if is_amqp(settings.CELERY_BROKER_URL) else "redis"


class CpuMeter:
    """CPU seconds (user + system, from /proc through psutil) each named process used between start()
    and stop(), with all its children (a prefork worker's pool, Granian's workers), plus:

    - "postgresql": the backends serving `database` (persistent connections: the same backends for the
      whole run; autovacuum workers on it too), except the backends of this process (the bench's own
      polling), reported as "bench_postgresql" — matched by the client port in the backend's title;
      after stop(), `postgresql_by_client` splits it by the named process each backend serves;
    - "redis": the Redis server behind `redis_url` when it runs on this machine;
    - "postgresql_shared": the server's checkpointer, background writer and WAL writer.

    Redis and PostgreSQL's shared processes also serve everyone else on the machine: start() first
    samples their rate for `background_s` seconds and stop() subtracts that rate over the run
    (`self.background` holds what was subtracted), so read those two as estimates. The same sample
    gives every process's idle rate (`self.idle_per_s`, CPU s/s): the pipeline's fixed cost."""

    SHARED = ("redis", "postgresql_shared")
    PG_SHARED = ("checkpointer", "background writer", "walwriter")

    def __init__(self, procs: dict[str, subprocess.Popen], database: str = "", redis_url: str = ""):
        self.procs, self.database = procs, database
        self.redis_pid = _local_redis_pid(redis_url) if redis_url else None
        self.first: dict[str, dict[int, float]] = {}
        self.background: dict[str, float] = {}
        self.idle_per_s: dict[str, float] = {}
        self.postgresql_by_client: dict[str, float] = {}
        self._backend_owner: dict[int, str] = {}
        self._rates: dict[str, float] = {}
        self._t0 = 0.0

    def _sample(self) -> dict[str, dict[int, float]]:
        import psutil

        def used(p) -> float:
            t = p.cpu_times()
            return t.user + t.system

        def add(name: str, p) -> None:
            with contextlib.suppress(psutil.Error):
                out.setdefault(name, {})[p.pid] = used(p)

        out: dict[str, dict[int, float]] = {}
        owner: dict[str, str] = {}  # client port of a PostgreSQL connection → the named process holding it
        for name, proc in self.procs.items():
            out[name] = {}
            try:
                root = psutil.Process(proc.pid)
                for p in [root, *root.children(recursive=True)]:
                    add(name, p)
                    if self.database:
                        with contextlib.suppress(psutil.Error):
                            owner.update({port: name for port in _postgres_ports(p)})
            except psutil.Error:
                continue
        if self.database:
            mine = _postgres_ports(psutil.Process())
            out["postgresql"], out["bench_postgresql"], out["postgresql_shared"] = {}, {}, {}
            for p in psutil.process_iter(["cmdline"]):
                cmd = " ".join(p.info.get("cmdline") or [])
                if not cmd.startswith("postgres:"):
                    continue
                if f" {self.database} " in f"{cmd} ":
                    port = cmd.rsplit("(", 1)[-1].split(")", 1)[0]
                    add("bench_postgresql" if port in mine else "postgresql", p)
                    self._backend_owner.setdefault(p.pid, owner.get(port, "other"))
                elif any(cmd.rstrip().endswith(f": {what}") for what in self.PG_SHARED):
                    add("postgresql_shared", p)
        if self.redis_pid:
            with contextlib.suppress(psutil.Error):
                add("redis", psutil.Process(self.redis_pid))
        return out

    @staticmethod
    def _diff(first: dict[str, dict[int, float]], last: dict[str, dict[int, float]]) -> dict[str, float]:
        return {
            name: sum(t - first.get(name, {}).get(pid, 0.0) for pid, t in pids.items()) for name, pids in last.items()
        }

    def start(self, background_s: float = 0.0) -> CpuMeter:
        if background_s > 0:
            t, before = time.monotonic(), self._sample()
            time.sleep(background_s)
            used = self._diff(before, self._sample())
            span = time.monotonic() - t
            # Every process's rate before the run: what an idle pipeline costs per second.
            self.idle_per_s = {k: round(v / span, 3) for k, v in used.items()}
            self._rates = {k: used.get(k, 0.0) / span for k in self.SHARED}
        self.first, self._t0 = self._sample(), time.monotonic()
        return self

    def stop(self) -> dict[str, float]:
        last = self._sample()
        used = self._diff(self.first, last)
        # "postgresql" split by the process whose connection each backend serves ("other": not one of procs).
        by_client: dict[str, float] = {}
        for pid, t in last.get("postgresql", {}).items():
            who = self._backend_owner.get(pid, "other")
            by_client[who] = by_client.get(who, 0.0) + t - self.first.get("postgresql", {}).get(pid, 0.0)
        self.postgresql_by_client = {k: round(v, 2) for k, v in sorted(by_client.items(), key=lambda kv: -kv[1])}
        elapsed = time.monotonic() - self._t0
        self.background = {k: round(r * elapsed, 2) for k, r in self._rates.items()}
        return {k: round(max(0.0, v - self.background.get(k, 0.0)), 2) for k, v in used.items()}


# Not ours: the carrier is a simulator standing in for Sinch, and the bench's own polling.
NOT_OURS = ("sandbox", "bench_postgresql")


def cpu_per_message(cpu_s: dict[str, float], messages: int) -> dict:
    """CpuMeter.stop()'s seconds as milliseconds per message: each process, "ours" (everything but
    NOT_OURS: web, workers, PostgreSQL, Redis) and "ours_total"."""
    if not messages:
        return {}
    ms = {k: round(1000 * v / messages, 3) for k, v in sorted(cpu_s.items(), key=lambda kv: -kv[1])}
    ours = {k: v for k, v in ms.items() if k not in NOT_OURS}
    return {
        "ours_total": round(1000 * sum(v for k, v in cpu_s.items() if k not in NOT_OURS) / messages, 3),
        "ours": ours,
        "not_ours": {k: v for k, v in ms.items() if k in NOT_OURS},
    }


def _local_redis_pid(url: str) -> int | None:
    """The Redis server's pid when it runs on this machine (INFO's process_id), else None."""
    import redis

    try:
        client = redis.Redis.from_url(url)
        if client.connection_pool.connection_kwargs.get("host") not in ("127.0.0.1", "localhost", "::1"):
            return None
        return int(client.info("server")["process_id"])
    except (redis.RedisError, KeyError, ValueError):
        return None


def _postgres_ports(process) -> set[str]:
    """Local ports of a process's connections to PostgreSQL (a backend's title names its client port)."""
    from django.db import connection

    port = int(connection.settings_dict.get("PORT") or 5432)
    return {str(c.laddr.port) for c in process.net_connections(kind="tcp") if c.raddr and c.raddr.port == port}


# --- data --------------------------------------------------------------------------------------------


_numbers_used = 0


def seed_org(name: str, *, sandbox_url: str, lines: int = 1, rate: float = 100_000):
    """A fresh organization without quiet hours (the bench must not depend on the clock), a sandbox
    carrier account and `lines` lines at `rate` messages/s (high: pacing is not what is measured)."""

    from carriers.models import CarrierAccount, Provider
    from messaging.models import Line
    from organizations.models import Organization

    global _numbers_used
    stamp = int(time.time() * 1000)
    org = Organization.objects.create(name=f"{name}-{stamp}", quiet_hours_enabled=False)
    # Line numbers from the clock plus the numbers this process already handed out: organizations seeded
    # within the same millisecond (bench_lines seeds 50 in a loop) never share one.
    first, _numbers_used = stamp + _numbers_used, _numbers_used + lines
    account = CarrierAccount.objects.create(
        organization=org,
        name="Sandbox",
        provider=Provider.SANDBOX,
        config={"service_plan_id": "benchplan", "api_token": "bench-token", "base_url": sandbox_url},
    )
    made = [
        Line.objects.create(
            organization=org,
            phone_number=f"+1512{(first + i) % 10_000_000:07d}",
            carrier_account=account,
            rate_per_second=rate,
            name=f"bench line {i}",
        )
        for i in range(lines)
    ]
    return org, account, made


def seed_contacts(org, n: int, *, area: str = "737") -> list[int]:
    """n contacts by COPY (valid, distinct US numbers in one area code per call); their ids in order."""
    from django.db import connection

    buf = io.StringIO()
    for i in range(n):
        custom = json.dumps({"city": ("Austin", "Dallas", "Houston")[i % 3]})
        buf.write(f"{org.id}\t+1{area}{2000000 + i:07d}\tFirst{i}\tLast\t\t{custom}\tnow\tnow\n")
    with connection.cursor() as cursor:
        with cursor.cursor.copy(
            "COPY messaging_contact (organization_id, phone_number, first_name, last_name, email, custom_fields,"
            " created_at, updated_at) FROM STDIN"
        ) as copy:
            copy.write(buf.getvalue())
        cursor.execute(
            "SELECT id FROM messaging_contact WHERE organization_id = %s AND phone_number LIKE %s ORDER BY id",
            [org.id, f"+1{area}%"],
        )
        return [r[0] for r in cursor.fetchall()]


def seed_blast(org, line, contact_ids: list[int], body: str):
    from django.db import connection

    from messaging.models import Blast

    blast = Blast.objects.create(organization=org, line=line, name="bench blast", body=body)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO messaging_blastrecipient (blast_id, contact_id) SELECT %s, unnest(%s::bigint[])",
            [blast.id, contact_ids],
        )
    return blast


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def last_json_line(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return {}
