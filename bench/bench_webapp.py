"""Web app inbox benchmark (issue 16; docs/webapp.md, "Measured").

One organization with 100,000 conversations (2 lines, 100,000 contacts, 150,000 messages: every
conversation has an inbound text, half of them an answer; 2 % without a message, 20 % closed, 10 %
assigned to the member measured, read markers on 10 %), plus another organization of 20,000 so the
tenant predicate matters. Then, in process through Django's test client (the whole view: session,
auth, queries, template), each page N times after a warm-up: the inbox's first page (all, open, mine,
unassigned, one line), a page 50,000 rows deep (keyset cursor), search by number and by name, the
inbox's live poll answered 304, a thread and its live poll answered 304. Prints p50 / p95 / max in ms
and the queries per request, and ends with one line of JSON.

    DATABASE_URL=... .venv/bin/python bench/bench_webapp.py [--conversations 100000] [--repeat 200]

Needs a migrated database (`make services` or `manage.py migrate`); the data is left in place, named
after the run, so a second run measures a bigger table (use a fresh database for published figures).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("LOG_LEVEL", "WARNING")

from common import django_setup, log, pct, seed_contacts, seed_org  # noqa: E402

django_setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from messaging.models import Conversation, ConversationStatus  # noqa: E402
from messaging.status import MessageStatus  # noqa: E402
from organizations.models import Membership, Role  # noqa: E402
from webapp.inbox import encode_cursor  # noqa: E402

# Statuses bound from their definitions (tests/test_architecture.py: no status typed into SQL).
_STATES = {
    "open": ConversationStatus.OPEN.value,
    "closed": ConversationStatus.CLOSED.value,
    "received": MessageStatus.RECEIVED.value,
    "delivered": MessageStatus.DELIVERED.value,
}
_CONVERSATIONS_SQL = """
INSERT INTO messaging_conversation
    (organization_id, line_id, contact_id, status, assignee_id, last_message_at, last_message_preview, created_at)
SELECT %(org)s, (%(lines)s::bigint[])[1 + c.n %% 2], c.id,
       CASE WHEN c.n %% 5 = 0 THEN %(closed)s ELSE %(open)s END,
       CASE WHEN c.n %% 10 = 3 THEN %(user)s END,
       CASE WHEN c.n %% 50 = 7 THEN NULL ELSE now() - make_interval(secs => c.n * 37) END,
       'Preview of conversation ' || c.n, now()
FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM unnest(%(contacts)s::bigint[]) AS t(id)) c
"""
# One inbound text per conversation with a time, and an answer (delivered) for every other one.
_MESSAGES_SQL = """
INSERT INTO messaging_message
    (organization_id, line_id, conversation_id, contact_id, direction, body, rendered_body, media, status,
     segments, encoding, carrier_batch_id, carrier_recipient, carrier_status, error_code, error_reason,
     send_attempts, send_batch_ref, created_at, status_updated_at)
SELECT c.organization_id, c.line_id, c.id, c.contact_id, d.direction, 'bench text', 'bench text', '[]',
       CASE WHEN d.direction = 'in' THEN %(received)s ELSE %(delivered)s END, 1, 'GSM-7', '', '', '', '', '', 0, '',
       c.last_message_at - CASE WHEN d.direction = 'in' THEN interval '1 minute' ELSE interval '0' END,
       c.last_message_at
