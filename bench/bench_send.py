"""Benchmark of the send pipeline, closed loop on this machine (`make bench-send`). See docs/send-pipeline.md.

Real processes: PostgreSQL, Redis, Celery workers (prefork), the web app as `make run` serves it (Granian, 2 workers)
receiving the sandbox carrier's delivery reports over loopback (one per-recipient final report per
message; the sandbox posts from --sandbox-workers processes, as one Python process tops out near
~600 posts/s), and the sandbox carrier speaking Sinch XMS.

1. Blast: --recipients contacts (1 % opted out), launched through POST /api/v1/blasts/{id}/launch.
   Launch time; prepared/s; send stage (launch → every message accepted by the carrier); delivery
   reports stored/s and applied/s; end to end (launch → every report applied). The blast's line rate
   is 100,000/s so that pacing is not the bound.
2. Conversations: --conversations single messages through POST /api/v1/conversations/{id}/messages
   from --threads client threads; p50/p95 latency API → carrier (request start → sent_at).
3. Database statements per message of the prepare and send steps, counted in-process on a
   1000-recipient chunk with the same code the workers run (and for single conversation messages).
4. Naive path for comparison (bench/naive_send.py): one task per message doing every step at send
   time, one carrier call per message, same worker concurrency; ratio of the send stages.
5. The delivery-report endpoint alone under wrk: bench/bench_webhooks.py (carriers), its figures
   (store rate, batch apply rate) included.
6. Paced lines (--paced-rates, default 1,10,100,2000 segments/s): a blast of --paced-seconds of the
   line's rate (≤ --paced-cap recipients) per rate; recipients per carrier call and carrier calls per
   1,000 messages (the batching window, docs/send-pipeline.md), the most segments in any 1 s.

--split-workers: one worker process per queue — prepare, send, webhooks (+ default), postprocessing — as
they would run on separate machines (docs/scaling.md), instead of prepare and send in one, so each queue's
CPU is its own line in the headline below.

Headline (issue 17.5, docs/performance.md "CPU per message"): the blast's closed-loop CPU per delivered
message, by process — web, workers, our PostgreSQL backends, Redis — and "ours_total"; the sandbox carrier
and the bench's own polling apart ("not_ours"). From launch until the blast's last report is applied and,
with post-processing on, its last event processed (bench/common.py CpuMeter).
The broker is CELERY_BROKER_URL's: Redis, or RabbitMQ with quorum queues (config/queues.py).

--postprocessing on|off: whether a worker drains the post-processing outbox during the runs (the
post-processing work extends this bench; run_blast/run_conversations return dicts).
Ends with one line of JSON holding every figure. Run under the shared lock:
  flock /tmp/parley-bench.lock .venv/bin/python bench/bench_send.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ROOT,
    CpuMeter,
    Procs,
    bench_env,
    broker_name,
    cpu_per_message,
    django_setup,
    free_port,
    last_json_line,
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
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from messaging.models import Message, OptOut  # noqa: E402
from messaging.status import MessageStatus as S  # noqa: E402
from organizations.services import api_key_create  # noqa: E402

BLAST_BODY = "Hi {first_name}, the {city} store opens at 9 tomorrow. Reply STOP to opt out."
POLL_S = 0.25
SEND_QUEUES = "prepare,send"


def _counts(blast_id: int, account_id: int) -> tuple[int, int, int, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*), count(*) FILTER (WHERE carrier_batch_id <> ''),
                      count(*) FILTER (WHERE status = ANY(%s::text[]))
               FROM messaging_message WHERE blast_id = %s""",
            [[S.DELIVERED, S.UNDELIVERED, S.FAILED], blast_id],
        )
        created, accepted, final = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM carriers_webhookevent WHERE account_id = %s", [account_id])
        stored = cursor.fetchone()[0]
    return created, accepted, final, stored


def _report_times(account_id: int) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*), extract(epoch FROM max(received_at) - min(received_at)),
                      count(processed_at), extract(epoch FROM max(processed_at) - min(processed_at)),
                      extract(epoch FROM max(received_at)), extract(epoch FROM max(processed_at))
               FROM carriers_webhookevent WHERE account_id = %s""",
            [account_id],
        )
        stored, store_span, applied, apply_span, last_stored, last_applied = cursor.fetchone()
    return {
        "stored": stored,
        "stored_per_s": round(stored / float(store_span)) if store_span else None,
        "applied": applied,
        "applied_per_s": round(applied / float(apply_span)) if apply_span else None,
        "last_stored_at": float(last_stored) if last_stored else None,
        "last_applied_at": float(last_applied) if last_applied else None,
    }


def _last_times(blast_id: int) -> tuple[float | None, float | None]:
    """(last message created, last message accepted by the carrier) as epoch seconds."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT extract(epoch FROM max(created_at)), extract(epoch FROM max(sent_at)) "
            "FROM messaging_message WHERE blast_id = %s",
            [blast_id],
        )
        created, sent = cursor.fetchone()
    return (float(created) if created else None, float(sent) if sent else None)


