"""Partner forwards as rows: the decision to forward, its pending marker, its record, and the sweep that
re-kicks a forward whose task was lost. See docs/recovery.md and docs/integrations.md.

The post-processing drain marks its events done once the dispatcher has published the forward tasks,
so without a row of its own a task lost after that (broker flushed, worker killed holding it) would
forward nothing and nothing would say so. Hence `PendingForward (message, partner)`:

- written by `forwards_decide`, the dispatcher's one statement, in the drain's transaction: only what
  the dispatcher chose is ever marked, so the sweep never forwards a message it decided not to;
- deleted by `forward_record` in the statement that inserts the `ForwardedMessage` (the idempotency
  record: a re-kicked or redelivered task skips what is recorded), or by `forwards_settle` when a task
  that ran to its end left a message unforwarded on purpose (opted out, support user, connection off);
- leased by `kick_after`: `pending_forwards_rekick` takes the rows past it (compare-and-set under
  `FOR UPDATE SKIP LOCKED`), moves it on by the row's age (so a forward that keeps failing is tried
  at ages of about 1, 2, 4, ... minutes, at most hourly) and wakes the task; a task waiting out a
  partner's Retry-After moves it past its countdown first (`forwards_postpone`).

RingCentral replies (`PartnerReply`, pending until their task sends them) carry the same lease
(`partner_replies_rekick`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection

from messaging.models import Message

from ..models import Partner, ReplyState
from ..selectors import RC_CONNECTION_SQL, RC_JOINS_SQL

# The lease a marker starts with and the shortest one a kick gives. A forward task normally runs within
# a second of the drain's commit and holds its group for ~50 partner calls (≤ ~10 s); the default queue
# it shares with NICE's long polls can hold it back for tens of seconds more. 60 s is past both, so a
# re-kick almost always means a lost task; one that races a live task costs a task that finds its
# messages recorded (the per-conversation lock orders the two).
LEASE_SECONDS = 60
# The longest lease: a forward failing for hours (partner down, revoked token) is tried hourly.
MAX_LEASE_SECONDS = 3600
# Rows re-kicked per beat pass: a pass is one UPDATE and one lookup, well under a second.
REKICK_BATCH = 500
# Message ids per task. A conversation's messages stay in one task when they fit (they are forwarded
# in order under one lock); 50 keeps a task's partner calls (one per message, ~50-200 ms each) under ~10 s, so a
# 429's retry or a worker restart redoes little, while a burst of 1000 events is still ~20 publishes.
TASK_GROUP_SIZE = 50


def groups_by_conversation(rows: list[tuple[int, int]]) -> list[list[int]]:
    """(message id, conversation id) rows sorted by conversation → id lists of at most TASK_GROUP_SIZE.
    Whole conversations are packed together; one longer than TASK_GROUP_SIZE is cut into full groups."""
    by_conversation: dict[int, list[int]] = {}
    for message_id, conversation_id in rows:
        by_conversation.setdefault(conversation_id, []).append(message_id)
    groups: list[list[int]] = []
    current: list[int] = []
    for ids in by_conversation.values():
        if current and len(current) + len(ids) > TASK_GROUP_SIZE:
            groups.append(current)
            current = []
        for i in range(0, len(ids), TASK_GROUP_SIZE):
            chunk = ids[i : i + TASK_GROUP_SIZE]
            if len(chunk) == TASK_GROUP_SIZE:
                groups.append(chunk)
            else:
                current.extend(chunk)
    if current:
        groups.append(current)
    return groups


# Which of a batch's messages concern a partner: (id, conversation id, to NICE?, RingCentral connection),
# and, in the same statement, their pending markers. The events carry their message's organization (the
# status path writes it into the payload), so the candidates are first cut down to organizations with
# an active connection (two tiny tables): a batch of tenants without integrations — nearly every batch —
# costs no message lookup and inserts nothing (PostgreSQL skips the outer side of a hash join whose
# inner side is empty). Measured by bench/bench_integrations.py.
_DECIDE_SQL = f"""
WITH orgs AS (
    SELECT organization_id FROM integrations_niceconnection WHERE is_active
    UNION SELECT organization_id FROM integrations_ringcentralconnection WHERE is_active
), cand AS (
    SELECT c.id FROM unnest(%(ids)s::bigint[], %(orgs)s::bigint[]) AS c(id, org)
    WHERE c.org IS NULL OR c.org IN (SELECT organization_id FROM orgs)
), hit AS (
    SELECT m.id, m.conversation_id, (m.direction = 'in' AND nc.id IS NOT NULL) AS nice, {RC_CONNECTION_SQL} AS rc
    FROM cand JOIN messaging_message m ON m.id = cand.id
    LEFT JOIN integrations_niceconnection nc ON nc.line_id = m.line_id AND nc.is_active
    {RC_JOINS_SQL}
    WHERE ((m.direction = 'in' AND nc.id IS NOT NULL) OR {RC_CONNECTION_SQL} IS NOT NULL)
), marked AS (
    INSERT INTO integrations_pendingforward (message_id, partner, kick_after)
    SELECT id, %(nice)s, now() + make_interval(secs => %(lease)s) FROM hit WHERE nice
    UNION ALL SELECT id, %(rc)s, now() + make_interval(secs => %(lease)s) FROM hit WHERE rc IS NOT NULL
    ON CONFLICT (message_id, partner) DO NOTHING
)
SELECT id, conversation_id, nice, rc FROM hit ORDER BY conversation_id, id
"""  # noqa: S608 — fragments are module constants; values bound


def forwards_decide(*, messages: list[tuple[int, int | None]]) -> list[tuple[int, int, bool, int | None]]:
    """The dispatcher's decision for a batch (`messages`: (message id, its organization id or None when
    unknown)), with a pending marker per message and partner chosen. One statement; call it inside the
    transaction that marks the events done, so the markers and the events' end commit together."""
    if not messages:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            _DECIDE_SQL,
            {
                "ids": [m for m, _ in messages],
                "orgs": [o for _, o in messages],
                "nice": Partner.NICE.value,
                "rc": Partner.RINGCENTRAL.value,
                "lease": LEASE_SECONDS,
            },
        )
        return cursor.fetchall()


