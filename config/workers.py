"""The Celery worker command line, built in one place: `make run` (config/devserver.py), the test
fixtures (tests/worker.py) and the benchmarks (bench/) all start workers through `worker_command`, so a
flag the workers need (pool, queues, cluster chatter) is changed once.
"""

from __future__ import annotations

import sys


def worker_command(
    *,
    queues: str,
    concurrency: int = 2,
    name: str = "",
    loglevel: str = "INFO",
    standalone: bool = False,
    include: str = "",
    beat_schedule: str = "",
) -> list[str]:
    """`python -m celery -A config worker -Q <queues> --pool prefork -c <concurrency> ...`.

    standalone=True is for short-lived workers (tests, benchmarks): no gossip, mingle or heartbeat
    events, which only slow start-up and add broker traffic when no other worker needs to hear about
    this one. beat_schedule embeds beat (-B) with that schedule file. include adds task modules (-I).
    """
    cmd = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "--pool", "prefork"]
    cmd += ["-c", str(concurrency)]
    if name:
        cmd += ["-n", name]
    if standalone:
        cmd += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    cmd += ["--loglevel", loglevel]
    if include:
        cmd += ["-I", include]
    if beat_schedule:
        cmd += ["-B", "-s", beat_schedule]
    return cmd


def beat_command(*, schedule: str, loglevel: str = "INFO") -> list[str]:
    """`python -m celery -A config beat` with its schedule file (the dev server's separate beat)."""
    return [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", loglevel, "-s", schedule]