# The tables a blast writes, vacuumed before each blast: what autovacuum does between two real blasts.
# Some machines run PostgreSQL with autovacuum off (this team's did, 2026-12-07): a database reused
# across runs then carries every earlier run's dead rows, and a run measured 0.70 ms a message of
# post-processing PostgreSQL where vacuumed runs measure 0.08-0.11 (docs/performance.md).
VACUUMED = (
    "messaging_message, messaging_message_inflight, messaging_conversation, messaging_contact, messaging_blast, "
    "messaging_blastrollup, postprocessing_event, postprocessing_blastrecount, carriers_webhookevent"
)


def vacuum_blast_tables() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {VACUUMED}")


def run_blast(
    *, base_url: str, sandbox_url: str, recipients: int, opt_out_rate: float = 0.01, timeout: float = 300
) -> dict:
    """One blast through the live system, on vacuumed tables. Returns its figures (seconds and rates)."""
    org, account, (line,) = seed_org("bench-send-blast", sandbox_url=sandbox_url)
    contact_ids = seed_contacts(org, recipients, area="737")
    opted = [f"+1737{2000000 + i:07d}" for i in range(0, recipients, max(1, round(1 / opt_out_rate)))]
    OptOut.objects.bulk_create([OptOut(organization=org, phone_number=p) for p in opted])
    blast = seed_blast(org, line, contact_ids, BLAST_BODY)
    sendable = recipients - len(opted)
    key = api_key_create(organization=org, name="bench").raw_key
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    preview = session.get(f"{base_url}/api/v1/blasts/{blast.id}/preview", timeout=60).json()
    vacuum_blast_tables()  # by the bench's own backend: not counted as ours by the CPU meter

    t0 = time.time()
    answer = session.post(f"{base_url}/api/v1/blasts/{blast.id}/launch", timeout=60)
    launch_s = time.time() - t0
    assert answer.status_code == 202, answer.text
    # The loop only waits for the end (every POLL_S: its counts over the blast cost the database a
    # few ms each, so polling faster slows what it measures). The marks come afterwards from the rows'
    # own times, on the same clock as t0: accepted = the last sent_at (written when the carrier answered);
    # stored = the last report's received_at; final = the last report's processed_at (its apply
    # transaction; the commit follows within milliseconds). prepared (created_at is a chunk's start,
    # not its commit) = when the poll first saw every message, to within POLL_S.
    marks: dict[str, float] = {}
    final = 0
    while time.time() - t0 < timeout:
        created, accepted, final, stored = _counts(blast.id, account.id)
        if created >= recipients:
            marks.setdefault("prepared", time.time() - t0)
        if final >= sendable:
            break
        time.sleep(POLL_S)
    created, accepted, final, stored = _counts(blast.id, account.id)
    reports = _report_times(account.id)
    _last_created, last_sent = _last_times(blast.id)
    if accepted >= sendable and last_sent:
        marks["accepted"] = last_sent - t0
    if stored >= sendable and reports["last_stored_at"]:
        marks["stored"] = reports["last_stored_at"] - t0
    if final >= sendable and reports["last_applied_at"]:
        marks["final"] = max(reports["last_applied_at"] - t0, marks.get("stored", 0))

    def rate(n, key):
        return round(n / marks[key]) if key in marks else None

    return {
        "recipients": recipients,
        "opted_out": len(opted),
        "sendable": sendable,
        "preview": {k: preview.get(k) for k in ("recipient_count", "opted_out_count", "segments_total")},
        "launch_ms": round(launch_s * 1000, 1),
        "prepared_s": round(marks.get("prepared", 0), 2),
        "prepared_per_s": rate(recipients, "prepared"),
        "send_stage_s": round(marks.get("accepted", 0), 2),
        "send_stage_per_s": rate(sendable, "accepted"),
        "reports_stored_s": round(marks.get("stored", 0), 2),
        "reports_stored_per_s": reports["stored_per_s"],
        "reports_applied_per_s": reports["applied_per_s"],
        "end_to_end_s": round(marks.get("final", 0), 2),
        "end_to_end_per_s": rate(sendable, "final"),
        "counts": {"created": created, "accepted": accepted, "final": final, "stored": stored},
        "complete": "final" in marks,
        "line_rate_per_s": line.rate_per_second,
    }


def cpu_meter(procs: dict) -> CpuMeter:
    """A started CpuMeter over `procs`, our PostgreSQL backends and the Redis server (its and the
    PostgreSQL shared processes' background rate sampled for 3 s first, bench/common.py)."""
    from django.conf import settings

    return CpuMeter(procs, database=connection.settings_dict["NAME"], redis_url=settings.REDIS_URL).start(3.0)


