"""Benchmark of the short-link redirect (make bench-redirect). See docs/shortener.md.

1. Shortens the links of a 20,000-message blast through the send pipeline's seam
   (shortener.services.links_shorten_for_messages) and times it.
2. Counts database queries of a redirect on a cache hit (test client + CaptureQueriesContext).
3. Serves the app as `make run` does (config/webserver.py: Granian, 2 workers of 1 and of 4 threads) on
   loopback and loads GET /<code> over the
   20,000 new links with wrk for --duration seconds, Host = the short domain, click recording on; a
   flusher thread plays beat + "shortener.flush_clicks" (clicks_flush every second) meanwhile.
4. Loads a bare Django view returning a 302 from a dict (bench/bare_redirect_urls.py, a second server
   with ROOT_URLCONF overridden) the same way, in the same run.
Prints requests/s, p50, p99 for each, the ratio redirect/bare, queries per cache-hit redirect, clicks
written per second by the batch writer, and ends with one line of JSON holding every figure.

Run it under the shared lock:  flock /tmp/parley-bench.lock .venv/bin/python bench/bench_redirect.py
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from common import django_setup, ensure_wrk, free_port, log, start_web, stop  # noqa: E402

django_setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from messaging.models import Blast, Contact, Conversation, Direction, Line, Message  # noqa: E402
from messaging.status import MessageStatus  # noqa: E402
from organizations.models import Organization  # noqa: E402
from shortener import conf  # noqa: E402
from shortener.cache import redis_client  # noqa: E402
from shortener.clicks import clicks_flush  # noqa: E402
from shortener.models import Click, Link  # noqa: E402
from shortener.services import LinkItem, links_shorten_for_messages  # noqa: E402

BENCH_ORG = "bench-shortener"
RECIPIENTS = 20_000
BODY = (
    "Hi {n}, our winter sale starts now: https://shop.example.com/sale/winter?utm_source=sms&utm_campaign=w{n}"
    " Reply STOP to opt out"
)
WRK_SCRIPT = """
local codes = {}
for line in io.lines("%(codes)s") do codes[#codes + 1] = line end
math.randomseed(os.time())
wrk.headers["Host"] = "%(host)s"
wrk.headers["User-Agent"] = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 Safari/604.1"
request = function()
  return wrk.format("GET", "/" .. codes[math.random(#codes)])
end
"""


# --- data --------------------------------------------------------------------------------------------


def blast_messages() -> tuple[Organization, Blast, list[Message]]:
    """A bench organization with one blast of RECIPIENTS outbound messages (made once, reused)."""
    org, _ = Organization.objects.get_or_create(name=BENCH_ORG)
    line = Line.objects.filter(organization=org).first() or Line.objects.create(
        organization=org, phone_number="+15125550000", name="bench", is_active=False
    )
    blast = Blast.objects.filter(organization=org).first() or Blast.objects.create(
        organization=org, line=line, name="bench", body=BODY
    )
    # Delivered, not the default "queued": a queued message is a row of the work queue
    # (messaging_message_inflight) that the sweeps would pick up, and 20,000 of them left behind misled
    # later runs on the same database. Rows an older version of this bench left queued are settled too.
    Message.objects.filter(blast=blast).exclude(status=MessageStatus.DELIVERED).update(status=MessageStatus.DELIVERED)
    have = Message.objects.filter(blast=blast).count()
    if have < RECIPIENTS:
        log(f"creating {RECIPIENTS} contacts, conversations and messages (once)...")
        Message.objects.filter(blast=blast).delete()
        Conversation.objects.filter(organization=org).delete()
        Contact.objects.filter(organization=org).delete()
        contacts = Contact.objects.bulk_create(
            [Contact(organization=org, phone_number=f"+1737{2000000 + n:07d}") for n in range(RECIPIENTS)],
            batch_size=2000,
        )
        convs = Conversation.objects.bulk_create(
            [Conversation(organization=org, line=line, contact=c) for c in contacts], batch_size=2000
        )
        Message.objects.bulk_create(
            [
                Message(
                    organization=org,
                    line=line,
                    conversation=cv,
                    contact=cv.contact,
                    blast=blast,
                    direction=Direction.OUTBOUND,
                    body=BODY,
                    rendered_body=BODY.format(n=n),
                    status=MessageStatus.DELIVERED,
                )
                for n, cv in enumerate(convs)
            ],
            batch_size=2000,
        )
    messages = list(Message.objects.filter(blast=blast).order_by("id").only("id", "contact_id", "rendered_body"))
    return org, blast, messages


def measure_shorten(org, blast, messages) -> tuple[float, list[str]]:
    items = [LinkItem(m.id, m.contact_id, blast.id, m.rendered_body) for m in messages]
    started = time.perf_counter()
    # Outside a transaction, as the prepare task runs it: the Redis caching runs right after the INSERT.
    bodies = links_shorten_for_messages(organization_id=org.id, items=items)
    seconds = time.perf_counter() - started
    codes = [re.search(r"/([A-Za-z0-9]+) Reply", body).group(1) for body in bodies.values()]
    return seconds, codes


def queries_per_cached_redirect(code: str) -> int:
    client = Client(HTTP_HOST=settings.SHORT_LINK_DOMAIN)
    assert client.get(f"/{code}").status_code == 302  # warm (cached at creation anyway)
    with CaptureQueriesContext(connection) as ctx:
        for _ in range(10):
            assert client.get(f"/{code}").status_code == 302
    return round(len(ctx.captured_queries) / 10)


# --- load --------------------------------------------------------------------------------------------


def run_wrk(wrk: str, port: int, script: str, duration: int, connections: int) -> dict:
    # Warm-up: the first requests of each worker load code, open the Redis connection.
    subprocess.run([wrk, "-t1", "-c2", "-d1s", "-s", script, f"http://127.0.0.1:{port}"], capture_output=True)
    out = subprocess.run(
        [wrk, "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script, f"http://127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 2)

    requests = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "requests": requests,
        "non_3xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1).strip() if errors else "",
    }


class Flusher(threading.Thread):
    """Plays beat + the "shortener.flush_clicks" task: clicks_flush() every second, timing each run."""

    def __init__(self):
        super().__init__(daemon=True)
        self.halt = threading.Event()
        self.written = 0
        self.busy = 0.0

    def flush_once(self) -> None:
        started = time.perf_counter()
        n = clicks_flush()
        if n:
            self.written += n
            self.busy += time.perf_counter() - started

    def run(self) -> None:
        while not self.halt.wait(1.0):
            self.flush_once()
        connection.close()


def measure_redirect(*, duration: int, connections: int, threads: str) -> dict:
    """Steps 1-4 of the docstring; the summary figures (the JSON line of main)."""
    wrk = ensure_wrk()
    call_command("migrate", verbosity=0)
    short_host = settings.SHORT_LINK_DOMAIN
    client = redis_client()
    client.delete(conf.clicks_buffer_key())

    org, blast, messages = blast_messages()
    shorten_seconds, codes = measure_shorten(org, blast, messages)
    log(
        f"links_shorten_for_messages: {len(messages)} messages in {shorten_seconds:.2f} s "
        f"({len(messages) / shorten_seconds:,.0f} messages/s)"
    )
    queries = queries_per_cached_redirect(codes[0])
    log(f"database queries per redirect on a cache hit: {queries}")
    clicks_flush()  # the test client's clicks

    tmp = Path(tempfile.mkdtemp(prefix="bench-redirect-"))
    (tmp / "codes.txt").write_text("\n".join(codes) + "\n")
    targets = dict(Link.objects.filter(code__in=codes).values_list("code", "target_url"))
    (tmp / "targets.tsv").write_text("".join(f"{c}\t{u}\n" for c, u in targets.items()))
    short_script = tmp / "short.lua"
    short_script.write_text(WRK_SCRIPT % {"codes": tmp / "codes.txt", "host": short_host})
    bare_script = tmp / "bare.lua"
    bare_script.write_text(WRK_SCRIPT % {"codes": tmp / "codes.txt", "host": "127.0.0.1"})

    # PYTHONWARNINGS: whitenoise warns once per worker about a missing static dir; noise in the output.
    env = dict(
        os.environ,
        BENCH_CODES_FILE=str(tmp / "targets.tsv"),
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "bench")]),  # bench/ for bare_redirect_urls
        PYTHONWARNINGS="ignore",
    )
    results: dict = {}
    clicks_before = Click.objects.count()
    flusher = Flusher()
    flusher.start()
    load_before = os.getloadavg()[0]
    for round_index, worker_class in enumerate(f"t{n}" for n in threads.split(",")):
        # Alternate which server goes first, so a load change on the shared machine does not always
        # favour the same one.
        for kind in ("redirect", "bare") if round_index % 2 == 0 else ("bare", "redirect"):
            port = free_port()
            if kind == "redirect":
                proc = start_web(port, threads=int(worker_class[1:]), env=env)
                script = short_script
            else:
                proc = start_web(port, threads=int(worker_class[1:]), env=env, app="bare_redirect_urls:application")
                script = bare_script
            try:
                figures = run_wrk(wrk, port, str(script), duration, connections)
            finally:
                stop(proc)
            results[f"{kind}_{worker_class}"] = figures
            log(
                f"{kind:8} {worker_class:7} {figures['rps']:8.0f} req/s  p50 {figures['p50_ms']:6.2f} ms  "
                f"p99 {figures['p99_ms']:6.2f} ms  ({figures['requests']} requests, non-3xx {figures['non_3xx']}"
                f"{', socket errors ' + figures['socket_errors'] if figures['socket_errors'] else ''})"
            )
    load_after = os.getloadavg()[0]
    flusher.halt.set()
    flusher.join()
    # Whatever the last second left in the buffer, written the same way and timed.
    while client.llen(conf.clicks_buffer_key()):
        flusher.flush_once()
    redirect_requests = sum(v["requests"] for k, v in results.items() if k.startswith("redirect"))
    clicks_written = Click.objects.count() - clicks_before
    clicks_per_s = round(flusher.written / flusher.busy) if flusher.busy else 0

    best = max(
        (k.split("_", 1)[1] for k in results if k.startswith("redirect")),
        key=lambda wc: results[f"redirect_{wc}"]["rps"],
    )
    ratio = round(results[f"redirect_{best}"]["rps"] / results[f"bare_{best}"]["rps"], 3)
    ratios = {
        f"ratio_{wc}": round(results[f"redirect_{wc}"]["rps"] / results[f"bare_{wc}"]["rps"], 3)
        for wc in (f"t{n}" for n in threads.split(","))
    }
    log(f"ratio redirect/bare ({best}): {ratio}  (target >= 0.8; redirect target >= 2000 req/s)")
    log(f"1-minute load average before/after the load runs: {load_before:.2f} / {load_after:.2f} (2 cores)")
    log(
        f"clicks written: {clicks_written} of {redirect_requests} redirect requests (+ warm-ups), "
        f"batch writer {clicks_per_s:,} clicks/s over {flusher.busy:.2f} s of flushing"
    )
    shutil.rmtree(tmp, ignore_errors=True)

    summary = {
        "bench": "redirect",
        "duration_s": duration,
        "connections": connections,
        "web_server": "granian",
        "web_workers": 2,
        "best_threads": best,
        "redirect_rps": results[f"redirect_{best}"]["rps"],
        "redirect_p50_ms": results[f"redirect_{best}"]["p50_ms"],
        "redirect_p99_ms": results[f"redirect_{best}"]["p99_ms"],
        "bare_rps": results[f"bare_{best}"]["rps"],
        "bare_p50_ms": results[f"bare_{best}"]["p50_ms"],
        "bare_p99_ms": results[f"bare_{best}"]["p99_ms"],
        "ratio": ratio,
        **ratios,
        "queries_per_cached_redirect": queries,
        "clicks_written": clicks_written,
        "redirect_requests": redirect_requests,
        "clicks_written_per_s": clicks_per_s,
        "loadavg_1m_before": round(load_before, 2),
        "loadavg_1m_after": round(load_after, 2),
        "shorten_messages": len(messages),
        "shorten_seconds": round(shorten_seconds, 3),
        "shorten_messages_per_s": round(len(messages) / shorten_seconds),
        "runs": results,
    }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk load per server")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", default="1,4", help="threads per web worker to measure (2 workers each)")
    args = parser.parse_args()
    summary = measure_redirect(duration=args.duration, connections=args.connections, threads=args.threads)
    print(json.dumps(summary, separators=(",", ":")))


if __name__ == "__main__":
    main()