FROM messaging_conversation c
CROSS JOIN (VALUES ('in'), ('out')) AS d(direction)
WHERE c.organization_id = %(org)s AND c.last_message_at IS NOT NULL AND (d.direction = 'in' OR c.id %% 2 = 0)
"""
_READS_SQL = """
INSERT INTO webapp_conversationread (user_id, conversation_id, read_at)
SELECT %(user)s, id, now() FROM messaging_conversation WHERE organization_id = %(org)s AND id %% 10 = 1
"""


def seed(conversations: int, user) -> tuple:
    org, _, lines = seed_org("bench-webapp", sandbox_url="http://127.0.0.1:9", lines=2)
    Membership.objects.create(user=user, organization=org, role=Role.ADMIN)
    other, _, other_lines = seed_org("bench-webapp-other", sandbox_url="http://127.0.0.1:9", lines=1)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for target, n, area, line_ids in ((org, conversations, "737", lines), (other, 20_000, "512", other_lines)):
            contacts = seed_contacts(target, n, area=area)
            ids = [line.id for line in line_ids] * 2
            cursor.execute(
                _CONVERSATIONS_SQL,
                {"org": target.id, "lines": ids[:2], "user": user.id, "contacts": contacts, **_STATES},
            )
            cursor.execute(_MESSAGES_SQL, {"org": target.id, **_STATES})
        cursor.execute(_READS_SQL, {"user": user.id, "org": org.id})
        cursor.execute("ANALYZE messaging_conversation; ANALYZE messaging_message; ANALYZE messaging_contact;")
        cursor.execute("ANALYZE webapp_conversationread")
    took = time.perf_counter() - started
    log(f"seeded {conversations} conversations (+20,000 in another organization) in {took:.1f} s")
    return org, lines


def measure(client: Client, path: str, repeat: int, headers: dict | None = None) -> dict:
    headers = headers or {}
    statuses = set()
    for _ in range(5):  # warm-up: template loading, plan cache
        client.get(path, **headers)
    times: list[float] = []
    with CaptureQueriesContext(connection) as queries:
        for _ in range(repeat):
            t = time.perf_counter()
            response = client.get(path, **headers)
            times.append((time.perf_counter() - t) * 1000)
            statuses.add(response.status_code)
    return {
        "p50_ms": round(pct(times, 50), 1),
        "p95_ms": round(pct(times, 95), 1),
        "max_ms": round(max(times), 1),
        "queries": round(len(queries.captured_queries) / repeat, 1),
        "status": sorted(statuses),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    user = get_user_model().objects.create_user(username=f"bench-webapp-{int(time.time())}@example.com")
    org, lines = seed(args.conversations, user)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    client.get("/inbox/")  # remembers the organization in the session
    deep = Conversation.objects.filter(organization=org, last_message_at__isnull=False).order_by(
        "-last_message_at", "-id"
    )[args.conversations // 2]
    one = Conversation.objects.filter(organization=org, last_message_at__isnull=False).order_by("-last_message_at")[0]
    htmx = {"HTTP_HX_REQUEST": "true"}
    cases = {
        "inbox first page": "/inbox/",
        "inbox open": "/inbox/?filter=open",
        "inbox mine": "/inbox/?filter=mine",
        "inbox unassigned": "/inbox/?filter=unassigned",
        "inbox closed": "/inbox/?filter=closed",
        "inbox one line": f"/inbox/?line={lines[0].id}",
        "inbox 50,000 rows deep": f"/inbox/?cursor={encode_cursor(deep)}",
        "search number": "/inbox/?q=737200",
        "search name": "/inbox/?q=First4242",
        "thread": f"/inbox/{one.pk}/",
    }
    results = {name: measure(client, path, args.repeat) for name, path in cases.items()}
    # The fingerprints now, the thread's first: a thread that renders moves the read marker, which the inbox shows.
    thread_tag = client.get(f"/inbox/{one.pk}/live/", **htmx)["ETag"]
    inbox_tag = client.get("/inbox/?live=1", **htmx)["ETag"]
    results["inbox live poll (304)"] = measure(
        client, "/inbox/?live=1", args.repeat, {**htmx, "HTTP_IF_NONE_MATCH": inbox_tag}
    )
    results["thread live poll (304)"] = measure(
        client, f"/inbox/{one.pk}/live/", args.repeat, {**htmx, "HTTP_IF_NONE_MATCH": thread_tag}
    )
    load = os.getloadavg()
    log(f"\n{'page':28} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'queries':>8}  status")
    for name, r in results.items():
        log(f"{name:28} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f} {r['max_ms']:8.1f} {r['queries']:8.1f}  {r['status']}")
    log(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(json.dumps({"conversations": args.conversations, "repeat": args.repeat, "load": load, "results": results}))


if __name__ == "__main__":
    main()
