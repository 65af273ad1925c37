"""A conversation's thread and the reply to it."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from messaging.models import Conversation, OptOut
from messaging.selectors import conversation_messages
from messaging.services import sending

from .common import active_membership

# The thread shows the newest messages; older ones are a later slice (paging back in the thread).
THREAD_MESSAGES = 100


def _conversation(request, conversation_id: int):
    """The conversation in the user's active organization; 404 for anyone else's (no hint that it exists)."""
    membership = active_membership(request)
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
