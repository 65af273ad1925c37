"""Many lines at once (issue 17, item 4; `make bench-lines`). See docs/send-pipeline.md ("Many lines at once").

--orgs organizations of --lines-per-org lines each, every line paced at --rate segments/s; one blast of
--recipients-per-org recipients per organization, on the organization's first line (a blast has one line:
docs/send-pipeline.md says why and what a blast over several lines would take), all launched through
POST /api/v1/blasts/{id}/launch from --launch-threads clients within about a second. Real processes as in
bench_send.py (PostgreSQL, Redis, prefork workers on prepare,send with prefetch 1, the web app receiving
the reports, the sandbox carrier journaling every batch it accepted with its arrival time).

Figures, all from the rows' and the carrier's own times on one clock:
- first message per organization: its launch request's start → its first carrier acceptance (our sent_at)
  and → its first batch in the carrier's journal; p50/p95/max over organizations;
- spread across organizations of the first-message latency and of the blast's completion (last sent_at),
  and the rank correlation of launch order and first-send order (1.0 = strictly first come first served);
- aggregate send stage: messages / (first launch → last acceptance), against (a) the lines' ceiling,
  orgs × rate, (b) one line at the same rate measured alone in this run × orgs, and (c) the single-line
  figure of bench_send (one unpaced line, --single-recipients) measured in this run;
- pacing from the carrier's journal: per line the most segments in any 1 s window, lines above the rate;
- CPU seconds of every process and of our PostgreSQL backends over the many-lines phase.
--split-workers runs prepare and send on separate worker processes (as on separate machines,
docs/scaling.md), so a prepare chunk never holds a child that a due send needs. Ends with one line of JSON.
  flock /tmp/parley-bench.lock .venv/bin/python bench/bench_lines.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    CpuMeter,
    Procs,
    bench_env,
    django_setup,
    free_port,
    log,
    pct,
    purge_queues,
    seed_blast,
    seed_contacts,
    seed_org,
    start_sandbox,
    start_web,
    start_worker,
)

django_setup()

import requests  # noqa: E402
from bench_send import BLAST_BODY, SEND_QUEUES, run_blast  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from messaging import ratelimit  # noqa: E402
from organizations.services import api_key_create  # noqa: E402

POLL_S = 0.5


def seed_orgs(*, orgs: int, lines_per_org: int, rate: float, recipients: int, sandbox_url: str) -> list[dict]:
    """Organizations with `lines_per_org` lines at `rate` (distinct numbers across runs) and one draft
    blast of `recipients` on the first line. Every line's bucket starts full (reset)."""
    made = []
    for o in range(orgs):
        org, _account, lines = seed_org(f"bench-lines-{o}", sandbox_url=sandbox_url, lines=lines_per_org, rate=rate)
        for line in lines:
            ratelimit.reset(line_id=line.id)
        blast = seed_blast(org, lines[0], seed_contacts(org, recipients, area="512"), BLAST_BODY)
        made.append(
            {
                "org": org,
                "line": lines[0],
                "blast": blast,
                "key": api_key_create(organization=org, name="bench").raw_key,
            }
        )
    return made


def launch_all(base_url: str, made: list[dict], threads: int) -> tuple[dict[int, float], float]:
    """Launch every blast through the API from `threads` clients; {blast id: request start}, seconds taken."""
    started: dict[int, float] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def client(part: list[dict]) -> None:
        session = requests.Session()
        for m in part:
            t = time.time()
            r = session.post(
                f"{base_url}/api/v1/blasts/{m['blast'].id}/launch",
                headers={"Authorization": f"Bearer {m['key']}"},
                timeout=60,
            )
            with lock:
                started[m["blast"].id] = t
                if r.status_code != 202:
                    errors.append(f"{r.status_code} {r.text[:100]}")

    t0 = time.time()
    clients = [threading.Thread(target=client, args=(made[i::threads],)) for i in range(threads)]
    for c in clients:
        c.start()
    for c in clients:
        c.join()
    assert not errors, errors[:3]
    return started, time.time() - t0


