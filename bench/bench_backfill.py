"""Status backfill benchmark (make bench-backfill; docs/backfill.md).

10,000 outbound messages stuck in "sent" on one line (10 batches of 1,000, batch ids recorded), the
sandbox carrier limited to 200 API requests/s (429 + Retry-After beyond). One backfill run at
--rate 200 asks for every recipient's delivery report and applies the answers through
messages_apply_statuses. Prints messages repaired per second, its ratio to the carrier limit
(target >= 0.9), database queries per repaired message, and ends with one line of JSON.

Run it under the shared lock: flock /tmp/parley-bench.lock .venv/bin/python bench/bench_backfill.py
Options: --messages N (10000), --limit R (200 req/s at the carrier), --rate R (default = --limit).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from backfill.services import BackfillOptions, backfill_run_create, statuses_backfill  # noqa: E402
from carriers.models import CarrierAccount, Provider  # noqa: E402
from carriers.sandbox.state import new_batch_id  # noqa: E402
from messaging.models import Contact, Conversation, Direction, Line, Message  # noqa: E402
from messaging.status import MessageStatus  # noqa: E402
from organizations.models import Organization  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sandbox(port: int, limit: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "carriers.sandbox",
            "--port",
            str(port),
            "--rate-limit",
            str(limit),
            "--mix",
            "delivered=0.9,failed=0.05,expired=0.05",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("sandbox carrier did not start")


def sandbox_stats(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/_sandbox/stats", timeout=5) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def seed(n: int, url: str) -> tuple[Organization, Line]:
    stamp = int(time.time() * 1000)
    org = Organization.objects.create(name=f"bench-backfill-{stamp}")
    account = CarrierAccount.objects.create(
        organization=org,
        name="Sandbox",
        provider=Provider.SANDBOX,
        backfill_rate=10,
        config={"service_plan_id": "benchplan", "api_token": "bench-token", "base_url": url},
    )
    line = Line.objects.create(
        organization=org, phone_number=f"+1512{stamp % 10_000_000:07d}", carrier_account=account, is_active=False
    )
    numbers = [f"+1737{2000000 + i:07d}" for i in range(n)]
    contacts = Contact.objects.bulk_create(
        [Contact(organization=org, phone_number=p) for p in numbers], batch_size=1000
    )
    conversations = Conversation.objects.bulk_create(
        [Conversation(organization=org, line=line, contact=c) for c in contacts], batch_size=1000
    )
    sent_at = timezone.now()
    batch_ids = [new_batch_id(time.time() - 60) for _ in range((n + 999) // 1000)]
    Message.objects.bulk_create(
        [
            Message(
                organization=org,
                line=line,
                conversation=conv,
                contact=contact,
                direction=Direction.OUTBOUND,
                body="Sale!",
                status=MessageStatus.SENT,
                carrier_batch_id=batch_ids[i // 1000],
                carrier_recipient=contact.phone_number,
                sent_at=sent_at,
            )
            for i, (contact, conv) in enumerate(zip(contacts, conversations, strict=True))
        ],
        batch_size=1000,
    )
    return org, line


def run_backfill(*, messages: int, limit: float, rate: float) -> dict:
    """Seeds `messages` stuck messages on a new line, runs one backfill against a sandbox carrier limited
    to `limit` requests/s, returns the figures (and removes the bench's tenant)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sandbox = start_sandbox(port, limit)
    org = None
    try:
        t0 = time.perf_counter()
        org, line = seed(messages, url)
        print(f"seeded {messages} stuck messages in {time.perf_counter() - t0:.1f} s", flush=True)
        run = backfill_run_create(organization_id=org.id, line_id=line.id, options=BackfillOptions(rate=rate))

        queries = 0

        def count(execute, sql, params, many, context):
            nonlocal queries
            queries += 1
            return execute(sql, params, many, context)

        before = sandbox_stats(url)
        with connection.execute_wrapper(count):
            started = time.perf_counter()
            run = statuses_backfill(run_id=run.id)
            elapsed = time.perf_counter() - started
        after = sandbox_stats(url)

        c = run.counts
        repaired = sum(c["updated"].values())
        per_second = repaired / elapsed
        requests = after["requests"] - before["requests"]
        throttled = after["throttled"] - before["throttled"]
        remaining = Message.objects.filter(organization=org, line=line, status__in=["sending", "sent"]).count()
        figures = {
            "bench": "backfill",
            "messages": messages,
            "carrier_limit_rps": limit,
            "backfill_rate_rps": rate,
            "state": run.state,
            "seconds": round(elapsed, 2),
            "checked": c["checked"],
            "repaired": repaired,
            "updated": c["updated"],
            "unchanged": c["unchanged"],
            "not_found": c["not_found"],
            "errors": c["errors"],
            "still_stuck": remaining,
            "repaired_per_second": round(per_second, 1),
            "ratio_to_carrier_limit": round(per_second / limit, 3),
            "carrier_requests": requests,
            "carrier_429": throttled,
            "db_queries": queries,
            "db_queries_per_repaired_message": round(queries / max(repaired, 1), 4),
        }
        print(
            f"repaired {repaired} of {messages} messages in {elapsed:.1f} s: {per_second:.1f} msg/s, "
            f"{figures['ratio_to_carrier_limit']:.3f} x the carrier limit of {limit:.0f} req/s "
            f"(target >= 0.9)"
        )
        print(
            f"carrier requests {requests} (429 answers: {throttled}); database queries {queries} = "
            f"{figures['db_queries_per_repaired_message']} per repaired message"
        )
        print(
            f"by status: {c['updated']}; unchanged {c['unchanged']}, not found {c['not_found']}, errors {c['errors']}"
        )
        return figures
    finally:
        sandbox.terminate()
        sandbox.wait(10)
        if org is not None:
            # Leave the database as we found it (events of the bench's messages, then the tenant).
            from backfill.models import BackfillRun
            from postprocessing.models import Event

            ids = list(Message.objects.filter(organization=org).values_list("id", flat=True))
            Event.objects.filter(message_id__in=ids).delete()
            BackfillRun.objects.filter(organization=org).delete()
            # Messages RESTRICT their line and conversation (messaging/models.py): they go first.
            Message.objects.filter(organization=org).delete()
            Conversation.objects.filter(organization=org).delete()
            Line.objects.filter(organization=org).delete()  # Line.carrier_account is PROTECT
            org.delete()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--limit", type=float, default=200.0, help="sandbox carrier API requests/s")
    parser.add_argument("--rate", type=float, default=None, help="backfill rate (default: the limit)")
    args = parser.parse_args()
    print(json.dumps(run_backfill(messages=args.messages, limit=args.limit, rate=args.rate or args.limit)))


if __name__ == "__main__":
    main()
