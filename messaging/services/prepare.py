"""Queue-time preparation (queue `prepare`): everything that is not the carrier call. The three flows:
a blast chunk (`blast_prepare_chunk`), single conversation messages (`messages_prepare`) and scheduled
messages whose time has come (`messages_release_due`). Their parts live beside them: quiet hours
(quiet_hours.py), conversations get-or-create (conversations.py), carrier batches (grouping.py), the
link step (messaging/links.py).

Set-based by construction: a blast chunk of up to 1000 recipients costs a fixed handful of statements
(blast row, recipients + opt-outs in one query, id reservation, conversations get-or-create in one
statement, the shortener's one INSERT, messages in one INSERT ... SELECT FROM unnest, two outbox
inserts, the opted-out counter), whatever the chunk's size. See docs/send-pipeline.md.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from functools import partial

from django.db import connection, transaction
from django.utils import timezone

from config import sql
from config.wakeup import wake_on_commit_call

from .. import cache, segments
from ..links import LinkItem, link_step
from ..status import MessageStatus as S
from ..status import sql_literals
from .conversations import conversations_get_or_create
from .grouping import SendGroup, SendRow, group_for_send, send_row_columns
from .quiet_hours import quiet_release, zone_of
from .status import StatusUpdate, events_record_for_new_messages, messages_apply_statuses
from .templates import MAX_PARAM_VALUE, URL_RE, assemble, carrier_template, contact_fields, slot_values

log = logging.getLogger(__name__)

OPTED_OUT_CODE = "opted_out"
ARCHIVED_CODE = "contact_archived"  # a blast recipient deleted (archived) after the blast was created
# Joins one message's slot values into the one text the shortener scans: whitespace, so never part of a
# URL it finds; a value holding it (never typed in practice) is sent without shortening.
_LINK_SEP = "\n\x1e\n"


# ---------------------------------------------------------------------------------------------- helpers
def _shortener():
    """The link step: messaging's port (messaging/links.py), filled by the shortener."""
    return LinkItem, link_step().shorten_for_messages


def _reserve_ids(n: int) -> list[int]:
    """Message ids taken from the table's sequence up front: the shortener needs them before the insert."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('messaging_message', 'id')) FROM generate_series(1, %s)", [n]
        )
        return [r[0] for r in cursor.fetchall()]


_INSERT_SQL = """
INSERT INTO messaging_message (
    id, organization_id, line_id, blast_id, sent_by_id, direction, body, media, send_attempts, created_at,
    prepared_at, status_updated_at, carrier_batch_id, carrier_status, send_batch_ref,
    conversation_id, contact_id, rendered_body, status, segments, encoding, carrier_recipient, client_reference,
    error_code, error_reason, send_at, send_params
)
SELECT t.id, %s, %s, %s, %s, 'out', %s, '[]'::jsonb, 0, %s, %s, %s, '', '', '',
       t.conversation_id, t.contact_id, t.rendered_body, t.status, t.segments, t.encoding, t.recipient, t.cref,
       t.error_code, t.error_reason, t.send_at, t.send_params
FROM unnest(
    %b::bigint[], %b::bigint[], %b::bigint[], %b::text[], %b::text[], %b::smallint[], %b::text[],
    %b::text[], %b::text[], %b::text[], %b::text[], %b::timestamptz[], %b::jsonb[]
) AS t(id, conversation_id, contact_id, rendered_body, status, segments, encoding, recipient, cref,
       error_code, error_reason, send_at, send_params)
ON CONFLICT (client_reference) DO NOTHING
RETURNING id
"""


# ------------------------------------------------------------------------------------------ blast chunks
_RECIPIENTS_SQL = """
SELECT c.id, c.phone_number, c.first_name, c.last_name, c.email, c.custom_fields, (o.id IS NOT NULL),
       (c.archived_at IS NOT NULL)
FROM messaging_blastrecipient br
JOIN messaging_contact c ON c.id = br.contact_id
LEFT JOIN messaging_optout o ON o.organization_id = c.organization_id AND o.phone_number = c.phone_number
WHERE br.blast_id = %s AND br.id BETWEEN %s AND %s
  -- Already prepared (a redelivered chunk)? Looked up by the unique client_reference: a (blast_id,
  -- contact_id) probe let the planner, with statistics stale during a blast, AND in the whole
  -- blast's msg_blast entries per recipient (measured 0.4 s per chunk late in a 20k blast).
  AND NOT EXISTS (
      SELECT 1 FROM messaging_message m WHERE m.client_reference = 'bl:' || br.blast_id || ':' || br.contact_id
  )