def _accepted(blast_ids: list[int]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM messaging_message WHERE blast_id = ANY(%s) AND carrier_batch_id <> ''", [blast_ids]
        )
        return cursor.fetchone()[0]


def _blast_times(blast_ids: list[int]) -> dict[int, tuple[float, float, int, float]]:
    """{blast: (first sent_at, last sent_at, messages accepted, first created_at)} as epoch seconds (a
    message's created_at is its prepare chunk's start)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT blast_id, extract(epoch FROM min(sent_at)), extract(epoch FROM max(sent_at)), count(*),
                      extract(epoch FROM min(created_at))
               FROM messaging_message WHERE blast_id = ANY(%s) AND carrier_batch_id <> '' GROUP BY blast_id""",
            [blast_ids],
        )
        return {b: (float(first), float(last), n, float(made)) for b, first, last, n, made in cursor.fetchall()}


def journal_calls(path: Path, numbers: set[str]) -> dict[str, list[tuple[float, int]]]:
    """The carrier's record of the lines `numbers`: per sending number, (arrival unix time, recipients)."""
    calls: dict[str, list[tuple[float, int]]] = {}
    if not path.exists():
        return calls
    for raw in path.read_text().splitlines():
        try:
            c = json.loads(raw)
        except ValueError:
            continue  # a line torn by two sandbox processes appending at once
        if c.get("from") in numbers:
            calls.setdefault(c["from"], []).append((float(c["created"]), len(c["to"])))
    for v in calls.values():
        v.sort()
    return calls


def max_in_window(calls: list[tuple[float, int]], window: float = 1.0) -> int:
    """The most recipients (one segment each here) in any `window` seconds of the carrier's record."""
    best, j, inside = 0, 0, 0
    for i, (t, n) in enumerate(calls):
        inside += n
        while calls[j][0] <= t - window:
            inside -= calls[j][1]
            j += 1
        best = max(best, inside)
        del i
    return best


def _rank_correlation(a: list[float], b: list[float]) -> float | None:
    """Spearman's rho of two equally long lists (no ties expected in times)."""
    n = len(a)
    if n < 2:
        return None
    ra = {i: r for r, i in enumerate(sorted(range(n), key=lambda i: a[i]))}
    rb = {i: r for r, i in enumerate(sorted(range(n), key=lambda i: b[i]))}
    d2 = sum((ra[i] - rb[i]) ** 2 for i in range(n))
    return round(1 - 6 * d2 / (n * (n * n - 1)), 3)


