"""Views of the web app. Reads go through messaging.selectors, scoped to the user's organization."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import views as auth_views
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


def public_base_url() -> str:
    """The origin every link we mail starts with: settings.PUBLIC_BASE_URL, never the request's Host
    header (which the sender of the request chooses: password-reset poisoning, docs/security.md)."""
    return settings.PUBLIC_BASE_URL.rstrip("/")


class PasswordResetView(auth_views.PasswordResetView):
    """Django's, with the mailed link built on PUBLIC_BASE_URL (Django's takes the request's host)."""

    def form_valid(self, form):
        base = urlsplit(public_base_url())
        self.extra_email_context = {**(self.extra_email_context or {}), "base_url": public_base_url()}
        # Django's form still computes protocol/domain for its context; make them ours too, not the request's.
        form.save(
            domain_override=base.netloc,
            use_https=base.scheme == "https",
            token_generator=self.token_generator,
            from_email=self.from_email,
            email_template_name=self.email_template_name,
            subject_template_name=self.subject_template_name,
            request=self.request,
            html_email_template_name=self.html_email_template_name,
            extra_email_context=self.extra_email_context,
        )
        return super(auth_views.PasswordResetView, self).form_valid(form)