ORDER BY br.id
"""


def blast_prepare_chunk(*, blast_id: int, first_recipient_id: int, last_recipient_id: int) -> list[SendGroup]:
    """Create, render and classify the messages of one chunk of a blast's audience.

    Idempotent: recipients that already have a message of this blast are skipped (and the unique
    client_reference "bl:<blast>:<contact>" backs that up), so a redelivered task prepares nothing twice.
    Returns the carrier groups to enqueue once the transaction commits.
    """
    from ..models import BlastStatus

    now = timezone.now()
    with transaction.atomic():
        # FOR SHARE: a concurrent cancel (UPDATE of the blast) waits for this chunk and then cancels
        # what it inserted, instead of missing it.
        blast = _blast_for_share(blast_id)
        if blast is None or blast[0] != BlastStatus.SENDING:
            return []
        # The blast's author is who caused its messages (sent_by): the partner integrations decide on
        # it (a support user's blast is never mirrored into RingCentral), as for a single message.
        _status, org_id, line_id, body, author_id = blast
        recipients = sql.execute(_RECIPIENTS_SQL, [blast_id, first_recipient_id, last_recipient_id])
        if not recipients:
            return []
        org = cache.org_info(org_id)
        assert org is not None, f"organization {org_id} of blast {blast_id} is gone"
        template = carrier_template(body)
        ids = _reserve_ids(len(recipients))
        conversations = conversations_get_or_create(
            organization_id=org_id, line_id=line_id, contact_ids=[r[0] for r in recipients]
        )

        # Per recipient: fields, quiet hours, links. Pure Python over the chunk, no queries.
        per: list[dict] = []
        zone_cache: dict[str, datetime | None] = {}
        has_quiet_hours = org.quiet_hours_enabled
        link_items = []
        LinkItem, shorten = _shortener() if template.slots else (None, None)
        for mid, (contact_id, phone, first, last, email, custom, opted_out, archived) in zip(
            ids, recipients, strict=True
        ):
            if isinstance(custom, str):
                custom = json.loads(custom)
            values = slot_values(template, contact_fields(first, last, email, phone, custom))
            send_at = None
            shorten_slots: list[str] = []
            if not opted_out and not archived:
                if has_quiet_hours:
                    tz_name = zone_of(phone) or org.time_zone
                    if tz_name not in zone_cache:
                        zone_cache[tz_name] = quiet_release(now, tz_name, org.quiet_hours_start, org.quiet_hours_end)
                    send_at = zone_cache[tz_name]
                if LinkItem is not None:
                    # Links are found in the rendered values: the template's URLs and any URL a field
                    # value brings (a custom field holding a link). The shortener replaces URL spans only,
                    # so the text around a link is kept as it is.
                    shorten_slots = [
                        s.name
                        for s in template.slots
                        if (s.is_link or URL_RE.search(values[s.name])) and _LINK_SEP not in values[s.name]
                    ]
                    if shorten_slots:
                        link_items.append(
                            LinkItem(
                                message_id=mid,
                                contact_id=contact_id,
                                blast_id=blast_id,
                                body=_LINK_SEP.join(values[n] for n in shorten_slots),
                            )
                        )
            per.append(
                {
                    "id": mid,
                    "contact_id": contact_id,
                    "phone": phone,
                    "opted_out": opted_out,
                    "archived": archived,
                    "values": values,
                    "send_at": send_at,
                    "shorten_slots": shorten_slots,
                }
            )
        if link_items and shorten is not None:
            shortened = shorten(organization_id=org_id, items=link_items)
            for item in per:
                short = shortened.get(item["id"])
                if short is not None:
                    pieces = short.split(_LINK_SEP)
                    for name, piece in zip(item["shorten_slots"], pieces, strict=True):
                        item["values"][name] = piece

        cols: dict[str, list] = {
            k: []
            for k in (
                "id",
                "conv",
                "contact",
                "rendered",
                "status",
                "segments",
                "encoding",
                "recipient",
                "cref",
                "ecode",
                "ereason",
                "send_at",
                "params",
            )
        }
        for item in per:
            values = item["values"]
            rendered = assemble(template, values)
            params_ok = template.usable and all(len(v) <= MAX_PARAM_VALUE for v in values.values())
            if item["opted_out"]:
                status, ecode, ereason = S.BLOCKED, OPTED_OUT_CODE, "The recipient has opted out."
            elif item["archived"]:
                # Deleted after the audience was fixed: never texted again, counted as blocked.
                status, ecode, ereason = S.BLOCKED, ARCHIVED_CODE, "The contact was deleted."
            elif item["send_at"] is not None:
                status, ecode, ereason = S.SCHEDULED, "", ""
            else:
                status, ecode, ereason = S.PREPARED, "", ""
            info = segments.count(rendered)
            cols["id"].append(item["id"])
            cols["conv"].append(conversations[item["contact_id"]])
            cols["contact"].append(item["contact_id"])
            cols["rendered"].append(rendered)
            cols["status"].append(status)
            cols["segments"].append(info.segments)
            cols["encoding"].append(info.encoding)
            cols["recipient"].append(item["phone"])
            cols["cref"].append(f"bl:{blast_id}:{item['contact_id']}")
            cols["ecode"].append(ecode)
            cols["ereason"].append(ereason)
            cols["send_at"].append(item["send_at"])
            cols["params"].append(json.dumps(values) if params_ok else None)
        inserted = {
            r[0]
            for r in sql.execute(
                _INSERT_SQL,
                [
                    org_id,
                    line_id,
                    blast_id,
                    author_id,
                    body,
                    now,
                    now,
                    now,
                    cols["id"],
                    cols["conv"],
                    cols["contact"],
                    cols["rendered"],
                    cols["status"],
                    cols["segments"],
                    cols["encoding"],
                    cols["recipient"],
                    cols["cref"],
                    cols["ecode"],
                    cols["ereason"],
                    cols["send_at"],
                    cols["params"],
                ],
            )
        }
        new_ids = [i for i in cols["id"] if i in inserted]
        blocked = [i for i, st in zip(cols["id"], cols["status"], strict=True) if st == S.BLOCKED and i in inserted]
        events_record_for_new_messages(message_ids=new_ids, status=S.QUEUED)
        if blocked:
            events_record_for_new_messages(message_ids=blocked, status=S.BLOCKED)
            # The counter is recounted after commit, outside this transaction: updating the blast row here
            # would upgrade our FOR SHARE lock and deadlock two chunks of the same blast. A failed recount
            # is logged: the blast processor recounts opted_out_count with the other counters.
            wake_on_commit_call(partial(blast_recount_opted_out, blast_id=blast_id))
        rows = [
            SendRow(mid, line_id, blast_id, params is not None, rendered, recipient, segs)
            for mid, st, params, rendered, recipient, segs in zip(
                cols["id"],
                cols["status"],
                cols["params"],
                cols["rendered"],
                cols["recipient"],
                cols["segments"],
                strict=True,
            )
            if st == S.PREPARED and mid in inserted
        ]
        return group_for_send(rows)


def blast_recount_opted_out(*, blast_id: int) -> None:
    """Blast.opted_out_count from its blocked messages: exact and idempotent (a redelivered chunk adds nothing)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE messaging_blast SET opted_out_count = (
                SELECT count(*) FROM messaging_message
                WHERE blast_id = %s AND status = {sql_literals(S.BLOCKED)} AND error_code = %s
            ) WHERE id = %s
            """,  # noqa: S608 — statuses via sql_literals, fragments and table names are module constants; values bound
            [blast_id, OPTED_OUT_CODE, blast_id],
        )


def _blast_for_share(blast_id: int):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status, organization_id, line_id, body, created_by_id FROM messaging_blast WHERE id = %s FOR SHARE",
            [blast_id],
        )
        return cursor.fetchone()


# ------------------------------------------------------------------------- single messages (conversations)
_QUEUED_SQL = f"""
SELECT m.id, m.organization_id, m.line_id, m.blast_id, m.body, m.send_at, c.phone_number, (o.id IS NOT NULL)
FROM messaging_message m
JOIN messaging_contact c ON c.id = m.contact_id
LEFT JOIN messaging_optout o ON o.organization_id = m.organization_id AND o.phone_number = c.phone_number
WHERE m.id = ANY(%b::bigint[]) AND m.status = {sql_literals(S.QUEUED)} AND m.direction = 'out'
ORDER BY m.id
"""  # noqa: S608 — statuses via sql_literals, fragments and table names are module constants; values bound

_FIELDS_SQL = f"""
UPDATE messaging_message m SET rendered_body = t.rendered_body, segments = t.segments, encoding = t.encoding,
       carrier_recipient = t.recipient, prepared_at = %s