def run_many(
    *, base_url: str, sandbox_url: str, journal: Path, orgs: int, lines_per_org: int, rate: float,
    recipients: int, launch_threads: int, procs: dict | None = None, timeout: float = 600,
) -> dict:  # fmt: skip
    made = seed_orgs(orgs=orgs, lines_per_org=lines_per_org, rate=rate, recipients=recipients, sandbox_url=sandbox_url)
    blast_ids = [m["blast"].id for m in made]
    total = orgs * recipients
    meter = CpuMeter(procs or {}, database=connection.settings_dict["NAME"]).start()
    launched, launch_s = launch_all(base_url, made, launch_threads)
    t0 = min(launched.values())
    while time.time() - t0 < timeout and _accepted(blast_ids) < total:
        time.sleep(POLL_S)
    cpu = meter.stop()
    times = _blast_times(blast_ids)
    accepted = sum(t[2] for t in times.values())
    carrier = journal_calls(journal, {m["line"].phone_number for m in made})
    first_ours, first_carrier, done, launch_at, prepare_started = [], [], [], [], []
    for m in made:
        b = m["blast"].id
        first, last, _n, made_at = times.get(b, (float("nan"), float("nan"), 0, float("nan")))
        at = launched[b]
        launch_at.append(at)
        prepare_started.append(made_at - at)
        first_ours.append(first - at)
        done.append(last - at)
        calls = carrier.get(m["line"].phone_number, [])
        first_carrier.append(calls[0][0] - at if calls else float("nan"))
    windows = {number: max_in_window(c) for number, c in carrier.items()}
    # What the bucket allows into a 1 s window, and what our own latency may add to it (docs).
    over = {n: w for n, w in windows.items() if w > rate}
    last_sent = max((t[1] for t in times.values()), default=t0)
    span = last_sent - t0

    def dist(xs: list[float]) -> dict:
        return {
            "p50": round(pct(xs, 50), 3),
            "p95": round(pct(xs, 95), 3),
            "max": round(max(xs), 3),
            "min": round(min(xs), 3),
        }

    first_sent_at = [a + f for a, f in zip(launch_at, first_ours, strict=True)]
    return {
        "orgs": orgs,
        "lines": orgs * lines_per_org,
        "lines_sending": len(made),
        "line_rate_per_s": rate,
        "recipients_per_org": recipients,
        "messages": total,
        "accepted": accepted,
        "launch_s": round(launch_s, 3),
        "first_message_s": dist(first_ours),
        "first_message_at_carrier_s": dist(first_carrier),
        "first_chunk_started_s": dist(prepare_started),
        "completion_s": dist(done),
        "first_message_spread_s": round(max(first_ours) - min(first_ours), 3),
        "completion_spread_s": round(max(done) - min(done), 3),
        "launch_to_first_send_rank_correlation": _rank_correlation(launch_at, first_sent_at),
        "send_stage_s": round(span, 2),
        "aggregate_send_stage_per_s": round(accepted / span, 1) if span > 0 else None,
        "lines_ceiling_per_s": round(len(made) * rate + len(made) * ratelimit.capacity(rate) / span, 1)
        if span > 0
        else None,
        "carrier_calls": sum(len(c) for c in carrier.values()),
        "max_segments_in_1s_window": max(windows.values(), default=0),
        "lines_over_rate_in_1s_window": len(over),
        "over_rate_windows_sample": dict(list(over.items())[:5]),
        "cpu_s": cpu,
        "cpu_ms_per_message": {k: round(1000 * v / max(1, accepted), 3) for k, v in cpu.items()},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--orgs", type=int, default=50)
    p.add_argument("--lines-per-org", type=int, default=20)
    p.add_argument("--rate", type=float, default=10.0, help="every line's rate, segments/s")
    p.add_argument("--recipients-per-org", type=int, default=300, help="one blast per organization (30 s at 10/s)")
    p.add_argument("--launch-threads", type=int, default=8, help="API clients launching the blasts")
    p.add_argument("--single-recipients", type=int, default=10_000, help="the unpaced single-line blast (0 = skip)")
    p.add_argument("--send-concurrency", type=int, default=4)
    p.add_argument(
        "--split-workers",
        action="store_true",
        help="prepare and send on separate worker processes (--send-concurrency // 2 children each)",
    )
    p.add_argument("--sandbox-workers", type=int, default=3)
    p.add_argument("--report-delay", default="1,3")
    args = p.parse_args()

    call_command("migrate", verbosity=0)
    purge_queues()
    procs = Procs()
    web_port, sandbox_port = free_port(), free_port()
    base_url, sandbox_url = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{sandbox_port}"
    env = bench_env(PUBLIC_BASE_URL=base_url)
    figures: dict = {
        "bench": "lines",
        "cores": os.cpu_count(),
        "send_worker_concurrency": args.send_concurrency,
        "split_workers": args.split_workers,
        "batch_window_s": ratelimit.window(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory(prefix="bench-lines-") as folder:
        journal = Path(folder) / "carrier.jsonl"
        try:
            delay_min, delay_max = args.report_delay.split(",")
            procs.add(
                "sandbox",
                start_sandbox(
                    sandbox_port, "--delay-min", delay_min, "--delay-max", delay_max, "--no-dispatched",
                    "--journal", str(journal), workers=args.sandbox_workers, env=env,
                ),
            )  # fmt: skip
            procs.add("web", start_web(web_port, env=env))
            send_env = {**env, "CELERY_PREFETCH_MULTIPLIER": "1"}
            if args.split_workers:  # as on separate machines: prepare chunks never hold a child a due send needs
                half = max(1, args.send_concurrency // 2)
                procs.add("prepare", start_worker("prepare", concurrency=half, env=send_env))
                procs.add("send", start_worker("send", concurrency=half, env=send_env))
            else:
                procs.add("send", start_worker(SEND_QUEUES, concurrency=args.send_concurrency, env=send_env))
            procs.add("apply", start_worker("webhooks,default", concurrency=1, env=env))
            many = {
                "base_url": base_url, "sandbox_url": sandbox_url, "journal": journal, "rate": args.rate,
                "recipients": args.recipients_per_org, "launch_threads": args.launch_threads,
            }  # fmt: skip
            if args.single_recipients:
                log(f"== one unpaced line: a blast of {args.single_recipients}")
                single = run_blast(base_url=base_url, sandbox_url=sandbox_url, recipients=args.single_recipients)
                figures["single_line_unpaced"] = {
                    k: single[k] for k in ("sendable", "send_stage_s", "send_stage_per_s", "prepared_per_s")
                }
                log(f"single line: send stage {single['send_stage_per_s']}/s")
            log(f"== one line at {args.rate:g}/s alone: a blast of {args.recipients_per_org}")
            figures["one_paced_line_alone"] = alone = run_many(orgs=1, lines_per_org=1, **many)
            log(f"alone: {alone['aggregate_send_stage_per_s']}/s, first message {alone['first_message_s']['max']} s")
            log(
                f"== many lines: {args.orgs} organizations × {args.lines_per_org} lines at {args.rate:g}/s, "
                f"one blast of {args.recipients_per_org} each"
            )
            figures["many_lines"] = m = run_many(
                orgs=args.orgs, lines_per_org=args.lines_per_org, procs=dict(procs.procs), **many
            )
            log(
                f"launch {m['launch_s']} s; first message p50 {m['first_message_s']['p50']} s, p95 "
                f"{m['first_message_s']['p95']} s, max {m['first_message_s']['max']} s; completion spread "
                f"{m['completion_spread_s']} s; aggregate {m['aggregate_send_stage_per_s']}/s; most in 1 s "
                f"{m['max_segments_in_1s_window']}, lines over rate {m['lines_over_rate_in_1s_window']}"
            )
        finally:
            procs.stop_all()
            purge_queues()
    m, alone = figures.get("many_lines", {}), figures.get("one_paced_line_alone", {})
    single = figures.get("single_line_unpaced", {}).get("send_stage_per_s")
    agg = m.get("aggregate_send_stage_per_s")
    figures["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    figures["summary"] = {
        "first_message_p50_s": m.get("first_message_s", {}).get("p50"),
        "first_message_p95_s": m.get("first_message_s", {}).get("p95"),
        "first_message_max_s": m.get("first_message_s", {}).get("max"),
        "first_message_spread_s": m.get("first_message_spread_s"),
        "completion_spread_s": m.get("completion_spread_s"),
        "aggregate_send_stage_per_s": agg,
        "lines_ceiling_per_s": m.get("lines_ceiling_per_s"),
        "aggregate_vs_one_paced_line_alone_times_orgs": round(
            agg / (alone["aggregate_send_stage_per_s"] * m["lines_sending"]), 3
        )
        if agg and alone.get("aggregate_send_stage_per_s")
        else None,
        "single_line_unpaced_per_s": single,
        "aggregate_vs_single_line_unpaced": round(agg / single, 3) if agg and single else None,
        "max_segments_in_1s_window": m.get("max_segments_in_1s_window"),
        "lines_over_rate_in_1s_window": m.get("lines_over_rate_in_1s_window"),
        "loadavg_start": figures["loadavg_start"],
        "loadavg_end": figures["loadavg_end"],
    }
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