_RECORD_SQL = """
WITH done AS (DELETE FROM integrations_pendingforward WHERE message_id = %(message)s AND partner = %(partner)s)
INSERT INTO integrations_forwardedmessage (message_id, partner, external_id, created_at)
VALUES (%(message)s, %(partner)s, %(external)s, now())
"""


def forward_record(*, message_id: int, partner: Partner, external_id: str) -> None:
    """The partner has the message: its ForwardedMessage in, its marker out, in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(_RECORD_SQL, {"message": message_id, "partner": partner.value, "external": external_id})


def forwards_settle(*, partner: Partner, message_ids: list[int]) -> int:
    """A forward task ran to its end over these messages: what it left unforwarded it left on purpose
    (or another task has it recorded), so no marker stays for the sweep. Returns the markers dropped."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM integrations_pendingforward WHERE message_id = ANY(%s::bigint[]) AND partner = %s",
            [list(message_ids), partner.value],
        )
        return cursor.rowcount


def forwards_postpone(*, partner: Partner, message_ids: list[int], seconds: float) -> None:
    """A task retries in `seconds` (a partner's Retry-After): no re-kick before that retry is due."""
    with connection.cursor() as cursor:
        cursor.execute(
            """UPDATE integrations_pendingforward
               SET kick_after = GREATEST(kick_after, now() + make_interval(secs => %s))
               WHERE message_id = ANY(%s::bigint[]) AND partner = %s""",
            [seconds + LEASE_SECONDS, list(message_ids), partner.value],
        )


# The next lease of a kicked row: its age (so kicks come at ages of about 1, 2, 4, 8 ... minutes),
# between LEASE_SECONDS and MAX_LEASE_SECONDS.
_NEXT_LEASE = (
    "now() + LEAST(GREATEST(now() - {created}, make_interval(secs => %(lease)s)), make_interval(secs => %(cap)s))"
)

_REKICK_FORWARDS_SQL = f"""
UPDATE integrations_pendingforward p SET kick_after = {_NEXT_LEASE.format(created="p.created_at")}
WHERE p.id IN (
    SELECT id FROM integrations_pendingforward WHERE kick_after < now()
    ORDER BY kick_after LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING p.partner, p.message_id
"""  # noqa: S608 — fragments are module constants; values bound

_REKICK_REPLIES_SQL = f"""
UPDATE integrations_partnerreply r SET kick_after = {_NEXT_LEASE.format(created="r.created_at")}
WHERE r.id IN (
    SELECT id FROM integrations_partnerreply
    WHERE state = %(pending)s AND partner = %(partner)s AND (kick_after IS NULL OR kick_after < now())
    ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING r.id
"""  # noqa: S608 — fragments are module constants; values bound


@dataclass
class Rekick:
    """Groups of message ids to wake a forward task for, per partner."""

    nice: list[list[int]] = field(default_factory=list)
    ringcentral: list[list[int]] = field(default_factory=list)


def pending_forwards_rekick(*, limit: int = REKICK_BATCH) -> Rekick:
    """Beat: markers past their lease, moved on (compare-and-set) and grouped by conversation for the
    tasks to wake. The task's ForwardedMessage check under the conversation's lock decides what is
    still to forward, so a wake-up that races a live task forwards nothing twice."""
    with connection.cursor() as cursor:
        cursor.execute(_REKICK_FORWARDS_SQL, {"lease": LEASE_SECONDS, "cap": MAX_LEASE_SECONDS, "limit": limit})
        due = cursor.fetchall()
    if not due:
        return Rekick()
    conversation_of = dict(
        Message.objects.filter(pk__in={m for _, m in due}).values_list("id", "conversation_id").order_by()
    )
    by_partner: dict[str, list[tuple[int, int]]] = {Partner.NICE: [], Partner.RINGCENTRAL: []}
    for partner, message_id in sorted(due, key=lambda r: (conversation_of.get(r[1], 0), r[1])):
        if message_id in conversation_of:  # a message deleted since: its marker went with it (cascade)
            by_partner[partner].append((message_id, conversation_of[message_id]))
    return Rekick(
        nice=groups_by_conversation(by_partner[Partner.NICE]),
        ringcentral=groups_by_conversation(by_partner[Partner.RINGCENTRAL]),
    )


def partner_replies_rekick(*, limit: int = REKICK_BATCH) -> list[int]:
    """Beat: pending RingCentral replies past their lease (their task was lost or gave up), moved on."""
    with connection.cursor() as cursor:
        cursor.execute(
            _REKICK_REPLIES_SQL,
            {
                "pending": ReplyState.PENDING.value,
                "partner": Partner.RINGCENTRAL.value,
                "lease": LEASE_SECONDS,
                "cap": MAX_LEASE_SECONDS,
                "limit": limit,
            },
        )
        return sorted(r[0] for r in cursor.fetchall())
