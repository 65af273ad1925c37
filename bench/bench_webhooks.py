"""Benchmark of carrier webhooks: store rate under HTTP load, and the batch apply rate. See docs/carriers.md.

1. Makes (once) a bench organization with a sandbox carrier account, one line and --messages outbound
   messages in status "sent", in carrier batches of 1000 (carrier_batch_id, carrier_recipient).
2. Serves the app as `make run` does (config/webserver.py: Granian, 2 workers x --threads 4) on loopback and loads
   POST /webhooks/sinch/<secret>/delivery with wrk for --duration seconds, each request one Sinch
   per-recipient delivery report of one of those messages. Prints requests/s, stored rows/s (rows
   counted in carriers_webhookevent), non-2xx answers, latency p50/p99.
3. Tops the stored reports up to --messages pending rows (COPY of the same bodies), puts every message
   back to "sent", and times the apply task's body (messaging.services.reports.webhook_process, the code
   "carriers.apply_webhooks" runs) over all of them: events/s and message statuses applied/s.
4. With --sandbox-reports N (default 10,000): starts `python -m carriers.sandbox --workers 2`, sends
   N/1000 batches of 1000 recipients with per_recipient_final reports to the same web app, and measures
   the rate at which the sandbox posts reports that our app stores (reports/s end to end).
Ends with one line of JSON holding every figure.

Run it under the shared lock, against your own database:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/parley_carriers REDIS_URL=redis://127.0.0.1:6379/2 \
  REDIS_KEY_PREFIX=carriers flock /tmp/parley-bench.lock .venv/bin/python bench/bench_webhooks.py
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from common import django_setup, ensure_wrk, free_port, log, start_web, stop, wait_port  # noqa: E402

django_setup()

import requests  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from carriers.base import OutboundBatch  # noqa: E402
from carriers.models import CarrierAccount, WebhookEvent  # noqa: E402
from carriers.registry import adapter_for  # noqa: E402
from carriers.services import APPLY_DEBOUNCE_KEY  # noqa: E402
from messaging.models import Contact, Conversation, Direction, Line, Message  # noqa: E402
from messaging.services.reports import webhook_process  # noqa: E402
from messaging.status import MessageStatus  # noqa: E402
from organizations.models import Organization  # noqa: E402

BENCH_ORG = "bench-carriers-webhooks"
BATCH = 1000  # recipients per carrier batch, as the send pipeline sends them

WRK_SCRIPT = """
local bodies = {}
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local i = nil
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  if i == nil then i = (tid - 1) * math.floor(#bodies / 2) end
  i = i + 1
  if i > #bodies then i = 1 end
  return wrk.format("POST", "%(path)s", nil, bodies[i])
end
"""


# --- data --------------------------------------------------------------------------------------------


def bench_data(count: int, sandbox_url: str) -> tuple[CarrierAccount, Line, list[tuple[str, str]]]:
    """(account, line, [(batch_id, recipient E.164)]) for `count` sent messages, created once."""
    org, _ = Organization.objects.get_or_create(name=BENCH_ORG)
    account = CarrierAccount.objects.filter(organization=org).first() or CarrierAccount.objects.create(
        organization=org,
        name="bench sandbox",
        provider="sandbox",
        config={"service_plan_id": "benchplan", "api_token": "bench-token"},
    )  # noqa: S106 - bench value
    account.config = {**account.config, "base_url": sandbox_url}
    account.save()
    line = Line.objects.filter(organization=org).first() or Line.objects.create(
        organization=org, phone_number="+15125550000", name="bench", carrier_account=account, is_active=False
    )
    have = Message.objects.filter(organization=org, direction=Direction.OUTBOUND).exclude(carrier_batch_id="").count()
    if have != count:
        log(f"creating {count} contacts, conversations and sent messages (once)...")
        Message.objects.filter(organization=org).delete()
        Conversation.objects.filter(organization=org).delete()
        Contact.objects.filter(organization=org).delete()
        contacts = Contact.objects.bulk_create(
            [Contact(organization=org, phone_number=f"+1737{2000000 + n:07d}") for n in range(count)], batch_size=2000
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
                    direction=Direction.OUTBOUND,
                    body="Hello",
                    rendered_body="Hello",
                    status=MessageStatus.DELIVERED,  # at rest: out of the work queue (see reset)
                    carrier_batch_id=f"BENCH{n // BATCH:05d}",
                    carrier_recipient=cv.contact.phone_number,
                )
                for n, cv in enumerate(convs)
            ],
            batch_size=2000,
        )
    pairs = list(
        Message.objects.filter(organization=org, direction=Direction.OUTBOUND)
        .exclude(carrier_batch_id="")
        .order_by("id")
        .values_list("carrier_batch_id", "carrier_recipient")
    )
    return account, line, pairs


def reset(org_id: int, account_id: int) -> None:
    """Messages at rest, their outbox events and the account's stored webhooks gone.

    At rest is "delivered", not "sent": a sent message is a row of the work queue
    (messaging_message_inflight) that the backfill and the overdue-report pass pick up, and the
    messages left "sent" misled later runs on the same database. measure_apply puts them in "sent"
    just before it applies their reports."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM carriers_webhookevent WHERE account_id = %s", [account_id])
        cursor.execute(
            "DELETE FROM postprocessing_event WHERE message_id IN "
            "(SELECT id FROM messaging_message WHERE organization_id = %s)",
            [org_id],
        )
        cursor.execute(
            "UPDATE messaging_message SET status = %s, delivered_at = NULL, carrier_status = '' "
            "WHERE organization_id = %s AND direction = 'out' AND carrier_batch_id LIKE 'BENCH%%'",
            [MessageStatus.DELIVERED, org_id],
        )
        cursor.execute(
            "DELETE FROM messaging_message WHERE organization_id = %s AND carrier_batch_id NOT LIKE 'BENCH%%'", [org_id]
        )
    cache.delete(APPLY_DEBOUNCE_KEY)