FROM unnest(%b::bigint[], %b::text[], %b::smallint[], %b::text[], %b::text[])
     AS t(id, rendered_body, segments, encoding, recipient)
WHERE m.id = t.id AND m.status = {sql_literals(S.QUEUED)}
"""  # noqa: S608 — statuses via sql_literals, fragments and table names are module constants; values bound


def messages_prepare(*, message_ids: list[int], check_opt_out: bool = True) -> list[SendGroup]:
    """Prepare queued outbound messages written one by one (conversation messages, auto-replies).

    check_opt_out=False is for auto-replies to an inbound text (the STOP confirmation goes to a number
    that has just opted out; HELP answers are allowed too). Returns the carrier groups to enqueue.
    """
    now = timezone.now()
    with transaction.atomic():
        rows = sql.execute(_QUEUED_SQL, [list(message_ids)])
        if not rows:
            return []
        bodies = {r[0]: r[4] for r in rows}
        by_org: dict[int, list] = {}
        LinkItem, shorten = _shortener()
        for mid, org_id, _line, _blast, body, *_ in rows:
            if URL_RE.search(body):
                by_org.setdefault(org_id, []).append(LinkItem(message_id=mid, contact_id=0, blast_id=None, body=body))
        for org_id, items in by_org.items():
            bodies.update(shorten(organization_id=org_id, items=items))
        updates: list[StatusUpdate] = []
        cols: dict[str, list] = {k: [] for k in ("id", "rendered", "segments", "encoding", "recipient")}
        prepared: list[SendRow] = []
        for mid, _org, line_id, blast_id, _body, send_at, phone, opted_out in rows:
            rendered = bodies[mid]
            info = segments.count(rendered)
            cols["id"].append(mid)
            cols["rendered"].append(rendered)
            cols["segments"].append(info.segments)
            cols["encoding"].append(info.encoding)
            cols["recipient"].append(phone)
            if opted_out and check_opt_out:
                updates.append(
                    StatusUpdate(
                        mid, S.BLOCKED, at=now, error_code=OPTED_OUT_CODE, error_reason="The recipient has opted out."
                    )
                )
            elif send_at is not None and send_at > now:
                updates.append(StatusUpdate(mid, S.SCHEDULED, at=now))
            else:
                updates.append(StatusUpdate(mid, S.PREPARED, at=now))
                prepared.append(SendRow(mid, line_id, blast_id, False, rendered, phone, info.segments))
        sql.execute(
            _FIELDS_SQL, [now, cols["id"], cols["rendered"], cols["segments"], cols["encoding"], cols["recipient"]]
        )
        changed = messages_apply_statuses(updates=updates)
        return group_for_send([p for p in prepared if changed.get(p.id) == S.PREPARED])


# ------------------------------------------------------------------------------------------ release due
# The opt-out is checked again at release: a contact may opt out between scheduling (a send time, or
# quiet hours) and the send (one probe of uniq_optout per due message).
_DUE_SQL = f"""
SELECT {send_row_columns("m")},
       EXISTS (SELECT 1 FROM messaging_optout o
               WHERE o.organization_id = m.organization_id AND o.phone_number = m.carrier_recipient)
