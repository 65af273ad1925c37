"""Chaos benchmark (`make bench-chaos`): a 2,000-message blast under each fault vs the same blast without.

Real processes, as `make run` and the workers run them: PostgreSQL, Redis (broker and caches), the web
app (Granian) receiving the carrier's delivery reports, Celery beat in its own process (the sweepers of
docs/recovery.md), a pipeline worker (`prepare,send,default`, the one the faults hit), an apply worker
(`webhooks,bulk`: stored reports, overdue-report checks) and the sandbox carrier (Sinch XMS on loopback,
one process, a journal of every batch it accepted so that a restart keeps them). Each run is a fresh
organization, line and 2,000 contacts; the blast is launched through POST /api/v1/blasts/{id}/launch.
The line sends 200 messages/s, so the blast takes ~10 s to hand over and a fault lands mid-blast;
reports come 1–3 s after acceptance. The carrier account's report delay is set to 30 s (the sandbox's
measured 1–3 s, with margin): a report that never comes is asked for through the overdue-report checks.

Faults (each starts when 500 messages are with the carrier, unless said otherwise):
- worker_sigkill: SIGKILL of the pipeline worker's process group (main process and pool children, in the
  middle of its carrier calls and holding its paced remainders), restarted at once.
- broker_flush_worker_down: the issue's case — the pipeline worker is down at launch, the broker's
  database is emptied (FLUSHDB), the worker starts 5 s later.
- broker_flush_mid_blast: FLUSHDB of the broker's database while everything runs.
- carrier_outage_20s: the carrier answers 503 for 10 s, then its process is killed and comes back 10 s
  later (the journal keeps what it had accepted; the reports it had not posted yet die with it).
- duplicate_reordered_reports: every report is posted twice, 0–50 ms after the carrier accepted the
  batch — most arrive before our own send call has recorded the batch (out of order with our send).
- web_restart: the web server is stopped (SIGTERM) and started again while reports are flowing; the
  carrier retries reports it could not post, as Sinch does.

Per fault: duplicates (texts handed to the carrier more than once, from its journal), lost (recipients
that never reached the carrier), stuck (messages not final when the wait ends), seconds from launch to
every message final, and that minus the baseline. Goal: 0, 0, 0 and ≤ fault duration + 60 s.

    make bench-chaos    # or: .venv/bin/python bench/bench_chaos.py [--only worker_sigkill,...]

The last line of the output is one JSON object. Figures on a shared machine are noisy: the load average
at start and end is in the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ROOT,
    Procs,
    bench_env,
    django_setup,
    free_port,
    log,
    purge_queues,
    seed_blast,
    seed_contacts,
    seed_org,
    start_sandbox,
    start_web,
    start_worker,
    stop,
)

django_setup()

import redis  # noqa: E402
import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from config.workers import beat_command  # noqa: E402
from messaging.status import CARRIER_ACCEPTED, FINAL  # noqa: E402
from organizations.services import api_key_create  # noqa: E402

RECIPIENTS = 2_000
LINE_RATE = 200
REPORT_DELAY_ACCOUNT_S = 30
TRIGGER_AT = 500
BODY = "Hi {first_name}, the {city} store opens at 9 tomorrow."
PIPELINE_QUEUES = "prepare,send,default"
APPLY_QUEUES = "webhooks,bulk"
FAULTS = (
    "worker_sigkill",
    "broker_flush_worker_down",
    "broker_flush_mid_blast",
    "carrier_outage_20s",
    "duplicate_reordered_reports",
    "web_restart",
)


class Stack:
    """The live system; the faults stop and start its parts."""

    def __init__(self, *, report_delay: str = "1,3"):
        self.procs = Procs()
        self.web_port, self.sandbox_port = free_port(), free_port()
        self.base_url = f"http://127.0.0.1:{self.web_port}"
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self.journal = Path(tempfile.mkstemp(prefix="chaos-sandbox-", suffix=".jsonl")[1])
        self.env = bench_env(PUBLIC_BASE_URL=self.base_url, CELERY_PREFETCH_MULTIPLIER="1")
        self.report_delay = report_delay
        self.sandbox_args: list[str] = []
        self.pipeline: subprocess.Popen | None = None
        settings.PUBLIC_BASE_URL = self.base_url

    def start(self) -> None:
        self.start_sandbox()
        self.web = self.procs.add("web", start_web(self.web_port, env=self.env))
        self.procs.add("apply", start_worker(APPLY_QUEUES, concurrency=2, env=self.env))
        self.start_pipeline()
        schedule = Path(tempfile.mkstemp(prefix="chaos-beat-", suffix=".db")[1])
        schedule.unlink()
        beat = subprocess.Popen(
            beat_command(schedule=str(schedule), loglevel="WARNING"),
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.procs.add("beat", beat)

    def start_sandbox(self, *extra: str) -> None:
        delay_min, delay_max = self.report_delay.split(",")
        self.sandbox_args = ["--delay-min", delay_min, "--delay-max", delay_max, "--journal", str(self.journal)]
        self.sandbox = start_sandbox(self.sandbox_port, *self.sandbox_args, *extra, workers=1, env=self.env)
        self.procs.add("sandbox", self.sandbox)

    def restart_sandbox(self, *extra: str) -> None:
        stop(self.sandbox)
        self.start_sandbox(*extra)

    def start_pipeline(self) -> None:
        self.pipeline = self.procs.add("pipeline", start_worker(PIPELINE_QUEUES, concurrency=3, env=self.env))

    def kill_pipeline(self) -> None:
        if self.pipeline is not None and self.pipeline.poll() is None:
            os.killpg(self.pipeline.pid, signal.SIGKILL)
            self.pipeline.wait(10)

    def restart_web(self) -> float:
        t0 = time.monotonic()
        stop(self.web)
        self.web = self.procs.add("web", start_web(self.web_port, env=self.env))
        return time.monotonic() - t0

    def stop_all(self) -> None:
        self.procs.stop_all()


def flushdb() -> None:
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


def _counts(blast_id: int) -> tuple[int, int, int]:
    """(messages created, handed to the carrier, final) of the blast."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*), count(*) FILTER (WHERE status = ANY(%s) OR carrier_batch_id <> ''),
                      count(*) FILTER (WHERE status = ANY(%s))
               FROM messaging_message WHERE blast_id = %s""",
            [sorted(CARRIER_ACCEPTED), sorted(FINAL), blast_id],
        )
        return cursor.fetchone()


def carrier_recipients(journal: Path, from_number: str) -> list[str]:
    """Every recipient the carrier accepted from this line, once per acceptance (its journal)."""
    out: list[str] = []
    if not journal.exists():
        return out
    for line in journal.read_text().splitlines():
        try:
            batch = json.loads(line)
        except ValueError:
            continue
        if batch.get("from") in (from_number, from_number.lstrip("+")):
            out += [str(r).lstrip("+") for r in batch.get("to", [])]
    return out


def run(stack: Stack, fault: str, *, timeout: float) -> dict:
    org, account, (line,) = seed_org(f"chaos-{fault}", sandbox_url=stack.sandbox_url, rate=LINE_RATE)
    account.report_delay_seconds = REPORT_DELAY_ACCOUNT_S
    account.save(update_fields=["report_delay_seconds"])
    contacts = seed_contacts(org, RECIPIENTS, area="737")
    blast = seed_blast(org, line, contacts, BODY)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {api_key_create(organization=org, name='chaos').raw_key}"

    fault_s = 0.0
    notes: dict = {}
    if fault == "broker_flush_worker_down":
        stack.kill_pipeline()
    if fault == "duplicate_reordered_reports":
        stack.report_delay = "0,0.05"
        stack.restart_sandbox("--duplicate-rate", "1.0")
    t0 = time.monotonic()
    answer = session.post(f"{stack.base_url}/api/v1/blasts/{blast.id}/launch", timeout=60)
    assert answer.status_code == 202, answer.text
    if fault == "broker_flush_worker_down":
        flushdb()
        time.sleep(5)
        stack.start_pipeline()
        fault_s = time.monotonic() - t0

    triggered = fault in ("none", "broker_flush_worker_down", "duplicate_reordered_reports")
    done_at = None
    while time.monotonic() - t0 < timeout + fault_s:
        created, handed, final = _counts(blast.id)
        if not triggered and handed >= TRIGGER_AT:
            triggered = True
            f0 = time.monotonic()
            notes["fault_at_s"] = round(f0 - t0, 1)
            if fault == "worker_sigkill":
                stack.kill_pipeline()
                stack.start_pipeline()
            elif fault == "broker_flush_mid_blast":
                flushdb()
            elif fault == "carrier_outage_20s":
                requests.post(f"{stack.sandbox_url}/_sandbox/outage", json={"seconds": 10, "status": 503}, timeout=5)
                time.sleep(10)
                os.killpg(stack.sandbox.pid, signal.SIGKILL)
                stack.sandbox.wait(5)
                time.sleep(10)
                stack.start_sandbox()
            elif fault == "web_restart":
                notes["web_down_s"] = round(stack.restart_web(), 1)
            fault_s = time.monotonic() - f0
        if final >= RECIPIENTS:
            done_at = time.monotonic() - t0
            break
        time.sleep(0.5)
    created, handed, final = _counts(blast.id)
    if fault == "duplicate_reordered_reports":
        stack.report_delay = "1,3"
        stack.restart_sandbox()
    at_carrier = carrier_recipients(stack.journal, line.phone_number)
    result = {
        "duplicates": len(at_carrier) - len(set(at_carrier)),
        "lost": RECIPIENTS - len(set(at_carrier)),
        "stuck": RECIPIENTS - final,
        "complete_s": round(done_at, 1) if done_at is not None else None,
        "fault_s": round(fault_s, 1),
        "messages": {"created": created, "handed_to_carrier": handed, "final": final},
        **notes,
    }
    log(f"  {fault}: {json.dumps(result)}")
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default="", help="comma list of faults to run (the baseline always runs)")
    p.add_argument("--timeout", type=float, default=240, help="seconds a blast may take before it counts as stuck")
    args = p.parse_args()
    faults = [f for f in FAULTS if not args.only or f in args.only.split(",")]

    call_command("migrate", verbosity=0)
    purge_queues()
    figures: dict = {"bench": "chaos", "recipients": RECIPIENTS, "line_rate_per_s": LINE_RATE, "cores": os.cpu_count()}
    figures["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
    stack = Stack()
    try:
        stack.start()
        log(f"== baseline: {RECIPIENTS} messages, no fault")
        figures["baseline"] = base = run(stack, "none", timeout=args.timeout)
        figures["faults"] = {}
        for fault in faults:
            log(f"== {fault}")
            r = run(stack, fault, timeout=args.timeout)
            if r["complete_s"] is not None and base["complete_s"] is not None:
                r["over_baseline_s"] = round(r["complete_s"] - base["complete_s"], 1)
                r["goal_met"] = (
                    r["duplicates"] == 0
                    and r["lost"] == 0
                    and r["stuck"] == 0
                    and r["over_baseline_s"] <= r["fault_s"] + 60
                )
            else:
                r["goal_met"] = False
            figures["faults"][fault] = r
    finally:
        stack.stop_all()
        purge_queues()
    figures["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
