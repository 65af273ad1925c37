"""The inbox page: newest first, filters, search, keyset paging (webapp/inbox.py)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from ..inbox import FILTERS, inbox_page
from .common import active_membership


@login_required
def home(request):
    membership = active_membership(request)
    others = request.user.memberships.select_related("organization").order_by("id")
    context = {"membership": membership, "memberships": others, "filters": FILTERS}
    if membership is not None:
        current = request.GET.get("filter", "all")
        current = current if current in FILTERS else "all"
        q = request.GET.get("q", "")[:100]
        page = inbox_page(
            organization=membership.organization,
            user=request.user,
            filter=current,
            q=q,
            cursor=request.GET.get("cursor", ""),
        )
        context.update(
            page=page,
            conversations=page.conversations,
            current=current,
            q=q,
            time_zone=membership.organization.time_zone,
        )
    template = "webapp/_inbox_rows.html" if request.htmx and request.GET.get("cursor") else "webapp/home.html"
    return render(request, template, context)