def log_cpu(figures: dict, b: dict) -> None:
    """The headline: CPU ms per delivered message (the blast's final statuses), ours and by process."""
    if "cpu_s" not in b:
        return
    b["cpu_ms_per_message"] = per = cpu_per_message(b["cpu_s"], b["counts"]["final"])
    # PostgreSQL's line split by the process its backends serve (web = the report INSERTs).
    per["postgresql_by_client"] = cpu_per_message(b.get("cpu_postgresql_by_client_s", {}), b["counts"]["final"]).get(
        "ours", {}
    )
    figures["cpu_ms_per_message_ours"] = per.get("ours_total")
    log(
        f"CPU per delivered message: {per.get('ours_total')} ms ours {per.get('ours')}; "
        f"not ours {per.get('not_ours')}; background subtracted {b.get('cpu_background_s')} s; idle CPU s/s "
        f"{b.get('cpu_idle_per_s')}; PostgreSQL ms by client {per.get('postgresql_by_client')}; "
        f"load {os.getloadavg()[0]:.1f}"
    )


def run_paced(*, base_url: str, sandbox_url: str, rate: float, seconds: float, cap: int, timeout: float = 300) -> dict:
    """A blast on a line paced at `rate` segments/s (issue 17.1): `rate × seconds` recipients (at most
    `cap`), one segment each, no opt-outs. Carrier calls from the rows (one carrier batch id per call);
    the pacing from each call's sent_at (when our worker had the carrier's answer)."""
    from messaging import ratelimit

    recipients = max(1, min(cap, round(rate * seconds)))
    org, _account, (line,) = seed_org(f"bench-send-paced-{rate:g}", sandbox_url=sandbox_url, rate=rate)
    ratelimit.reset(line_id=line.id)
    blast = seed_blast(org, line, seed_contacts(org, recipients, area="512"), BLAST_BODY)
    key = api_key_create(organization=org, name="bench").raw_key
    t0 = time.time()
    answer = requests.post(
        f"{base_url}/api/v1/blasts/{blast.id}/launch", headers={"Authorization": f"Bearer {key}"}, timeout=60
    )
    assert answer.status_code == 202, answer.text
    accepted = 0
    while time.time() - t0 < timeout:
        accepted = Message.objects.filter(blast=blast).exclude(carrier_batch_id="").count()
        if accepted >= recipients:
            break
        time.sleep(POLL_S)
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT carrier_batch_id, count(*), sum(segments), extract(epoch FROM min(sent_at))
               FROM messaging_message WHERE blast_id = %s AND carrier_batch_id <> ''
               GROUP BY carrier_batch_id ORDER BY 4""",
            [blast.id],
        )
        calls = [(float(at), n, int(segs)) for _b, n, segs, at in cursor.fetchall()]
    sizes = [n for _at, n, _s in calls]
    window_max = max((sum(s for t2, _n, s in calls if t <= t2 < t + 1.0) for t, _n, _s in calls), default=0)
    span = calls[-1][0] - calls[0][0] if len(calls) > 1 else 0.0
    return {
        "line_rate_per_s": rate,
        "batch_window_s": ratelimit.window(),
        "recipients": recipients,
        "accepted": accepted,
        "carrier_calls": len(calls),
        "recipients_per_carrier_call": round(accepted / len(calls), 1) if calls else None,
        "carrier_calls_per_1000_messages": round(1000 * len(calls) / accepted, 1) if accepted else None,
        "target_recipients_per_call": min(1000, max(1, int(rate * ratelimit.window()))),
        "smallest_call": min(sizes, default=None),
        "largest_call": max(sizes, default=None),
        "max_segments_in_1s_window": window_max,
        "send_seconds": round(span, 1),
        "segments_per_s_first_to_last_call": round(sum(s for *_x, s in calls[:-1]) / span, 1) if span else None,
    }


_INFLIGHT_TRIGGERS = ("messaging_inflight_insert", "messaging_inflight_update", "messaging_inflight_delete")


def set_inflight_triggers(enabled: bool) -> None:
    """Bench only: switch the work-queue triggers of messaging_message (migration messaging/0012) on or
    off, to price them on the send path. Switched back on, the queue table is rebuilt from the messages
    (what the triggers would have kept). Never in production code: without them the sweeps go blind."""
    from messaging.models import IN_FLIGHT_STATUSES

    verb = "ENABLE" if enabled else "DISABLE"
    with connection.cursor() as cursor:
        for name in _INFLIGHT_TRIGGERS:
            cursor.execute(f"ALTER TABLE messaging_message {verb} TRIGGER {name}")  # noqa: S608 — constant names
        if enabled:
            cursor.execute("TRUNCATE messaging_message_inflight")
            cursor.execute(
                """INSERT INTO messaging_message_inflight
                       (message_id, line_id, status, send_at, sending_at, prepared_at)
                   SELECT id, line_id, status, send_at, sending_at, prepared_at FROM messaging_message
                   WHERE status = ANY(%s::text[])""",
                [list(IN_FLIGHT_STATUSES)],
            )


def run_trigger_compare(*, rounds: int, procs: dict, blast_kwargs: dict) -> dict:
    """The same blast with the work-queue triggers on (as on main) and off, alternating `rounds` times
    each (on, off, on, off…: a drift of the shared machine's load hits both). Send stage and CPU seconds
    (PostgreSQL's and every process's) per blast."""
    runs: dict[str, list[dict]] = {"on": [], "off": []}
    try:
        for _ in range(rounds):
            for state in ("on", "off"):
                set_inflight_triggers(state == "on")
                meter = CpuMeter(procs, database=connection.settings_dict["NAME"]).start()
                b = run_blast(**blast_kwargs)
                cpu = meter.stop()
                runs[state].append(
                    {
                        "send_stage_per_s": b["send_stage_per_s"],
                        "prepared_per_s": b["prepared_per_s"],
                        "end_to_end_per_s": b["end_to_end_per_s"],
                        "cpu_s": cpu,
                        "loadavg": round(os.getloadavg()[0], 2),
                    }
                )
                log(f"triggers {state}: send stage {b['send_stage_per_s']}/s, CPU {cpu}")
    finally:
        set_inflight_triggers(True)

    def median(state: str, key: str, sub: str | None = None):
        import statistics

        xs = [(r[key][sub] if sub else r[key]) or 0 for r in runs[state]]
        return round(statistics.median(xs), 2) if xs else None

    out: dict = {"rounds": rounds, "runs": runs}
    for state in ("on", "off"):
        out[f"send_stage_per_s_{state}_median"] = median(state, "send_stage_per_s")
        out[f"postgresql_cpu_s_{state}_median"] = median(state, "cpu_s", "postgresql")
    on, off = out["send_stage_per_s_on_median"], out["send_stage_per_s_off_median"]
    out["send_stage_on_over_off"] = round(on / off, 3) if on and off else None
    return out


def run_conversations(
    *, base_url: str, sandbox_url: str, count: int, threads: int = 4, rate: float = 0, timeout: float = 300
) -> dict:
    """`count` single messages through the API; latency request start → carrier acceptance (sent_at).
    rate > 0: the clients start requests at that total rate (open loop), so the latency is the
    pipeline's, not a backlog's; 0: as fast as `threads` clients go."""
    from messaging.models import Conversation

    org, _account, (line,) = seed_org("bench-send-conv", sandbox_url=sandbox_url)
    contact_ids = seed_contacts(org, count, area="512")
    convs = Conversation.objects.bulk_create(
        [Conversation(organization=org, line=line, contact_id=c) for c in contact_ids], batch_size=1000
    )
    key = api_key_create(organization=org, name="bench").raw_key
    started: dict[int, float] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def client(part: list, offset: int):
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {key}"
        for n, conv in enumerate(part):
            if rate:
                due = t0 + (n * threads + offset) / rate
                if due > time.time():
                    time.sleep(due - time.time())
            t = time.time()
            r = s.post(
                f"{base_url}/api/v1/conversations/{conv.id}/messages",
                json={"body": f"Your table is ready, {conv.id}"},
                timeout=30,
            )
            with lock:
                if r.status_code == 202:
                    started[r.json()["id"]] = t
                else:
                    errors.append(f"{r.status_code} {r.text[:100]}")

    t0 = time.time()
    workers = [threading.Thread(target=client, args=(convs[i::threads], i)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    posted_s = time.time() - t0
    while time.time() - t0 < timeout:
        if Message.objects.filter(id__in=started, sent_at__isnull=False).count() >= len(started):
            break
        time.sleep(POLL_S)
    done_s = time.time() - t0
    sent = dict(Message.objects.filter(id__in=started, sent_at__isnull=False).values_list("id", "sent_at"))
    latencies = [(sent[i].timestamp() - t) * 1000 for i, t in started.items() if i in sent]
    return {
        "messages": count,
        "threads": threads,
        "rate_target": rate,
        "errors": len(errors),
        "error_sample": errors[:3],
        "api_per_s": round(len(started) / posted_s),
        "accepted": len(sent),
        "accepted_per_s": round(len(sent) / done_s) if done_s else None,
        "latency_p50_ms": round(pct(latencies, 50), 1),
        "latency_p95_ms": round(pct(latencies, 95), 1),
        "latency_max_ms": round(max(latencies, default=0), 1),
    }


_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def _statements(ctx) -> int:
    """Captured SQL statements, without transaction control (BEGIN/COMMIT/SAVEPOINT lines Django logs)."""
    return sum(1 for q in ctx.captured_queries if not q["sql"].lstrip().upper().startswith(_CONTROL))


def measure_queries(*, sandbox_url: str) -> dict:
    """Statements per message of prepare and send, on a 1000-recipient chunk, in this process (the
    code the workers run; the settings cache warm, as it is in a running worker)."""
    from messaging import cache
    from messaging.models import BlastStatus
    from messaging.services import carrier_send, prepare
    from messaging.services import sending as sending_services

    org, account, (line,) = seed_org("bench-send-queries", sandbox_url=sandbox_url)
    blast = seed_blast(org, line, seed_contacts(org, 1000, area="214"), BLAST_BODY)
    type(blast).objects.filter(pk=blast.id).update(status=BlastStatus.SENDING)
    ((lo, hi),) = sending_services._chunk_ranges(blast.id)
    cache.org_info(org.id)
    cache.line_info(line.id)
    cache.account_info(account.id)
    with CaptureQueriesContext(connection) as prep:
        groups = prepare.blast_prepare_chunk(blast_id=blast.id, first_recipient_id=lo, last_recipient_id=hi)
    n = sum(len(g.message_ids) for g in groups)
    with CaptureQueriesContext(connection) as snd:
        outcomes = [
            carrier_send.batch_send(line_id=g.line_id, message_ids=g.message_ids, segments=g.segments) for g in groups
        ]
    sent = sum(o.sent for o in outcomes)
    # Single conversation messages (one per prepare call and per send call, as the API makes them).
    from messaging.models import Conversation

    conv_contacts = seed_contacts(org, 20, area="469")
    convs = Conversation.objects.bulk_create(
        [Conversation(organization=org, line=line, contact_id=c) for c in conv_contacts]
    )
    # The prepare tasks these publish are not consumed (no worker on "prepare" now); main() purges them.
    ids = [sending_services.message_send(organization=org, conversation_id=c.id, body="hi").id for c in convs]
    with CaptureQueriesContext(connection) as one_prep:
        single_groups = [prepare.messages_prepare(message_ids=[i]) for i in ids]
    with CaptureQueriesContext(connection) as one_send:
        for gs in single_groups:
            for g in gs:
                carrier_send.batch_send(line_id=g.line_id, message_ids=g.message_ids, segments=g.segments)
    return {
        "blast_chunk_messages": n,
        "blast_chunk_sent": sent,
        "prepare_statements": _statements(prep),
        "prepare_per_message": round(_statements(prep) / max(n, 1), 4),
        "send_statements": _statements(snd),
        "send_per_message": round(_statements(snd) / max(n, 1), 4),
        "single_message_prepare_per_message": round(_statements(one_prep) / len(ids), 2),
        "single_message_send_per_message": round(_statements(one_send) / len(ids), 2),
        "with_transaction_control": {
            "prepare": len(prep.captured_queries),
            "send": len(snd.captured_queries),
            "single_prepare": len(one_prep.captured_queries),
            "single_send": len(one_send.captured_queries),
        },
    }


def run_naive(*, sandbox_url: str, count: int, timeout: float = 600) -> dict:
    """The naive path (bench/naive_send.py): one task per message, every step at send time."""
    from naive_send import QUEUE, naive_send_one

    org, _account, (line,) = seed_org("bench-send-naive", sandbox_url=sandbox_url)
    contact_ids = seed_contacts(org, count, area="737")
    blast = seed_blast(org, line, contact_ids, BLAST_BODY)
    t0 = time.time()
    for contact_id in contact_ids:  # the naive "launch": one task per recipient
        naive_send_one.apply_async(args=[blast.id, contact_id], queue=QUEUE)
    enqueue_s = time.time() - t0
    while time.time() - t0 < timeout:
        if Message.objects.filter(blast=blast).exclude(carrier_batch_id="").count() >= count:
            break
        time.sleep(POLL_S)
    done_s = time.time() - t0
    accepted = Message.objects.filter(blast=blast).exclude(carrier_batch_id="").count()
    return {
        "messages": count,
        "accepted": accepted,
        "enqueue_s": round(enqueue_s, 2),
        "send_stage_s": round(done_s, 2),
        "send_stage_per_s": round(accepted / done_s),
    }


def run_webhooks_wrk(duration: int) -> dict:
    """The carriers' webhook bench (bench/bench_webhooks.py): the endpoint alone under wrk, and the
    batch apply rate. Its last JSON line is taken whole."""
    cmd = [
        sys.executable,
        str(ROOT / "bench" / "bench_webhooks.py"),
        "--duration",
        str(duration),
        "--messages",
        "20000",
        "--sandbox-reports",
        "0",
    ]
    out = subprocess.run(cmd, cwd=ROOT, env={**os.environ}, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        return {"error": out.stderr[-500:]}
    return last_json_line(out.stdout)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipients", type=int, default=20_000)
    p.add_argument("--conversations", type=int, default=2_000)
    p.add_argument("--threads", type=int, default=4, help="API client threads for the conversation run")
    p.add_argument(
        "--conversation-rate", type=float, default=10.0, help="requests/s the conversation clients start (0 = unpaced)"
    )
    p.add_argument("--naive-messages", type=int, default=2_000)
    p.add_argument("--sandbox-workers", type=int, default=3, help="sandbox processes (report posting)")
    p.add_argument(
        "--report-delay",
        default="1,3",
        help="min,max seconds from carrier acceptance to its delivery report (e.g. 30,40 measures the send "
        "stage without report traffic on the same cores)",
    )
    p.add_argument(
        "--send-concurrency",
        type=int,
        default=4,
        help="prefork children on prepare,send (4 on 2 cores: a child waiting on PostgreSQL or the "
        "carrier leaves the core to another); the naive path gets the same",
    )
    p.add_argument(
        "--postprocessing",
        choices=("on", "off", "both"),
        default="both",
        help="both: the blast with post-processing off, then on (bench/bench_postprocessing.py)",
    )
    p.add_argument(
        "--web-threads", type=int, default=4, help="web app threads per worker (2 workers, config/webserver.py)"
    )
    p.add_argument("--wrk-duration", type=int, default=10)
    p.add_argument(
        "--paced-rates",
        default="1,10,100,2000",
        help="line rates (segments/s) of the paced blasts: carrier calls at real line rates (issue 17.1)",
    )
    p.add_argument("--paced-seconds", type=float, default=30, help="seconds of sending per paced blast")
    p.add_argument("--paced-cap", type=int, default=10_000, help="most recipients of one paced blast")
    p.add_argument(
        "--split-workers",
        action="store_true",
        help="one worker process per queue (prepare, send, webhooks+default, postprocessing), "
        "each of --send-concurrency // 2 children for prepare and send; CPU per process in the blast's figures",
    )
    p.add_argument(
        "--inflight-triggers-rounds",
        type=int,
        default=0,
        help="price the work-queue triggers: the blast this many times each with them on and off "
        "(alternating; bench-only ALTER TABLE … DISABLE TRIGGER, docs/performance.md); 0 = skip",
    )
    p.add_argument("--skip", default="", help="comma list of: blast,conversations,queries,naive,wrk,paced")
    args = p.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    call_command("migrate", verbosity=0)
    purge_queues()
    procs = Procs()
    web_port, sandbox_port = free_port(), free_port()
    base_url = f"http://127.0.0.1:{web_port}"
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    env = bench_env(PUBLIC_BASE_URL=base_url)
    from django.conf import settings

    settings.PUBLIC_BASE_URL = base_url  # callback_url of what this process sends itself (query counts)
    figures: dict = {
        "bench": "send",
        "postprocessing": args.postprocessing,
        "cores": os.cpu_count(),
        "web_server": "granian",
        "web_workers": 2,
        "web_threads": args.web_threads,
        "sandbox_workers": args.sandbox_workers,
        "send_worker_concurrency": args.send_concurrency,
        "report_delay_s": args.report_delay,
        "broker": broker_name(),
        "split_workers": args.split_workers,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        # Reports 1-3 s after acceptance (real carriers take seconds; the sandbox default is 0.05-0.5 s).
        procs.add(
            "sandbox",
            start_sandbox(
                sandbox_port,
                "--delay-min",
                args.report_delay.split(",")[0],
                "--delay-max",
                args.report_delay.split(",")[1],
                "--no-dispatched",
                workers=args.sandbox_workers,
                env=env,
            ),
        )
        procs.add("web", start_web(web_port, threads=args.web_threads, env=env))
        # Prefetch 1: a child busy with a slow carrier call does not sit on reserved single-message
        # tasks (latency); the blast's tasks are few and fat, so throughput does not need prefetch.
        send_env = {**env, "CELERY_PREFETCH_MULTIPLIER": "1"}
        if args.split_workers:  # as on separate machines: a process (and its pool) per queue
            half = max(1, args.send_concurrency // 2)
            procs.add("prepare", start_worker("prepare", concurrency=half, env=send_env))
            procs.add("send", start_worker("send", concurrency=half, env=send_env))
        else:
            procs.add("send", start_worker(SEND_QUEUES, concurrency=args.send_concurrency, env=send_env))
        procs.add("apply", start_worker("webhooks,default", concurrency=1, env=env))
        if args.postprocessing == "on":
            procs.add("postprocessing", start_worker("postprocessing", concurrency=1, env=env))

        if "blast" not in skip and args.postprocessing == "both":
            from bench_postprocessing import blast_on_off
            from common import stop

            log(f"== blast: {args.recipients} recipients, post-processing off then on")
            figures["postprocessing_compare"] = pp = blast_on_off(
                run_blast=run_blast,
                blast_kwargs={"base_url": base_url, "sandbox_url": sandbox_url, "recipients": args.recipients},
                start_worker=lambda: start_worker("postprocessing", concurrency=1, env=env),
                stop_worker=stop,
                cpu_meter=lambda worker: cpu_meter({**dict(procs.procs), "postprocessing": worker}),
            )
            figures["blast"] = b = pp["on"]
            log_cpu(figures, b)
            log(
                f"send stage on/off {pp['send_stage_ratio_on_off']}; post-processing lag p50 {pp['lag_p50_s']} s, "
                f"p95 {pp['lag_p95_s']} s; {pp['events_per_s']} events/s"
            )
        elif "blast" not in skip:
            log(f"== blast: {args.recipients} recipients (postprocessing {args.postprocessing})")
            from bench_postprocessing import DrainTicker, max_event_id, pending_since

            # With post-processing on, the drain's 1 s beat entry ticks as in production.
            ticker = DrainTicker().start() if args.postprocessing == "on" else None
            meter, first_event = cpu_meter(dict(procs.procs)), max_event_id()
            figures["blast"] = b = run_blast(base_url=base_url, sandbox_url=sandbox_url, recipients=args.recipients)
            # Closed loop: the meter stops once the blast's post-processing events are processed too.
            deadline = time.monotonic() + 120
            while ticker is not None and pending_since(first_event) and time.monotonic() < deadline:
                time.sleep(0.2)
            b["cpu_s"] = meter.stop()
            b["cpu_background_s"], b["cpu_idle_per_s"] = meter.background, meter.idle_per_s
            b["cpu_postgresql_by_client_s"] = meter.postgresql_by_client
            if ticker is not None:
                ticker.stop()
            log_cpu(figures, b)
            log(
                f"launch {b['launch_ms']} ms; prepared {b['prepared_per_s']}/s; send stage {b['send_stage_s']} s "
                f"= {b['send_stage_per_s']} msg/s; reports stored {b['reports_stored_per_s']}/s, applied "
                f"{b['reports_applied_per_s']}/s; end to end {b['end_to_end_s']} s = {b['end_to_end_per_s']} msg/s"
            )
        if args.inflight_triggers_rounds:
            log(
                f"== work-queue triggers on vs off: {args.recipients} recipients, "
                f"{args.inflight_triggers_rounds} rounds each"
            )
            figures["inflight_triggers"] = t = run_trigger_compare(
                rounds=args.inflight_triggers_rounds,
                procs=dict(procs.procs),
                blast_kwargs={"base_url": base_url, "sandbox_url": sandbox_url, "recipients": args.recipients},
            )
            log(
                f"send stage with triggers {t['send_stage_per_s_on_median']}/s, without "
                f"{t['send_stage_per_s_off_median']}/s (on/off {t['send_stage_on_over_off']}); PostgreSQL CPU "
                f"{t['postgresql_cpu_s_on_median']} s vs {t['postgresql_cpu_s_off_median']} s"
            )
        if "conversations" not in skip:
            log(f"== conversations: {args.conversations} single messages, {args.threads} client threads")
            figures["conversations"] = c = run_conversations(
                base_url=base_url,
                sandbox_url=sandbox_url,
                count=args.conversations,
                threads=args.threads,
                rate=args.conversation_rate,
            )
            log(f"API {c['api_per_s']}/s; API → carrier p50 {c['latency_p50_ms']} ms, p95 {c['latency_p95_ms']} ms")
        if "paced" not in skip:
            figures["paced"] = []
            for rate in [float(r) for r in args.paced_rates.split(",") if r]:
                log(f"== paced blast: a line at {rate:g} segments/s, {args.paced_seconds:g} s of sending")
                figures["paced"].append(
                    pb := run_paced(
                        base_url=base_url,
                        sandbox_url=sandbox_url,
                        rate=rate,
                        seconds=args.paced_seconds,
                        cap=args.paced_cap,
                    )
                )
                log(
                    f"{pb['accepted']} messages in {pb['carrier_calls']} calls: {pb['recipients_per_carrier_call']} "
                    f"recipients/call (target {pb['target_recipients_per_call']}), "
                    f"{pb['carrier_calls_per_1000_messages']} calls per 1,000; most in 1 s: "
                    f"{pb['max_segments_in_1s_window']}"
                )
        procs.stop("send")
        procs.stop("prepare")
        if "queries" not in skip:
            figures["queries"] = q = measure_queries(sandbox_url=sandbox_url)
            purge_queues("prepare", "send")
            log(
                f"statements/message: prepare {q['prepare_per_message']}, send {q['send_per_message']} "
                f"(single messages: {q['single_message_prepare_per_message']} + "
                f"{q['single_message_send_per_message']})"
            )
        if "naive" not in skip:
            log(f"== naive path: {args.naive_messages} messages, one task each")
            procs.add("naive", start_worker("naive", concurrency=args.send_concurrency, env=env, include="naive_send"))
            figures["naive"] = n = run_naive(sandbox_url=sandbox_url, count=args.naive_messages)
            procs.stop("naive")
            log(f"naive send stage {n['send_stage_s']} s = {n['send_stage_per_s']} msg/s")
            if figures.get("blast", {}).get("send_stage_per_s"):
                figures["send_stage_ratio"] = round(figures["blast"]["send_stage_per_s"] / n["send_stage_per_s"], 1)
                log(f"send stage ratio optimized/naive: {figures['send_stage_ratio']}x")
    finally:
        procs.stop_all()
        purge_queues()
    if "wrk" not in skip:
        log(f"== delivery-report endpoint alone under wrk ({args.wrk_duration} s, bench/bench_webhooks.py)")
        figures["webhooks"] = w = run_webhooks_wrk(args.wrk_duration)
        log(
            f"stored {w.get('store', {}).get('stored_per_s')}/s under wrk; batch apply "
            f"{w.get('apply', {}).get('statuses_per_s')} statuses/s"
        )
    figures["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    figures["summary"] = summary(figures)
    print(json.dumps(figures), flush=True)


def summary(f: dict) -> dict:
    b, c, q, w = f.get("blast", {}), f.get("conversations", {}), f.get("queries", {}), f.get("webhooks", {})
    return {
        "launch_ms": b.get("launch_ms"),
        "prepared_per_s": b.get("prepared_per_s"),
        "send_stage_per_s": b.get("send_stage_per_s"),
        "naive_send_stage_per_s": f.get("naive", {}).get("send_stage_per_s"),
        "send_stage_ratio": f.get("send_stage_ratio"),
        "reports_stored_per_s_closed_loop": b.get("reports_stored_per_s"),
        "reports_applied_per_s_closed_loop": b.get("reports_applied_per_s"),
        "reports_stored_per_s_wrk": w.get("store", {}).get("stored_per_s"),
        "reports_applied_per_s_batch": w.get("apply", {}).get("statuses_per_s"),
        "end_to_end_per_s": b.get("end_to_end_per_s"),
        "conversation_p50_ms": c.get("latency_p50_ms"),
        "conversation_p95_ms": c.get("latency_p95_ms"),
        "prepare_queries_per_message": q.get("prepare_per_message"),
        "send_queries_per_message": q.get("send_per_message"),
        "postprocessing_send_ratio": f.get("postprocessing_compare", {}).get("send_stage_ratio_on_off"),
        "postprocessing_lag_p50_s": f.get("postprocessing_compare", {}).get("lag_p50_s"),
        "postprocessing_lag_p95_s": f.get("postprocessing_compare", {}).get("lag_p95_s"),
        "postprocessing_events_per_s": f.get("postprocessing_compare", {}).get("events_per_s"),
        "loadavg_start": f.get("loadavg_start"),
        "loadavg_end": f.get("loadavg_end"),
        "broker": f.get("broker"),
        "split_workers": f.get("split_workers"),
        # The headline of issue 17.5: our CPU per delivered message, closed loop (docs/performance.md).
        "cpu_ms_per_message_ours": f.get("cpu_ms_per_message_ours"),
        "cpu_ms_per_message": b.get("cpu_ms_per_message"),
        "send_stage_per_s_inflight_triggers_on": f.get("inflight_triggers", {}).get("send_stage_per_s_on_median"),
        "send_stage_per_s_inflight_triggers_off": f.get("inflight_triggers", {}).get("send_stage_per_s_off_median"),
        # Paced lines (issue 17.1): per line rate, recipients per carrier call and calls per 1,000 messages.
        "recipients_per_carrier_call": {
            f"{p['line_rate_per_s']:g}/s": p["recipients_per_carrier_call"] for p in f.get("paced", [])
        },
        "carrier_calls_per_1000_messages": {
            f"{p['line_rate_per_s']:g}/s": p["carrier_calls_per_1000_messages"] for p in f.get("paced", [])
        },
        # With --postprocessing both, "blast" above is the run with post-processing on; the same blast
        # with post-processing off (no outbox drain competing for the 2 cores):
        **_pp_off(f),
    }


def _pp_off(f: dict) -> dict:
    off = f.get("postprocessing_compare", {}).get("off")
    if not off:
        return {}
    naive = f.get("naive", {}).get("send_stage_per_s")
    return {
        "pp_off_prepared_per_s": off.get("prepared_per_s"),
        "pp_off_send_stage_per_s": off.get("send_stage_per_s"),
        "pp_off_send_stage_ratio": round(off["send_stage_per_s"] / naive, 1)
        if naive and off.get("send_stage_per_s")
        else None,
        "pp_off_reports_stored_per_s": off.get("reports_stored_per_s"),
        "pp_off_end_to_end_per_s": off.get("end_to_end_per_s"),
    }


if __name__ == "__main__":
    main()
