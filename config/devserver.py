"""`make run`: the whole platform in one terminal, on embedded defaults. Ctrl-C stops everything.

Starts the sandbox carrier, the web app (Granian, 2 workers: config/webserver.py), a Celery worker on every queue and
Celery beat, each as a child process; their output is prefixed with the process name. If any of them
exits, the rest are stopped too, so a half-running platform never looks healthy.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from config.embedded import BASE_DIR, DATA_DIR
from config.queues import ALL_QUEUES
from config.webserver import web_command
from config.workers import beat_command, worker_command

PY = sys.executable


def _commands(port: int, sandbox_port: int) -> dict[str, list[str]]:
    return {
        # Any number is the demo's to put on a line (the number check of lines asks the sandbox).
        "sandbox": [PY, "-m", "carriers.sandbox", "--port", str(sandbox_port), "--hold-any-number"],
        "web": web_command(port=port, log_level="info"),
        "worker": worker_command(queues=ALL_QUEUES, concurrency=2),
        "beat": beat_command(schedule=str(DATA_DIR / "celerybeat-schedule")),
    }


def sandbox_inbound_env(env: dict[str, str]) -> dict[str, str]:
    """`env` with SANDBOX_INBOUND_URL set to the demo account's inbound webhook URL (unless already set),
    so that POST /_sandbox/inbound (a customer texting the demo line) reaches Parley. Without a demo
    account (seed_demo not run), unchanged: the sandbox then only records inbound texts."""
    if env.get("SANDBOX_INBOUND_URL"):
        return env
    done = subprocess.run(
        [PY, "manage.py", "demo_inbound_url"], cwd=BASE_DIR, env=env, capture_output=True, text=True, check=False
    )
    url = done.stdout.strip()
    if done.returncode != 0 or not url:
        print("no demo sandbox account: texts posted to the sandbox's /_sandbox/inbound will not reach Parley")
        return env
    return {**env, "SANDBOX_INBOUND_URL": url}


def _pump(name: str, proc: subprocess.Popen) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(f"{name:>8} | {line}")
        sys.stdout.flush()


def seed_demo(env: dict[str, str]) -> str:
    """Seeds the demo account in `make run`'s environment and prints what it says (the login, the links).
    Here, not in the Makefile: the links are on PUBLIC_BASE_URL, which only this environment sets to the
    port the app is served on (PORT=8123 make run once printed :8000's links)."""
    done = subprocess.run(
        [PY, "manage.py", "seed_demo"], cwd=BASE_DIR, env=env, capture_output=True, text=True, check=True
    )
    sys.stdout.write(done.stdout)
    sys.stdout.flush()
    return done.stdout


def dev_env(environ: dict[str, str], *, port: int, sandbox_port: int) -> dict[str, str]:
    """The environment of `make run`'s processes: `environ` with the local defaults filled in.

    The web app answers on 127.0.0.1 and localhost; short links get a host of their own, prly.localhost
    (every name under .localhost resolves to loopback, RFC 6761). Short-link hosts are claimed before
    any other middleware (shortener/middleware.py), so the short domain must never be the app's own host:
    it once was localhost:8000, and http://localhost:8000/login/ answered "Link not found"."""
    env = dict(environ)
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    env.setdefault("SANDBOX_CARRIER_URL", f"http://127.0.0.1:{sandbox_port}")
    env.setdefault("SHORT_LINK_DOMAIN", f"prly.localhost:{port}")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    sandbox_port = int(os.environ.get("SANDBOX_PORT", "8090"))
    env = dev_env(dict(os.environ), port=port, sandbox_port=sandbox_port)
    subprocess.run([PY, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=BASE_DIR, env=env, check=True)
    seed_demo(env)
    env = sandbox_inbound_env(env)

    procs: dict[str, subprocess.Popen] = {}
    for name, cmd in _commands(port, sandbox_port).items():
        procs[name] = subprocess.Popen(
            cmd,
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=_pump, args=(name, procs[name]), daemon=True).start()

    print(
        f"\nParley is up: http://127.0.0.1:{port}/  (inbox: /inbox/, admin: /admin/, API docs: /api/docs/)."
        f"\nShort links are served on their own host: http://{env['SHORT_LINK_DOMAIN']}/<code>. Ctrl-C stops it."
    )
    print(
        "Play the customer's phone (docs/carriers.md): curl -X POST http://127.0.0.1:"
        f'{sandbox_port}/_sandbox/inbound -d \'{{"from": "+15125550123", "to": "+15127000100", "body": "HELP"}}\'\n'
    )
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, proc in procs.items():
            if proc.poll() is not None:
                print(f"{name} exited with {proc.returncode}; stopping the rest")
                exit_code = proc.returncode or 1
                stopping = True
                break
        time.sleep(0.5)

    for proc in procs.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.time() + 15
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    if not os.environ.get("PARLEY_KEEP_SERVICES"):
        from config import embedded

        embedded.stop()
    print("stopped")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
