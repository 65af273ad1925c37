"""Views of the web app. Reads go through messaging.selectors, scoped to the user's organization."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import F
from django.shortcuts import render

from messaging.selectors import conversations_for
from organizations.auth import membership_for

# The home page is a glance at the inbox, not the inbox itself (that is the API / a future UI).
HOME_CONVERSATIONS = 50


@login_required
def home(request):
    membership = membership_for(request.user, request.GET.get("org"))
    conversations = []
    if membership is not None:
        conversations = list(
            conversations_for(organization=membership.organization).order_by(
                F("last_message_at").desc(nulls_last=True), "-id"
            )[:HOME_CONVERSATIONS]
        )
    others = request.user.memberships.select_related("organization").order_by("id")
    return render(
        request,
        "webapp/home.html",
        {"membership": membership, "conversations": conversations, "memberships": others},
    )
