"""Partner integrations benchmark: what the post-processing hook `integrations_dispatch` costs the drain.

    flock /tmp/parley-bench.lock .venv/bin/python bench/bench_integrations.py [--background 200000] [--batch 1000]

Seeds `--background` messages (COPY-free: one INSERT ... SELECT generate_series) on lines of which some
have NICE / RingCentral connections, then times the processor on batches of `--batch` message ids
(the drain's BATCH_SIZE), median of `--rounds`:
- `none`: the batch's messages belong to an organization without any connection (what nearly every
  drain batch pays);
- `mixed`: a third on a NICE line, a third on a RingCentral line, a third on a line without any
  (the payload then names the integrated organization for all of them: the message lookup runs);
in-transaction cost (the one query + grouping, rolled back: no publish) and with the after-commit
publish of its tasks. Ends with one JSON line holding every figure. It leaves its rows behind: run it
against a scratch database (DATABASE_URL=.../parley_bench_integ, migrated first).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import django_setup  # noqa: E402

django_setup()

from django.db import connection, transaction  # noqa: E402

from integrations.models import NiceConnection, RingCentralConnection  # noqa: E402
from integrations.processors import integrations_dispatch  # noqa: E402
from messaging.models import Contact, Conversation, Line  # noqa: E402
from messaging.status import MessageStatus  # noqa: E402
from organizations.models import Organization  # noqa: E402
from postprocessing.registry import EventRow  # noqa: E402


class _Rollback(Exception):
    pass


def seed(background: int) -> tuple[int, int, dict[str, list[int]]]:
    org = Organization.objects.create(name="bench-integrations")
    lines = {}
    for kind in ("nice", "rc", "plain"):
        n = Line.objects.filter(phone_number__startswith="+1999").count()
        lines[kind] = Line.objects.create(organization=org, phone_number=f"+1999{kind[:1]}{n:06d}", name=kind)
    NiceConnection.objects.create(
        organization=org,
        line=lines["nice"],
        base_url="http://127.0.0.1:9",
        access_token="x",  # noqa: S106
        point_of_contact="p",
    )
    RingCentralConnection.objects.create(
        organization=org,
        line=lines["rc"],
        base_url="http://127.0.0.1:9",
        bot_token="x",  # noqa: S106
        bot_creator_id="b",
    )
    ids: dict[str, list[int]] = {}
    per = background // 3
    # "plain" lines belong to another organization, with no connection: most tenants
    other = Organization.objects.create(name="bench-integrations-plain")
    Line.objects.filter(pk=lines["plain"].pk).update(organization=other)
    for kind, line in lines.items():
        org_id = other.pk if kind == "plain" else org.pk
        contact = Contact.objects.create(organization_id=org_id, phone_number=f"+1888{line.pk:07d}")
        conv = Conversation.objects.create(organization_id=org_id, line=line, contact=contact)
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO messaging_message (organization_id, line_id, conversation_id, contact_id, direction, body,
                    rendered_body, media, status, segments, encoding, carrier_batch_id, carrier_recipient,
                    carrier_status, error_code, error_reason, send_attempts, send_batch_ref, created_at)
                SELECT %s, %s, %s, %s, 'in', 'hello', '', '[]', %s, 1, '', '', '', '', '', '', 0, '', now()
                FROM generate_series(1, %s) RETURNING id
                """,
                [org_id, line.pk, conv.pk, contact.pk, MessageStatus.RECEIVED, per],
            )
            ids[kind] = [r[0] for r in cursor.fetchall()]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE messaging_message")
    return org.pk, other.pk, ids


def time_batch(message_ids: list[int], org_id: int, *, publish: bool) -> float:
    # the payload the status path writes (the processor uses its organization_id)
    payload = {"status": "received", "organization_id": org_id}
    events = [EventRow(i, "message.received", mid, payload) for i, mid in enumerate(message_ids)]
    start = time.perf_counter()
    try:
        with transaction.atomic():
            integrations_dispatch(events)
            if not publish:
                raise _Rollback
    except _Rollback:
        pass
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--background", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    org_id, plain_org_id, ids = seed(args.background)
    third = args.batch // 3
    # (ids, organization id in the events' payload)
    batches = {
        "none": lambda r: (ids["plain"][r * args.batch : (r + 1) * args.batch], plain_org_id),
        "mixed": lambda r: (
            ids["nice"][r * third : (r + 1) * third]
            + ids["rc"][r * third : (r + 1) * third]
            + ids["plain"][r * third : (r + 1) * third],
            org_id,
        ),
    }
    figures: dict[str, float] = {"background_messages": args.background, "batch": args.batch}
    for name, pick in batches.items():
        for publish in (False, True):
            times = [time_batch(*pick(r), publish=publish) for r in range(args.rounds)]
            key = f"{name}_{'with_publish' if publish else 'in_tx'}_ms_median"
            figures[key] = round(statistics.median(times), 2)
            print(f"{key}: {figures[key]} (rounds {', '.join(f'{t:.1f}' for t in times)})", flush=True)
    from tests.worker import purge_queues

    purge_queues()  # the published tasks point at the bench's rows: nobody should run them
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
