"""The inbox's reads for the web app: filters, search and keyset paging over messaging.selectors.

Order: last message newest first, conversations without a message (NULL time) after all others. Paging is
by keyset, each part on the index conv_org_recent (organization, -last_message_at, -id): the dated rows
(time DESC, id DESC), then the undated ones (id DESC). A plain ORDER BY ... NULLS LAST could not walk that
index (it holds NULLs first) and would sort every conversation of the organization on each page; an OFFSET
would read every row before the page. So page 2,000 of 100,000 conversations costs what page 1 does: one
query, two when a page crosses into the undated part. The cursor is the last row's (time, id).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from messaging.models import Conversation, ConversationStatus
from messaging.selectors import conversations_for
from organizations.models import Organization

PAGE_SIZE = 50
FILTERS = ("all", "open", "closed", "mine", "unassigned")
_DIGITS = re.compile(r"\d")


@dataclass
class InboxPage:
    conversations: list[Conversation]
    next_cursor: str | None


def encode_cursor(conversation: Conversation) -> str:
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


def inbox_page(
    *, organization: Organization, user, filter: str = "all", q: str = "", cursor: str = "", size: int = PAGE_SIZE
) -> InboxPage:
    """One page of the organization's conversations, newest first, with line and contact (one query)."""
    conversations = conversations_for(
        organization=organization,
        status={"open": ConversationStatus.OPEN, "closed": ConversationStatus.CLOSED}.get(filter),
        assignee_id=user.pk if filter == "mine" else None,
        unassigned=filter == "unassigned",
    )
    q = q.strip()
    if q:
        conversations = _search(conversations, q)
    position = decode_cursor(cursor) if cursor else None
    rows: list[Conversation] = []
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
    page = rows[:size]
    return InboxPage(conversations=page, next_cursor=encode_cursor(page[-1]) if len(rows) > size else None)