def report_body(batch_id: str, recipient: str) -> str:
    return json.dumps(
        {
            "type": "recipient_delivery_report_sms",
            "batch_id": batch_id,
            "recipient": recipient.lstrip("+"),
            "code": 0,
            "status": "Delivered",
            "at": "2026-10-02T09:34:18.542Z",
            "operator_status_at": "2026-10-02T09:34:18.000Z",
            "client_reference": "b:bench",
        }
    )


def pending_count(account_id: int) -> int:
    return WebhookEvent.objects.filter(account_id=account_id, state="pending").count()


# --- phases ------------------------------------------------------------------------------------------


def run_wrk(wrk: str, port: int, path: str, bodies: list[str], duration: int, connections: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        body_file = Path(tmp) / "bodies.txt"
        body_file.write_text("\n".join(bodies) + "\n")
        script = Path(tmp) / "post.lua"
        script.write_text(WRK_SCRIPT % {"bodies": body_file, "path": path})
        out = subprocess.run(
            [
                wrk,
                "-t2",
                f"-c{connections}",
                f"-d{duration}s",
                "--latency",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}{path}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    log(out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out).groups()
        return round(float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 2)

    return {"requests": total, "rps": rps, "non_2xx": non2xx, "p50_ms": ms("50"), "p99_ms": ms("99")}


def top_up(account_id: int, pairs: list[tuple[str, str]], target: int) -> int:
    """COPY more pending per-recipient reports so `target` rows are pending. Returns rows added."""
    missing = target - pending_count(account_id)
    if missing <= 0:
        return 0
    buf = io.StringIO()
    for n in range(missing):
        batch_id, recipient = pairs[n % len(pairs)]
        body = report_body(batch_id, recipient).encode().hex()
        buf.write(f"{account_id}\tdelivery\t\\\\x{body}\tnow\tpending\t0\t\n")
    with (
        connection.cursor() as cursor,
        cursor.copy(
            "COPY carriers_webhookevent (account_id, kind, body, received_at, state, attempts, error) FROM STDIN"
        ) as copy,
    ):
        copy.write(buf.getvalue())
    return missing


def message_table_stats() -> dict:
    """messaging_message's update counters (cumulative; pg_stat_user_tables), index count and sizes."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd, pg_relation_size(relid), pg_indexes_size(relid), "
            "(SELECT count(*) FROM pg_index WHERE indrelid = relid), "
            "(SELECT reloptions::text FROM pg_class WHERE oid = relid) "
            "FROM pg_stat_user_tables WHERE relname = 'messaging_message'"
        )
        upd, hot, heap, indexes, count, options = cursor.fetchone()
    return {"upd": upd, "hot": hot, "heap_bytes": heap, "index_bytes": indexes, "indexes": count, "options": options}


def measure_apply(account_id: int, org_id: int) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE messaging_message SET status = %s WHERE organization_id = %s AND carrier_batch_id LIKE 'BENCH%%'",
            [MessageStatus.SENT, org_id],
        )
        # The reset above leaves 50k dead row versions; vacuum them so each round starts alike.
        cursor.execute("VACUUM (ANALYZE) messaging_message")
    events = pending_count(account_id)
    # The statistics collector reports a backend's counters when its transaction ends (and at most
    # every 0.5 s): wait for the reset's to land before the snapshot.
    time.sleep(1.0)
    before = message_table_stats()
    started = time.perf_counter()
    result = webhook_process(debounce=False, time_budget=None)
    seconds = time.perf_counter() - started
    time.sleep(1.0)
    after = message_table_stats()
    updates = after["upd"] - before["upd"]
    return {
        "events": events,
        "claimed": result.claimed,
        "statuses_applied": result.statuses_applied,
        "seconds": round(seconds, 2),
        "events_per_s": round(result.claimed / seconds),
        "statuses_per_s": round(result.statuses_applied / seconds),
        # HOT: a status change that rewrites no index entry (no indexed column changed, room on the page).
        "message_updates": updates,
        "message_hot_updates": after["hot"] - before["hot"],
        "message_indexes": after["indexes"],
        "message_heap_mb": round(after["heap_bytes"] / 2**20, 1),
        "message_indexes_mb": round(after["index_bytes"] / 2**20, 1),
        "message_reloptions": after["options"],
    }


def measure_sandbox_posting(
    account: CarrierAccount,
    line: Line,
    web_port: int,
    sandbox_url: str,
    reports: int,
    pairs: list[tuple[str, str]],
) -> dict:
    reset(account.organization_id, account.id)
    account.refresh_from_db()
    adapter = adapter_for(account)
    callback = f"http://127.0.0.1:{web_port}/webhooks/sinch/{account.webhook_secret}/delivery"
    started = time.perf_counter()
    for i in range(0, reports, BATCH):
        chunk = [recipient for _, recipient in pairs[i : i + BATCH]]
        adapter.send_batch(
            OutboundBatch(
                from_number=line.phone_number,
                recipients=chunk,
                body="Hello",
                delivery_report="per_recipient_final",
                callback_url=callback,
            )
        )
    sent_s = time.perf_counter() - started
    deadline = time.monotonic() + 120
    stored = 0
    while time.monotonic() < deadline:
        stored = WebhookEvent.objects.filter(account_id=account.id).count()
        if stored >= reports:
            break
        time.sleep(0.1)
    seconds = time.perf_counter() - started
    stats = requests.get(f"{sandbox_url}/_sandbox/stats", timeout=5).json()  # one worker's view only
    return {
        "reports": reports,
        "stored": stored,
        "seconds": round(seconds, 2),
        "send_calls_s": round(sent_s, 2),
        "reports_per_s": round(stored / seconds),
        "sample_worker_stats": stats["reports"],
    }


def measure_sender_alone(env: dict, reports: int) -> dict:
    """One sandbox process posting per-recipient reports to a do-nothing sink (another sandbox's
    /_sandbox/sink): the sandbox's own posting rate, without our app in the way."""
    sink_port, src_port = free_port(), free_port()
    sink = subprocess.Popen(
        [sys.executable, "-m", "carriers.sandbox", "--port", str(sink_port)],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )
    src = subprocess.Popen(
        [sys.executable, "-m", "carriers.sandbox", "--port", str(src_port), "--delay-min", "0", "--delay-max", "0.5"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_port(sink_port, sink, "sink sandbox")
        wait_port(src_port, src, "sandbox")
        session = requests.Session()
        session.headers["Authorization"] = "Bearer bench"
        to = [f"1737{2000000 + n:07d}" for n in range(BATCH)]
        started = time.perf_counter()
        for _ in range(reports // BATCH):
            session.post(
                f"http://127.0.0.1:{src_port}/xms/v1/bench/batches",
                timeout=10,
                json={
                    "to": to,
                    "from": "15125550000",
                    "body": "Hello",
                    "delivery_report": "per_recipient_final",
                    "callback_url": f"http://127.0.0.1:{sink_port}/_sandbox/sink",
                },
            ).raise_for_status()
        got = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and got < reports:
            got = session.get(f"http://127.0.0.1:{sink_port}/_sandbox/stats", timeout=5).json().get("sink", 0)
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        return {
            "reports": reports,
            "received": got,
            "seconds": round(seconds, 2),
            "reports_per_s": round(got / seconds),
        }
    finally:
        stop(src)
        stop(sink)


SANDBOX_WRK = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench"
wrk.body = '%(body)s'
"""


def measure_sandbox_api(wrk: str, env: dict, duration: int) -> dict:
    """wrk POST /batches (no reports asked) against `--workers 2`: batches of 1 and of 1000 recipients."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "carriers.sandbox", "--port", str(port), "--workers", "2"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )
    figures = {}
    try:
        wait_port(port, proc, "sandbox")
        for size in (1, BATCH):
            body = json.dumps(
                {
                    "to": [f"1737{2000000 + n:07d}" for n in range(size)],
                    "from": "15125550000",
                    "body": "Hello ${name}",
                    "parameters": {"name": {"default": "you"}},
                }
            )
            with tempfile.TemporaryDirectory() as tmp:
                script = Path(tmp) / "batch.lua"
                script.write_text(SANDBOX_WRK % {"body": body})
                out = subprocess.run(
                    [
                        wrk,
                        "-t2",
                        "-c16",
                        f"-d{duration}s",
                        "-s",
                        str(script),
                        f"http://127.0.0.1:{port}/xms/v1/bench/batches",
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
            figures[f"batches_of_{size}_rps"] = rps
            figures[f"batches_of_{size}_non_2xx"] = non2xx
    finally:
        stop(proc)
    return figures


def apply_rounds(account: CarrierAccount, pairs: list[tuple[str, str]], messages: int, rounds: int) -> None:
    """Phase 2 alone, `rounds` times: the apply rate and its HOT updates, one JSON line."""
    runs = []
    try:
        for n in range(rounds):
            reset(account.organization_id, account.id)
            top_up(account.id, pairs, messages)
            apply = measure_apply(account.id, account.organization_id)
            log(
                f"round {n + 1}: {apply['events_per_s']} events/s, {apply['statuses_per_s']} statuses/s, "
                f"{apply['message_hot_updates']} of {apply['message_updates']} updates HOT"
            )
            runs.append(apply)
    finally:
        reset(account.organization_id, account.id)
    rates = sorted(r["statuses_per_s"] for r in runs)
    print(
        json.dumps(
            {
                "bench": "webhooks_apply",
                "messages": messages,
                "statuses_per_s_median": rates[len(rates) // 2],
                "rounds": runs,
            }
        ),
        flush=True,
    )


def measure_store_and_apply(
    *,
    account: CarrierAccount,
    pairs: list[tuple[str, str]],
    wrk: str,
    port: int,
    duration: int,
    connections: int,
    messages: int,
) -> dict:
    """Phases 1 and 2 against the web app serving on `port`: {"store": wrk figures, "apply": apply figures}."""
    path = f"/webhooks/sinch/{account.webhook_secret}/delivery"
    assert requests.post(f"http://127.0.0.1:{port}{path}", data=report_body(*pairs[0]), timeout=5).ok
    reset(account.organization_id, account.id)

    log(f"== 1. wrk: POST Sinch per-recipient reports for {duration}s, {connections} connections")
    bodies = [report_body(b, r) for b, r in pairs]
    load = run_wrk(wrk, port, path, bodies, duration, connections)
    stored = WebhookEvent.objects.filter(account_id=account.id).count()
    load["stored_rows"] = stored
    load["stored_per_s"] = round(stored / duration)
    log(
        f"stored {stored} rows = {load['stored_per_s']}/s; p50 {load['p50_ms']} ms, p99 {load['p99_ms']} ms, "
        f"non-2xx {load['non_2xx']}"
    )

    log(f"== 2. apply: top up to {messages} pending reports and run the apply task's body")
    added = top_up(account.id, pairs, messages)
    apply = measure_apply(account.id, account.organization_id)
    apply["copied_in"] = added
    log(
        f"applied {apply['claimed']} events in {apply['seconds']} s = {apply['events_per_s']} events/s, "
        f"{apply['statuses_per_s']} statuses/s"
    )
    return {"store": load, "apply": apply}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--sandbox-reports", type=int, default=10_000)
    parser.add_argument(
        "--apply-only",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="only the batch apply (phase 2), ROUNDS times over the same messages; no web server, no wrk",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=4,
        help="web app threads per worker (config/webserver.py). "
        "Threads let concurrent INSERTs share WAL flushes (group commit).",
    )
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    sandbox_port, port = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    account, line, pairs = bench_data(args.messages, sandbox_url)
    reset(account.organization_id, account.id)
    if args.apply_only:
        apply_rounds(account, pairs, args.messages, args.apply_only)
        return
    wrk = ensure_wrk()

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "WARNING"}
    web = start_web(port, threads=args.threads, env=env)
    sandbox = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "carriers.sandbox",
            "--port",
            str(sandbox_port),
            "--workers",
            "2",
            "--delay-min",
            "0",
            "--delay-max",
            "0.5",
        ],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )
    figures: dict = {
        "bench": "webhooks",
        "web_server": "granian",
        "web_workers": 2,
        "web_threads": args.threads,
        "duration_s": args.duration,
        "connections": args.connections,
    }
    try:
        wait_port(sandbox_port, sandbox, "sandbox")
        figures.update(
            measure_store_and_apply(
                account=account,
                pairs=pairs,
                wrk=wrk,
                port=port,
                duration=args.duration,
                connections=args.connections,
                messages=args.messages,
            )
        )

        if args.sandbox_reports:
            log(f"== 3. sandbox (2 workers) posts {args.sandbox_reports} per-recipient reports to the app")
            posting = measure_sandbox_posting(account, line, port, sandbox_url, args.sandbox_reports, pairs)
            figures["sandbox_posting"] = posting
            log(
                f"{posting['stored']} reports posted and stored in {posting['seconds']} s = "
                f"{posting['reports_per_s']} reports/s"
            )
            stop(web)
            log(f"== 4. one sandbox process posts {args.sandbox_reports} reports to a do-nothing sink")
            alone = measure_sender_alone(env, args.sandbox_reports)
            figures["sandbox_sender_alone"] = alone
            log(f"{alone['received']} reports in {alone['seconds']} s = {alone['reports_per_s']} reports/s")
            log("== 5. sandbox API (2 workers): wrk POST /batches of 1 and of 1000 recipients, 5 s each")
            api = measure_sandbox_api(wrk, env, 5)
            figures["sandbox_api"] = api
            log(f"batches of 1: {api['batches_of_1_rps']}/s, batches of 1000: {api['batches_of_1000_rps']}/s")
    finally:
        stop(web)
        stop(sandbox)
        reset(account.organization_id, account.id)
        # The view enqueued "carriers.apply_webhooks" (no worker runs here): drop it from the broker.
        import redis
        from django.conf import settings

        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("webhooks")
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
