"""The inbox's reads for the web app: filters, search, markers and keyset paging over messaging.selectors.

Order: last message newest first, conversations without a message (NULL time) after all others. Paging is
by keyset, each part on the index conv_org_recent (organization, -last_message_at, -id): the dated rows
(time DESC, id DESC), then the undated ones (id DESC). A plain ORDER BY ... NULLS LAST could not walk that
index (it holds NULLs first) and would sort every conversation of the organization on each page; an OFFSET
would read every row before the page. So page 2,000 of 100,000 conversations costs what page 1 does: one
query, two when a page crosses into the undated part. The cursor is the last row's (time, id).

Markers (webapp/models.py says why read state is per person): each row carries, from correlated
subqueries on msg_conversation_recent (a few index entries per row of the page, never the whole table),
the time of its newest inbound message, the direction of its newest answered-or-inbound message and the
person's read marker. Unread: an inbound message newer than the marker, or than the day the person joined
the organization when they never opened it (a new agent does not inherit years of "unread"). Needs reply:
open, and the newest message is the contact's (a reply that is queued or on its way counts as an answer;
a failed one does not).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery

from messaging.models import Conversation, ConversationStatus, Direction, Message
from messaging.selectors import conversations_for
from messaging.status import MessageStatus
from organizations.models import Membership

from .display import local_time
from .models import ConversationRead

PAGE_SIZE = 50
FILTERS = ("all", "open", "closed", "mine", "unassigned")
_DIGITS = re.compile(r"\d")
# Outbound messages that did not reach the contact: they do not answer them.
UNANSWERED = (MessageStatus.FAILED, MessageStatus.UNDELIVERED, MessageStatus.BLOCKED, MessageStatus.CANCELED)


@dataclass(frozen=True, slots=True)
class InboxRow:
    """One conversation as the inbox shows it, every display string made here: the template only places
    them (a row of model instances with filters and `{% url %}` in the template cost about three times
    the page's queries in Python, docs/webapp.md "Measured")."""

    pk: int
    last_message_at: datetime | None
    name: str  # the contact's name, "" when they have none
    phone_number: str
    when: str  # the last message's time in the organization's zone, "" without a message
    when_iso: str
    preview: str
    line: str
    assignee: str  # the assignee's username, "" when nobody
    closed: bool
    unread: bool
    needs_reply: bool


@dataclass
class InboxPage:
    conversations: list[InboxRow]
    next_cursor: str | None
    # The live fingerprint (inbox_stamp) of a first page, from its own rows: no query of its own.
    stamp: str | None = None


@dataclass(frozen=True)
class InboxQuery:
    """What the person asked for: a filter, a line, a search."""

    filter: str = "all"
    line_id: int | None = None
    q: str = ""


def encode_cursor(conversation: Conversation | InboxRow) -> str:
    at = conversation.last_message_at.isoformat() if conversation.last_message_at else ""
    return base64.urlsafe_b64encode(f"{at}|{conversation.pk}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime | None, int] | None:
    """(time, id) of the last row of the previous page; None for a cursor we did not write."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, pk = raw.rsplit("|", 1)
        return (datetime.fromisoformat(at) if at else None), int(pk)
    except (ValueError, UnicodeDecodeError):
        return None


def _search(conversations: QuerySet[Conversation], q: str) -> QuerySet[Conversation]:
    """A number (3+ digits, any punctuation) matches inside contacts' E.164 numbers; words match names."""
    digits = "".join(_DIGITS.findall(q))
    if len(digits) >= 3 and len(digits) >= len(q.replace(" ", "")) // 2:
        return conversations.filter(contact__phone_number__contains=digits)
    for word in q.split():
        conversations = conversations.filter(
            Q(contact__first_name__icontains=word) | Q(contact__last_name__icontains=word)
        )
    return conversations


def _with_markers(conversations: QuerySet[Conversation], user_id: int) -> QuerySet[Conversation]:
    newest = Message.objects.filter(conversation=OuterRef("pk")).order_by("-created_at", "-id")
    return conversations.annotate(
        last_inbound_at=Subquery(newest.filter(direction=Direction.INBOUND).values("created_at")[:1]),
        last_direction=Subquery(
            newest.exclude(direction=Direction.OUTBOUND, status__in=UNANSWERED).values("direction")[:1]
        ),
        read_at=Subquery(
            ConversationRead.objects.filter(conversation=OuterRef("pk"), user_id=user_id).values("read_at")
        ),
    )


def _conversations(*, organization_id: int, user_id: int, query: InboxQuery) -> QuerySet[Conversation]:
    conversations = conversations_for(
        organization=organization_id,  # type: ignore[arg-type]  # an id filters as well as the row
        status={"open": ConversationStatus.OPEN, "closed": ConversationStatus.CLOSED}.get(query.filter),
        line_id=query.line_id,
        assignee_id=user_id if query.filter == "mine" else None,
        unassigned=query.filter == "unassigned",
    )
    q = query.q.strip()
    if q:
        conversations = _search(conversations, q)
    return _with_markers(conversations, user_id)


def _walk(conversations: QuerySet, cursor: str, size: int) -> list:
    """The rows of one page (tuples of _ROW_FIELDS) by keyset, and the first of the next page if there is one."""
    position = decode_cursor(cursor) if cursor else None
    rows: list = []
    if position is None or position[0] is not None:
        dated = conversations.filter(last_message_at__isnull=False)
        if position is not None:
            at, pk = position
            dated = dated.filter(Q(last_message_at__lt=at) | Q(last_message_at=at, pk__lt=pk))
        rows = list(dated.order_by("-last_message_at", "-id")[: size + 1])
    if len(rows) <= size:
        undated = conversations.filter(last_message_at__isnull=True)
        if position is not None and position[0] is None:
            undated = undated.filter(pk__lt=position[1])
        rows += list(undated.order_by("-id")[: size + 1 - len(rows)])
    return rows


def inbox_page(
    *,
    membership: Membership,
    query: InboxQuery = InboxQuery(),  # noqa: B008 - frozen
    cursor: str = "",
    size: int = PAGE_SIZE,
) -> InboxPage:
    """One page of the organization's conversations, newest first, with line, contact and the person's
    markers (`unread`, `needs_reply`): one query, its rows read as tuples (no model instances)."""
    conversations = _conversations(
        organization_id=membership.organization_id, user_id=membership.user_id, query=query
    ).values_list(*_ROW_FIELDS)
    rows = _walk(conversations, cursor, size)
    page, more = rows[:size], len(rows) > size
    zone = ZoneInfo(membership.organization.time_zone)
    shown = [_row(r, zone, membership.created_at) for r in page]
    stamp = None
    if not cursor and size == PAGE_SIZE:
        stamp = _fingerprint([r[: len(_STAMP_FIELDS)] for r in rows])
    return InboxPage(conversations=shown, next_cursor=encode_cursor(shown[-1]) if more else None, stamp=stamp)


def _row(r: tuple, zone: ZoneInfo, joined: datetime) -> InboxRow:
    pk, at, status, assignee_id, last_inbound_at, last_direction, read_at, preview, first, last, phone, *rest = r
    line_name, line_phone, assignee = rest
    when, when_iso = local_time(at, zone)
    return InboxRow(
        pk=pk,
        last_message_at=at,
        name=f"{first} {last}".strip(),
        phone_number=phone,
        when=when,
        when_iso=when_iso,
        preview=preview,
        line=f"{line_name} {line_phone}",
        assignee=assignee or "",
        closed=status == ConversationStatus.CLOSED,
        # Unread: an inbound text newer than the person's marker, or than the day they joined.
        unread=last_inbound_at is not None and last_inbound_at > (read_at or joined),
        needs_reply=status == ConversationStatus.OPEN and last_direction == Direction.INBOUND,
    )


def _fingerprint(rows: list[tuple]) -> str:
    return hashlib.blake2b(repr(rows).encode(), digest_size=12).hexdigest()


_STAMP_FIELDS = ("id", "last_message_at", "status", "assignee_id", "last_inbound_at", "last_direction", "read_at")
# What a row shows: the fingerprint's fields first (the page's stamp is their prefix of each row).
_ROW_FIELDS = (
    *_STAMP_FIELDS,
    "last_message_preview",
    "contact__first_name",
    "contact__last_name",
    "contact__phone_number",
    "line__name",
    "line__phone_number",
    f"assignee__{get_user_model().USERNAME_FIELD}",
)


def inbox_stamp(*, organization_id: int, user_id: int, query: InboxQuery) -> str:
    """A fingerprint of everything the first page shows that can change without this person acting:
    which rows, their order, status, assignee and markers. The live poll answers 304 while it holds.
    One query (the page's own, without its joins), and it also checks the person is still a member: no
    membership, no rows. inbox_page computes the same from its own rows (tests/webapp/test_live.py)."""
    member = Membership.objects.filter(
        user_id=user_id, organization_id=OuterRef("organization_id"), organization__is_active=True
    )
    conversations = _conversations(organization_id=organization_id, user_id=user_id, query=query)
    values = conversations.filter(Exists(member)).values_list(*_STAMP_FIELDS)
    # Both parts of the page order (_walk) in one statement, each on its index: UNION ALL of two LIMITs.
    dated = values.filter(last_message_at__isnull=False).order_by("-last_message_at", "-id")[: PAGE_SIZE + 1]
    undated = values.filter(last_message_at__isnull=True).order_by("-id")[: PAGE_SIZE + 1]
    rows = sorted(dated.union(undated, all=True), key=lambda r: (r[1] is None, r[1] and -r[1].timestamp(), -r[0]))
    return _fingerprint(rows[: PAGE_SIZE + 1])
