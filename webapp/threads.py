"""A thread's messages for the web app: the newest page, older pages by keyset, and the live part.

Order is the index msg_conversation_recent's (conversation, -created_at, -id). A page is the newest
THREAD_MESSAGES messages, shown oldest first; "Older messages" asks for the ones before the oldest shown,
by its id (`before`), whose time the query looks up itself: `created_at <= its time AND (created_at < its
time OR id < it)` — the first part bounds the index scan, so a page deep in a long thread costs what the
first does (one query, no OFFSET). The live poll re-renders the messages from the oldest one the page
opened with (`from`) onward, so older pages loaded above it are never dropped and nothing between them is
skipped while new texts arrive.

Rows are built here with every display string (time in the organization's zone, status name, carrier
reason, truncated link targets): the template places them, it does not compute them.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet, Subquery
from django.utils.text import Truncator

from messaging.models import Conversation, Message
from messaging.selectors import conversation_messages
from messaging.status import MessageStatus
from shortener.selectors import links_of_messages

from .display import local_time

# Messages a page shows: a day of a busy conversation, and a page that renders in a few ms.
THREAD_MESSAGES = 100
# The live part re-renders at most this many (a tab left open on a conversation that keeps going): past it,
# the newest LIVE_MESSAGES, and a reload shows the paging again.
LIVE_MESSAGES = 500
_FIELDS = ("id", "direction", "status", "body", "rendered_body", "media", "created_at", "error_code", "error_reason")
_LINK_TARGET_CHARS = 48


@dataclass(frozen=True, slots=True)
class LinkRow:
    code: str
    target: str  # the target URL, cut to _LINK_TARGET_CHARS
    clicks: int
    unique: int | None  # unique clicks, only when they differ from clicks


@dataclass(frozen=True, slots=True)
class MessageRow:
    pk: int
    direction: str
    status: str
    status_label: str
    body: str
    when: str
    when_iso: str
    reason: str  # the carrier's reason and code, "" when none
    media: list[dict]
    links: list[LinkRow]


@dataclass
class MessagePage:
    messages: list[MessageRow]  # oldest first
    older: int | None  # the id to ask "before" for the previous page; None at the thread's start


def _time_of(conversation: Conversation, message_id: int) -> Subquery:
    # A message of another conversation is no anchor: NULL, and so no rows.
    return Subquery(Message.objects.filter(pk=message_id, conversation=conversation).values("created_at"))


def _before(messages: QuerySet[Message], conversation: Conversation, message_id: int) -> QuerySet[Message]:
    at = _time_of(conversation, message_id)
    return messages.filter(Q(created_at__lt=at) | Q(id__lt=message_id), created_at__lte=at)


def _from(messages: QuerySet[Message], conversation: Conversation, message_id: int) -> QuerySet[Message]:
    at = _time_of(conversation, message_id)
    return messages.filter(Q(created_at__gt=at) | Q(id__gte=message_id), created_at__gte=at)


def thread_messages(
    *, conversation: Conversation, time_zone: str, before: int | None = None, since: int | None = None
) -> MessagePage:
    """The newest page (or the page before message `before`, or every message from `since` on, up to
    LIVE_MESSAGES), oldest first, with their short links: two queries."""
    messages = conversation_messages(conversation=conversation).order_by("-created_at", "-id")
    size = THREAD_MESSAGES
    if before is not None:
        messages = _before(messages, conversation, before)
    elif since is not None:
        messages, size = _from(messages, conversation, since), LIVE_MESSAGES
    rows = list(messages.values_list(*_FIELDS)[: size + 1])
    page = rows[:size]
    page.reverse()  # oldest at the top, as a chat reads
    links = links_of_messages(organization_id=conversation.organization_id, message_ids=[r[0] for r in page])
    zone = ZoneInfo(time_zone)
    shown = [_row(r, links.get(r[0], []), zone) for r in page]
    return MessagePage(shown, shown[0].pk if len(rows) > size and since is None else None)


def _row(r: tuple, links: list, zone: ZoneInfo) -> MessageRow:
    pk, direction, status, body, rendered, media, created_at, code, reason = r
    when, when_iso = local_time(created_at, zone)
    return MessageRow(
        pk=pk,
        direction=direction,
        status=status,
        status_label=str(MessageStatus(status).label),
        body=rendered or body,
        when=when,
        when_iso=when_iso,
        reason=f"{reason} ({code})" if reason and code else reason or code,
        media=[_media_item(item) for item in media if isinstance(item, dict) and item.get("url")],
        links=[
            LinkRow(
                code=link.code,
                target=Truncator(link.target_url).chars(_LINK_TARGET_CHARS),
                clicks=link.click_count,
                unique=link.unique_click_count if link.unique_click_count != link.click_count else None,
            )
            for link in links
        ],
    )


def _media_item(item: dict) -> dict:
    content_type = str(item.get("content_type") or "")
    return {"url": item["url"], "content_type": content_type or "file", "image": content_type.startswith("image/")}
