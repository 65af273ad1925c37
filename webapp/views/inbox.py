"""The inbox page: newest first, filters, line, search, markers, keyset paging (webapp/inbox.py), and its
live poll (webapp/live.py)."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from messaging.selectors import lines_for

from .. import live, roles
from ..inbox import FILTERS, InboxQuery, inbox_page, inbox_stamp
from .common import SESSION_ORG, active_membership


def _query(request) -> InboxQuery:
    wanted = request.GET.get("filter", "all")
    line = request.GET.get("line", "")
    return InboxQuery(
        filter=wanted if wanted in FILTERS else "all",
        line_id=int(line) if line.isdigit() else None,
        q=request.GET.get("q", "")[:100],
    )


def _qs(query: InboxQuery, **extra: str) -> str:
    """The query string of `query` (what the filter links, the poll and "Older" keep)."""
    params = {"filter": query.filter, "line": query.line_id or "", "q": query.q, **extra}
    return "?" + urlencode({k: v for k, v in params.items() if v not in ("", None)})


@login_required
@require_GET
def home(request):
    query = _query(request)
    polling = bool(request.htmx and request.GET.get("live"))
    stamp = None
    if polling and (organization_id := request.session.get(SESSION_ORG)) is not None:
        stamp = inbox_stamp(organization_id=organization_id, user_id=request.user.pk, query=query)
        if (unchanged := live.not_modified(request, stamp)) is not None:
            return unchanged
    membership = active_membership(request)
    others = request.user.memberships.select_related("organization").order_by("id")
    context: dict = {"membership": membership, "memberships": others, "filters": FILTERS}
    if membership is not None:
        cursor = request.GET.get("cursor", "")
        page = inbox_page(membership=membership, query=query, cursor=cursor)
        stamp = stamp or page.stamp
        context.update(
            page=page,
            conversations=page.conversations,
            current=query.filter,
            line_id=query.line_id,
            lines=list(lines_for(organization=membership.organization).order_by("id")),
            q=query.q,
            filter_links=[(f.capitalize(), _qs(replace(query, filter=f)), f == query.filter) for f in FILTERS],
            live_url=_qs(query, live="1"),
            more_url=_qs(query, cursor=page.next_cursor) if page.next_cursor else "",
            time_zone=membership.organization.time_zone,
            # Each row's link is this prefix and its id: one reverse() a page instead of one a row.
            thread_url=reverse("thread", kwargs={"conversation_id": 0}).removesuffix("0/"),
            can_send=roles.can_send(membership),
            etag=live.etag_of(stamp) if stamp else "",
            poll_seconds=live.POLL_SECONDS,
        )
    if request.htmx and (polling or request.GET.get("cursor")):
        response = render(request, "webapp/_inbox_rows.html", context)
        return live.with_etag(response, stamp) if polling and stamp else response
    return render(request, "webapp/home.html", context)
