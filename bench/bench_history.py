"""The platform's figures on a ten-million-message history (make bench-history; issue 17.2).

In one run, on one database:
1. "empty": the figures on the database as it is (make it a fresh one: createdb + migrate):
   - a blast of --recipients through the live system (bench_send.run_blast: web app, prepare/send,
     apply and post-processing workers, the sandbox carrier posting reports);
   - delivery reports stored under wrk and the batch apply over --reports stored reports
     (bench_webhooks.measure_store_and_apply), with the report → message resolve in ms per 1,000;
   - the short-link redirect under wrk and the shortening of 20,000 messages (bench_redirect);
   - a status backfill of --backfill-messages stuck messages against a rate-limited carrier (bench_backfill);
   - the API's conversation list and a conversation's messages, p50/p95 (bench_webapp.measure through
     the API with a key): for the blast's organization, and on the history for its biggest organization
     and that organization's busiest conversation.
2. the history (bench/history_data.py): --scale × 10,000,000 messages over two years, loaded set-based
   with every index and trigger in place; load time, database and index sizes.
3. "history": the same figures, by the same code, again.
4. EXPLAIN (ANALYZE, BUFFERS) of the backfill's stale-message scan on the history's busiest line, against
   the size of the messages table.
The last line is one JSON object: both sets of figures side by side with their ratio and target.

    createdb h_bench && DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_bench \\
    flock /tmp/parley-bench.lock .venv/bin/python bench/bench_history.py --scale 0.1

--history-loaded skips 1 and 2 (the history is there from an earlier run; figures "history" only).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("LOG_LEVEL", "WARNING")

from common import (  # noqa: E402
    Procs,
    bench_env,
    django_setup,
    ensure_wrk,
    free_port,
    log,
    purge_queues,
    start_sandbox,
    start_web,
    start_worker,
)

django_setup()

import history_data  # noqa: E402
from bench_backfill import run_backfill  # noqa: E402
from bench_postprocessing import DrainTicker  # noqa: E402
from bench_redirect import measure_redirect  # noqa: E402
from bench_send import run_blast  # noqa: E402
from bench_webapp import measure  # noqa: E402
from bench_webhooks import bench_data, measure_store_and_apply, reset  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.test import Client  # noqa: E402

from backfill.selectors import stuck_messages_qs  # noqa: E402
from messaging.models import Conversation, Line, Message, MessageInFlight  # noqa: E402
from messaging.status import AWAITING_CARRIER  # noqa: E402
from organizations.models import Organization  # noqa: E402
from organizations.services import api_key_create  # noqa: E402


def measure_live(args) -> dict:
    """The blast, then (workers stopped, so nothing applies the stored reports behind the bench's back)
    the webhook store and apply against the same web app."""
    procs = Procs()
    web_port, sandbox_port = free_port(), free_port()
    base_url, sandbox_url = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{sandbox_port}"
    env = bench_env(PUBLIC_BASE_URL=base_url)
    settings.PUBLIC_BASE_URL = base_url
    purge_queues()
    out: dict = {}
    try:
        sandbox = start_sandbox(
            sandbox_port, "--delay-min", "1", "--delay-max", "3", "--no-dispatched", workers=3, env=env
        )
        procs.add("sandbox", sandbox)
        procs.add("web", start_web(web_port, env=env))
        send_env = {**env, "CELERY_PREFETCH_MULTIPLIER": "1"}
        procs.add("send", start_worker("prepare,send", concurrency=4, env=send_env))
        procs.add("apply", start_worker("webhooks,default", concurrency=1, env=env))
        procs.add("postprocessing", start_worker("postprocessing", concurrency=1, env=env))
        log(f"== blast: {args.recipients} recipients, post-processing on")
        ticker = DrainTicker().start()
        try:
            out["blast"] = run_blast(base_url=base_url, sandbox_url=sandbox_url, recipients=args.recipients)
        finally:
            ticker.stop()
        b = out["blast"]
        log(
            f"prepared {b['prepared_per_s']}/s; send stage {b['send_stage_per_s']} msg/s; reports applied "
            f"{b['reports_applied_per_s']}/s; end to end {b['end_to_end_per_s']} msg/s"
        )
        for name in ("send", "apply", "postprocessing"):
            procs.stop(name)
        purge_queues()
        account, _line, pairs = bench_data(args.reports, sandbox_url)
        out["webhooks"] = measure_store_and_apply(
            account=account,
            pairs=pairs,
            wrk=ensure_wrk(),
            port=web_port,
            duration=args.wrk_duration,
            connections=32,
            messages=args.reports,
        )
        apply = out["webhooks"]["apply"]
        apply["resolve_ms_per_1000"] = round(1000 * apply["seconds"] / max(apply["claimed"], 1) * 1000, 1)
        reset(account.organization_id, account.id)
    finally:
        procs.stop_all()
        purge_queues()
    return out


def busiest_conversation(org_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conversation_id FROM messaging_message WHERE organization_id = %s "
            "GROUP BY conversation_id ORDER BY count(*) DESC LIMIT 1",
            [org_id],
        )
        row = cursor.fetchone()
    return row[0] if row else 0


def measure_api(org: Organization, repeat: int) -> dict:
    """The conversation list (first page, open ones) and the busiest conversation's messages, through the
    API (the whole DRF stack: key auth, tenant scoping, serializers) in process."""
    key = api_key_create(organization=org, name="bench-history").raw_key
    client = Client(HTTP_HOST="127.0.0.1")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    conv = busiest_conversation(org.id)
    paths = {
        "conversation_list": "/api/v1/conversations",
        "conversation_list_open": "/api/v1/conversations?status=open",
        "conversation_messages": f"/api/v1/conversations/{conv}/messages",
    }
    out: dict = {
        "organization_conversations": Conversation.objects.filter(organization=org).count(),
        "conversation_messages_count": Message.objects.filter(conversation_id=conv, organization=org).count(),
    }
    for name, path in paths.items():
        out[name] = measure(client, path, repeat, headers)
        log(f"API {name}: p50 {out[name]['p50_ms']} ms, p95 {out[name]['p95_ms']} ms, status {out[name]['status']}")
    return out


def measure_all(args, label: str, history_org: Organization | None) -> dict:
    log(f"\n===== {label} =====")
    skip = set(filter(None, args.skip.split(",")))
    figures: dict = {"loadavg_start": [round(x, 2) for x in os.getloadavg()]}
    if "live" not in skip:
        figures.update(measure_live(args))
    if "redirect" not in skip:
        log("== redirect")
        figures["redirect"] = measure_redirect(duration=args.redirect_duration, connections=16, threads="4")
    if "backfill" not in skip:
        log("== backfill")
        figures["backfill"] = run_backfill(messages=args.backfill_messages, limit=200.0, rate=200.0)
    if "api" in skip:
        return figures
    log("== API")
    blast_org = Organization.objects.filter(name__startswith="bench-send-blast-").order_by("-id").first()
    if blast_org is not None:
        figures["api_blast_org"] = measure_api(blast_org, args.api_repeat)
    if history_org is not None:
        figures["api_history_org"] = measure_api(history_org, args.api_repeat)
    figures["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return figures


def _buffers(plan: str) -> int:
    """Pages the plan's top node touched (shared hit + read)."""
    for line in plan.splitlines():
        if "Buffers:" in line:
            return sum(int(n) for n in re.findall(r"(?:hit|read)=(\d+)", line.split("Buffers:")[1].split("temp")[0]))
    return 0


def explain_stale_scan() -> dict:
    """The backfill's page of stuck messages (stuck_messages_after's query) on the line with the most
    messages awaiting the carrier, as a run and as the reconciler (handed_before) ask for it."""
    history_lines = Line.objects.filter(organization__name__startswith=history_data.ORG_PREFIX)
    busiest = (
        MessageInFlight.objects.filter(status__in=list(AWAITING_CARRIER), line_id__in=history_lines.values("id"))
        .values("line_id")
        .annotate(n=Count("message_id"))
        .order_by("-n")
        .first()
    )
    if not busiest:
        return {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT relpages FROM pg_class WHERE relname = 'messaging_message'")
        table_pages = cursor.fetchone()[0]
    out: dict = {"line_id": busiest["line_id"], "awaiting_on_line": busiest["n"], "message_table_pages": table_pages}
    shapes = {
        "run": {},
        "reconcile": {"handed_before": Message.objects.order_by("-id").values_list("created_at", flat=True).first()},
    }
    for name, extra in shapes.items():
        qs = stuck_messages_qs(line_ids=[busiest["line_id"]], statuses=list(AWAITING_CARRIER), **extra)
        plan = qs.order_by("id")[:1000].explain(analyze=True, buffers=True)
        out[name] = {"buffers": _buffers(plan), "plan": plan.splitlines()}
        log(f"stale-message scan ({name}): {out[name]['buffers']} pages of {table_pages}\n{plan}")
    return out


# (figure, path in a phase's figures, kind): "throughput" targets history >= 0.8 x empty, "resolve"
# history <= 1.5 x empty, "latency" a p95 under 100 ms on the history.
FIGURES = (
    ("blast_prepared_per_s", ("blast", "prepared_per_s"), "throughput"),
    ("blast_send_stage_per_s", ("blast", "send_stage_per_s"), "throughput"),
    ("blast_reports_applied_per_s", ("blast", "reports_applied_per_s"), "throughput"),
    ("blast_end_to_end_per_s", ("blast", "end_to_end_per_s"), "throughput"),
    ("webhook_stored_per_s", ("webhooks", "store", "stored_per_s"), "throughput"),
    ("webhook_apply_statuses_per_s", ("webhooks", "apply", "statuses_per_s"), "throughput"),
    ("webhook_resolve_ms_per_1000", ("webhooks", "apply", "resolve_ms_per_1000"), "resolve"),
    ("redirect_rps", ("redirect", "redirect_rps"), "throughput"),
    ("shorten_messages_per_s", ("redirect", "shorten_messages_per_s"), "throughput"),
    ("backfill_repaired_per_s", ("backfill", "repaired_per_second"), "throughput"),
    ("api_list_p95_ms", ("api_blast_org", "conversation_list", "p95_ms"), "latency"),
    ("api_list_open_p95_ms", ("api_blast_org", "conversation_list_open", "p95_ms"), "latency"),
    ("api_messages_p95_ms", ("api_blast_org", "conversation_messages", "p95_ms"), "latency"),
    ("api_history_org_list_p95_ms", ("api_history_org", "conversation_list", "p95_ms"), "latency"),
    ("api_history_org_list_open_p95_ms", ("api_history_org", "conversation_list_open", "p95_ms"), "latency"),
    ("api_history_org_messages_p95_ms", ("api_history_org", "conversation_messages", "p95_ms"), "latency"),
)


def _get(d: dict, path: tuple) -> float | None:
    for key in path:
        d = d.get(key) if isinstance(d, dict) else None
    return d  # type: ignore[return-value]


def compare(empty: dict, history: dict) -> dict:
    out = {}
    for name, path, kind in FIGURES:
        e, h = _get(empty, path), _get(history, path)
        ratio = round(h / e, 2) if e and h is not None else None
        if kind == "throughput":
            ok = ratio is not None and ratio >= 0.8
        elif kind == "resolve":
            ok = ratio is not None and ratio <= 1.5
        else:
            ok = h is not None and h < 100
        out[name] = {"empty": e, "history": h, "ratio": ratio, "kind": kind, "met": ok}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=float, default=1.0, help="fraction of the 10,000,000-message history")
    p.add_argument("--recipients", type=int, default=10_000, help="the blast's recipients")
    p.add_argument("--reports", type=int, default=20_000, help="stored reports the batch apply resolves")
    p.add_argument("--wrk-duration", type=int, default=10, help="seconds of wrk on the webhook endpoint")
    p.add_argument("--redirect-duration", type=int, default=10, help="seconds of wrk per redirect server")
    p.add_argument("--backfill-messages", type=int, default=5_000)
    p.add_argument("--api-repeat", type=int, default=100, help="requests per API path (after 5 warm-ups)")
    p.add_argument("--history-loaded", action="store_true", help="no empty figures, no load: the history is there")
    p.add_argument("--skip", default="", help="comma list of: live (blast, webhooks), redirect, backfill, api")
    args = p.parse_args()

    call_command("migrate", verbosity=0)
    out: dict = {"bench": "history", "scale": args.scale, "cores": os.cpu_count(), "args": vars(args)}
    history_org = None
    if not args.history_loaded:
        present = Message.objects.count()
        if present > 1_000_000:
            raise SystemExit(f"{present} messages already: the empty figures need a fresh database")
        out["empty"] = measure_all(args, "empty database", None)
        log(f"\n===== loading the history: scale {args.scale} ({round(10_000_000 * args.scale):,} messages) =====")
        load_before = os.getloadavg()
        out["load"] = history_data.load(args.scale, log=log)
        out["load"]["loadavg_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
        history_org = Organization.objects.get(pk=out["load"]["biggest_org_id"])
    else:
        history_org = Organization.objects.filter(name__startswith=history_data.ORG_PREFIX).order_by("id").first()
    out["sizes"] = history_data.sizes()
    log(f"database {out['sizes']['database_mb']} MB")
    out["history"] = measure_all(args, "history", history_org)
    out["stale_scan"] = explain_stale_scan()
    if "empty" in out:
        out["compare"] = compare(out["empty"], out["history"])
        for name, c in out["compare"].items():
            log(f"{name:36} empty {c['empty']!s:>10} history {c['history']!s:>10} ratio {c['ratio']!s:>6} {c['met']}")
    print(json.dumps(out, default=str), flush=True)


if __name__ == "__main__":
    main()
