"""Benchmark of the web app's report pages with a 100,000-recipient blast (make bench-webapp-reports).
See docs/webapp.md ("Blasts and reports").

1. Seeds once (reused by later runs) an organization with 100,000 contacts and conversations, one blast
   of 100,000 messages (delivered over 30 minutes 92 %, failed 5 % over four carrier error codes,
   undelivered 2 %, blocked 1 %), a short link per message (two targets) and 10,000 clicks, 1,500 of them
   bots — with set-based INSERT ... SELECT generate_series, not the ORM.
2. Signs in a member and requests each page through the whole Django stack (middleware, session, view,
   template) with the test client: a warm-up, then --requests times each, first "cold" (every request
   reads the aggregates: webapp.reports.REPORT_CACHE_SECONDS = 0), then "warm" (as a polling tab or a
   second viewer within REPORT_CACHE_SECONDS gets it). Prints p50, p95, max and the queries per page, and
   one line of JSON with every figure.

Pages: the blast's report (/blasts/<id>/), its CSV export, the blast list, the organization's report.
The issue's bar: a blast report renders in < 200 ms p95 with a 100,000-recipient blast.

Run it under the shared lock:  flock /tmp/parley-bench.lock .venv/bin/python bench/bench_webapp_reports.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from common import django_setup, log  # noqa: E402

django_setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from messaging.models import Blast, BlastStatus, ConversationStatus, Direction, Line  # noqa: E402
from messaging.processors.blast import blasts_recount  # noqa: E402
from messaging.services.prepare import OPTED_OUT_CODE  # noqa: E402
from messaging.status import MessageStatus as S  # noqa: E402
from organizations.models import Membership, Organization, Role  # noqa: E402
from shortener.services.rollups import click_rollups_rebuild  # noqa: E402
from webapp import reports  # noqa: E402

BENCH_ORG = "bench-webapp-reports"
RECIPIENTS = 100_000
CLICKS = 10_000
USERNAME = "bench-reports@example.com"
PASSWORD = "bench-reports-pw-123"  # noqa: S105 - a local bench account

_SEED_SQL = [
    # contacts: +1 512 3xx xxxx, names, a custom field
    """INSERT INTO messaging_contact (organization_id, phone_number, sender_kind, first_name, last_name, email,
           custom_fields, created_at, updated_at)
       SELECT %(org)s, '+1512' || lpad((3000000 + g)::text, 7, '0'), 'phone', 'First' || g, 'Bench', '',
              jsonb_build_object('tier', CASE WHEN g %% 10 = 0 THEN 'gold' ELSE 'basic' END), now(), now()
       FROM generate_series(1, %(n)s) g""",
    """INSERT INTO messaging_conversation (organization_id, line_id, contact_id, status, last_message_at,
           last_message_preview, created_at)
       SELECT %(org)s, %(line)s, c.id, %(open)s, %(start)s, 'Hi', now()
       FROM messaging_contact c WHERE c.organization_id = %(org)s""",
    """INSERT INTO messaging_blastrecipient (blast_id, contact_id)
       SELECT %(blast)s, c.id FROM messaging_contact c WHERE c.organization_id = %(org)s""",
    # messages: status by position; delivered / failed times spread over 30 minutes from the launch
    """INSERT INTO messaging_message (organization_id, line_id, conversation_id, contact_id, blast_id, direction,
           body, rendered_body, media, status, segments, encoding, carrier_batch_id, carrier_recipient,
           carrier_status, error_code, error_reason, send_attempts, send_batch_ref, created_at, sent_at,
           delivered_at, failed_at, status_updated_at)
       SELECT %(org)s, %(line)s, v.id, v.contact_id, %(blast)s, %(out)s, 'Hi {first_name}, sale: https://shop.example/s',
              'Hi there, sale: http://prly.localhost:8000/abc', '[]', s.status, 1, 'GSM-7', 'batch', '', '',
              s.code, '', 1, '', %(start)s, %(start)s,
              CASE WHEN s.status = %(delivered)s THEN %(start)s + (v.rn %% 1800) * interval '1 second' END,
              CASE WHEN s.status IN (%(failed)s, %(undelivered)s)
                   THEN %(start)s + (v.rn %% 1800) * interval '1 second' END,
              %(start)s
       FROM (SELECT c.id, c.contact_id, row_number() OVER (ORDER BY c.id) AS rn
             FROM messaging_conversation c WHERE c.organization_id = %(org)s) v
       CROSS JOIN LATERAL (SELECT
           CASE WHEN v.rn %% 100 < 92 THEN %(delivered)s WHEN v.rn %% 100 < 97 THEN %(failed)s
                WHEN v.rn %% 100 < 99 THEN %(undelivered)s ELSE %(blocked)s END AS status,
           CASE WHEN v.rn %% 100 BETWEEN 92 AND 96 THEN (ARRAY['30003', '30005', '30006', '30007'])[1 + v.rn %% 4]
                WHEN v.rn %% 100 BETWEEN 97 AND 98 THEN '30008'
                WHEN v.rn %% 100 = 99 THEN %(opted_out)s ELSE '' END AS code) s""",
    """INSERT INTO shortener_link (code, organization_id, target_url, fallback_url, message_id, contact_id, blast_id,
           created_at, click_count, unique_click_count, bot_click_count)
       SELECT 'bw' || m.id, %(org)s,
              CASE WHEN m.id %% 3 = 0 THEN 'https://shop.example/terms' ELSE 'https://shop.example/sale' END,
              '', m.id, m.contact_id, %(blast)s, now(), 0, 0, 0
       FROM messaging_message m WHERE m.blast_id = %(blast)s""",
    # clicks on the first CLICKS links (every 7th a bot), spread over two hours after the launch
    """INSERT INTO shortener_click (link_id, uid, clicked_at, method, user_agent, referrer, ip_prefix, visitor_hash,
           is_bot, bot_reason, is_unique)
       SELECT l.id, 'bw' || l.id, %(start)s + (l.rn %% 7200) * interval '1 second', 'GET', 'bench', '', '', '',
              l.rn %% 7 = 0, CASE WHEN l.rn %% 7 = 0 THEN 'bench' ELSE '' END, l.rn %% 7 <> 0
       FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM shortener_link WHERE blast_id = %(blast)s) l
       WHERE l.rn <= %(clicks)s""",
    """UPDATE shortener_link l SET click_count = CASE WHEN c.is_bot THEN 0 ELSE 1 END,
           unique_click_count = CASE WHEN c.is_bot THEN 0 ELSE 1 END,
           bot_click_count = CASE WHEN c.is_bot THEN 1 ELSE 0 END,
           last_clicked_at = c.clicked_at
       FROM shortener_click c WHERE c.link_id = l.id AND l.blast_id = %(blast)s""",
]


def seed() -> tuple[Organization, Blast]:
    """The bench organization and its blast, made once (about a minute), reused by later runs."""
    org = Organization.objects.filter(name=BENCH_ORG).first()
    if org is not None:
        blast = Blast.objects.filter(organization=org).first()
        if blast is not None and blast.recipient_count == RECIPIENTS:
            click_rollups_rebuild(organization_id=org.pk)  # a seed from before the click rollups: backfilled
            return org, blast
        org.delete()
    started = time.perf_counter()
    start = timezone.now() - timedelta(hours=3)
    with transaction.atomic():
        org = Organization.objects.create(name=BENCH_ORG, quiet_hours_enabled=False)
        line = Line.objects.create(organization=org, phone_number="+15123999999", name="bench", is_active=False)
        blast = Blast.objects.create(
            organization=org,
            line=line,
            name="Bench: 100,000 recipients",
            body="Hi {first_name}, sale: https://shop.example/s",
            status=BlastStatus.COMPLETED,
            launched_at=start,
            completed_at=start + timedelta(minutes=30),
            recipient_count=RECIPIENTS,
        )
        params = {
            "org": org.pk,
            "line": line.pk,
            "blast": blast.pk,
            "n": RECIPIENTS,
            "start": start,
            "clicks": CLICKS,
            "open": ConversationStatus.OPEN,
            "out": Direction.OUTBOUND,
            "delivered": S.DELIVERED,
            "failed": S.FAILED,
            "undelivered": S.UNDELIVERED,
            "blocked": S.BLOCKED,
            "opted_out": OPTED_OUT_CODE,
        }
        with connection.cursor() as cursor:
            for sql in _SEED_SQL:
                cursor.execute(sql, params)
        # the counters post-processing keeps, by its own recount
        blasts_recount(blast_ids=[blast.pk])
        # and the click rollups, by their backfill (the seed wrote links and clicks with SQL)
        click_rollups_rebuild(organization_id=org.pk)
    with connection.cursor() as cursor:
        for table in ("messaging_contact", "messaging_conversation", "messaging_message", "shortener_link"):
            cursor.execute(f"ANALYZE {table}")  # noqa: S608 - our own table names
    blast.refresh_from_db()
    log(f"seeded {RECIPIENTS:,} recipients in {time.perf_counter() - started:.1f} s")
    return org, blast


def member_client(org: Organization) -> Client:
    user, _ = get_user_model().objects.get_or_create(username=USERNAME, defaults={"email": USERNAME})
    user.set_password(PASSWORD)
    user.save()
    Membership.objects.get_or_create(user=user, organization=org, defaults={"role": Role.ADMIN})
    client = Client()
    client.force_login(user)
    return client


def measure(client: Client, url: str, requests: int) -> dict:
    response = client.get(url)  # warm-up (and the check that it works)
    assert response.status_code == 200, (url, response.status_code)
    queries = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        client.get(url)
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    times.sort()
    return {
        "url": url,
        "requests": requests,
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 1),
        "max_ms": round(times[-1], 1),
        "queries": len(queries),
        "bytes": len(response.content),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40, help="timed requests per page (default 40)")
    args = parser.parse_args()
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    org, blast = seed()
    client = member_client(org)
    pages = {
        "blast_report": f"/blasts/{blast.pk}/",
        "blast_report_csv": f"/blasts/{blast.pk}/report.csv",
        "blast_list": "/blasts/",
        "organization_report": "/reports/",
    }
    results: dict = {}
    # cold: every request reads the aggregates (REPORT_CACHE_SECONDS = 0); warm: the page as an open tab
    # polling it, or a second viewer, gets it within REPORT_CACHE_SECONDS of the last read
    for mode, seconds in (("cold", 0), ("warm", reports.REPORT_CACHE_SECONDS)):
        reports.REPORT_CACHE_SECONDS = seconds
        for name, url in pages.items():
            results[f"{name}_{mode}"] = figures = measure(client, url, args.requests)
            log(
                f"{name:20s} {mode}  p50 {figures['p50_ms']:7.1f} ms  p95 {figures['p95_ms']:7.1f} ms"
                f"  max {figures['max_ms']:7.1f} ms  {figures['queries']} queries  {figures['bytes']:,} bytes"
            )
    load = os.getloadavg()
    results["load_average"] = [round(x, 2) for x in load]
    results["recipients"] = RECIPIENTS
    results["clicks"] = CLICKS
    log(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    log(json.dumps(results))


if __name__ == "__main__":
    main()
