"""Live pages without a reload: htmx polls with conditional requests (docs/webapp.md, "Live").

An open inbox or thread asks every POLL_SECONDS for its live part, sending the fingerprint it holds as
If-None-Match. The server computes the fingerprint of what that part would show with one query (which
also checks the person is still a member) and answers 304, without rendering or reading anything else,
while nothing changed. So an idle tab costs session + user + that query per poll (tests/webapp/test_live.py
measures a minute of it); anything that changes — a text in, a status, a click, an assignment — is on
screen within one poll.
"""

from __future__ import annotations

import hashlib

from django.db.models import Count, Exists, IntegerField, Max, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce, Greatest
from django.http import HttpResponse, HttpResponseNotModified

from messaging.models import Conversation, Message, OptOut
from organizations.models import Membership
from shortener.models import Link

# Within the 3 s the issue asks for, with room for the request itself.
POLL_SECONDS = 2


def etag_of(stamp: str) -> str:
    return f'"{stamp}"'


def not_modified(request, stamp: str) -> HttpResponse | None:
    """304 when the page already shows `stamp`."""
    wanted = request.headers.get("If-None-Match", "")
    if etag_of(stamp) in [tag.strip().removeprefix("W/") for tag in wanted.split(",")]:
        response = HttpResponseNotModified()
        return with_etag(response, stamp)
    return None


def with_etag(response: HttpResponse, stamp: str) -> HttpResponse:
    response["ETag"] = etag_of(stamp)
    # The poll always asks (no-cache); a person's conversations are never kept by shared caches.
    response["Cache-Control"] = "private, no-cache"
    return response


_THREAD_STAMP_FIELDS = (
    "status",
    "assignee_id",
    "contact__updated_at",
    "contact__archived_at",
    "n",
    "changed",
    "clicks",
    "opted_out",
)


def thread_stamp(*, organization_id: int, user_id: int, conversation_id: int) -> str | None:
    """Fingerprint of a thread's live part: the conversation's status and assignee, the contact's record and
    opt-out, its messages (count, newest change of any status) and their links' clicks. None when the
    conversation is not this member's to see (the caller answers 404 through the normal page)."""
    messages = Message.objects.filter(conversation=OuterRef("pk")).order_by().values("conversation")
    links = Link.objects.filter(message__conversation=OuterRef("pk")).order_by().values("message__conversation")
    row = (
        Conversation.objects.filter(pk=conversation_id, organization_id=organization_id)
        .filter(
            Exists(
                Membership.objects.filter(
                    user_id=user_id, organization_id=OuterRef("organization_id"), organization__is_active=True
                )
            )
        )
        .annotate(
            n=Subquery(messages.annotate(n=Count("id")).values("n"), output_field=IntegerField()),
            changed=Subquery(messages.annotate(at=Max(Greatest("status_updated_at", "created_at"))).values("at")),
            clicks=Coalesce(Subquery(links.annotate(c=Sum("click_count")).values("c")), 0),
            opted_out=Exists(
                OptOut.objects.filter(
                    organization_id=OuterRef("organization_id"), phone_number=OuterRef("contact__phone_number")
                )
            ),
        )
        .values_list(*_THREAD_STAMP_FIELDS)
        .first()
    )
    if row is None:
        return None
    return hashlib.blake2b(repr(row).encode(), digest_size=12).hexdigest()