FROM messaging_message m
WHERE m.id IN (SELECT f.message_id FROM messaging_message_inflight f
               WHERE f.status = {sql_literals(S.SCHEDULED)} AND f.send_at <= %(due)s)
  AND m.status = {sql_literals(S.SCHEDULED)} AND m.send_at <= %(due)s ORDER BY m.id LIMIT %(limit)s
"""  # noqa: S608 — statuses via sql_literals, fragments and table names are module constants; values bound

# How many due messages one release pass moves: 20 carrier batches, a few hundred ms of work; the
# beat runs every few seconds, so a large backlog drains at ≥ 5,000 messages/s.
RELEASE_LIMIT = 20_000


def messages_release_due(*, now: datetime | None = None) -> list[SendGroup]:
    """Scheduled messages whose time has come → prepared (one status statement), grouped for sending;
    those whose recipient opted out meanwhile → blocked."""
    now = now or timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_DUE_SQL, {"due": now, "limit": RELEASE_LIMIT})
            rows = cursor.fetchall()
        if not rows:
            return []
        changed = messages_apply_statuses(
            updates=[
                StatusUpdate(
                    r[0], S.BLOCKED, at=now, error_code=OPTED_OUT_CODE, error_reason="The recipient has opted out."
                )
                if r[7]
                else StatusUpdate(r[0], S.PREPARED, at=now)
                for r in rows
            ]
        )
        released = [SendRow(*r[:7]) for r in rows if changed.get(r[0]) == S.PREPARED]
        with connection.cursor() as cursor:  # fresh for the stale-prepared sweep
            cursor.execute(
                "UPDATE messaging_message SET prepared_at = %s WHERE id = ANY(%s::bigint[])",
                [now, [r[0] for r in released]],
            )
        return group_for_send(released)
