"""Views of the web app. Thin: reads go through webapp.inbox / messaging.selectors and writes through the
same services as the API (messaging.services.sending), always scoped to the user's active organization."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from messaging.models import Conversation, OptOut
from messaging.selectors import conversation_messages
from messaging.services import sending
from organizations.auth import membership_for

from .inbox import FILTERS, inbox_page

# The thread shows the newest messages; older ones are a later slice (paging back in the thread).
THREAD_MESSAGES = 100
SESSION_ORG = "webapp_organization_id"


def _membership(request):
    """The membership the user acts through: ?org= switches (and is remembered in the session)."""
    wanted = request.GET.get("org") or request.session.get(SESSION_ORG)
    membership = membership_for(request.user, wanted)
    if membership is None and wanted and not request.GET.get("org"):
        membership = membership_for(request.user, None)  # the remembered one was left: fall back
    if membership is not None and request.session.get(SESSION_ORG) != membership.organization_id:
        request.session[SESSION_ORG] = membership.organization_id  # written only on a switch: no save per page
    return membership


@login_required
def home(request):
    """The inbox: newest first, filters, search, keyset paging (webapp/inbox.py)."""
    membership = _membership(request)
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


def _conversation(request, conversation_id: int):
    """The conversation in the user's active organization; 404 for anyone else's (no hint that it exists)."""
    membership = _membership(request)
    if membership is None:
        raise Http404
    conversation = (
        Conversation.objects.select_related("line", "contact", "assignee")
        .filter(organization=membership.organization, pk=conversation_id)
        .first()
    )
    if conversation is None:
        raise Http404
    return membership, conversation


def _thread_context(membership, conversation, **extra):
    messages = list(conversation_messages(conversation=conversation)[:THREAD_MESSAGES])
    messages.reverse()  # oldest at the top, as a chat reads
    opted_out = OptOut.objects.filter(
        organization_id=conversation.organization_id, phone_number=conversation.contact.phone_number
    ).first()
    return {
        "membership": membership,
        "conversation": conversation,
        "messages": messages,
        "opted_out": opted_out,
        "time_zone": membership.organization.time_zone,
        "max_body": sending.MAX_BODY,
        **extra,
    }


@login_required
def thread(request, conversation_id: int):
    membership, conversation = _conversation(request, conversation_id)
    template = "webapp/_messages.html" if request.htmx and request.htmx.target == "messages" else "webapp/thread.html"
    return render(request, template, _thread_context(membership, conversation))


@login_required
@require_POST
def reply(request, conversation_id: int):
    """Sends through messaging.services.sending.message_send, the API's own service: the same checks
    (opted out, archived line, body), the same queued message and pipeline. A refusal is shown with its
    reason and status 409/400, the typed text kept. A plain form post (works without JavaScript), then a
    redirect to the thread, so a reload never sends twice."""
    membership, conversation = _conversation(request, conversation_id)
    body = request.POST.get("body", "")
    try:
        sending.message_send(
            organization=membership.organization, conversation_id=conversation.pk, body=body, sent_by=request.user
        )
    except sending.SendRefused as exc:
        context = _thread_context(membership, conversation, error=exc.message, body=body)
        return render(request, "webapp/thread.html", context, status=exc.http_status)
    except ValidationError as exc:
        context = _thread_context(membership, conversation, error=" ".join(exc.messages), body=body)
        return render(request, "webapp/thread.html", context, status=400)
    return redirect("thread", conversation_id=conversation.pk)


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
