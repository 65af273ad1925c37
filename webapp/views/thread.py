"""A conversation's thread: messages, contact panel, reply (with its live counter), assign, close, reopen,
and starting a conversation by number. Every write goes through the API's own services."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from messaging.models import Conversation, Line
from messaging.selectors import opt_outs_for
from messaging.services import conversations as conversation_services
from messaging.services import sending
from organizations.models import Membership

from .. import live, roles, threads
from ..compose import compose_info
from ..reads import conversation_mark_read
from .common import SESSION_ORG, active_membership


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


def _contact_fields(contact) -> list[tuple[str, str]]:
    return [(str(k), "" if v is None else str(v)) for k, v in sorted(contact.custom_fields.items())]


def _message_id(request, name: str) -> int | None:
    raw = request.GET.get(name, "")
    return int(raw) if raw.isdigit() else None


def _thread_context(request, membership, conversation, *, stamp: str | None = None, since: int | None = None, **extra):
    page = threads.thread_messages(conversation=conversation, time_zone=membership.organization.time_zone, since=since)
    opted_out = opt_outs_for(
        organization=membership.organization, phone_number=conversation.contact.phone_number
    ).first()
    members = []
    if roles.can_assign_anyone(membership):
        members = list(
            Membership.objects.filter(organization_id=membership.organization_id, role__in=roles.HANDLERS)
            .select_related("user")
            .order_by("user__username")
        )
    if stamp is None:
        stamp = live.thread_stamp(
            organization_id=membership.organization_id, user_id=request.user.pk, conversation_id=conversation.pk
        )
    conversation_mark_read(user_id=request.user.pk, conversation_id=conversation.pk, at=timezone.now())
    me = request.user.pk
    return {
        "membership": membership,
        "conversation": conversation,
        "messages": page.messages,
        "older": page.older,
        # The live poll re-renders from the oldest message the page opened with (webapp/threads.py).
        "live_from": since if since is not None else (page.messages[0].pk if page.messages else ""),
        "opted_out": opted_out,
        "contact_fields": _contact_fields(conversation.contact),
        "members": members,
        "can_send": roles.can_send(membership),
        "can_handle": roles.can_handle(membership),
        "can_take": roles.may_assign(membership, current_assignee_id=conversation.assignee_id, new_assignee_id=me),
        "can_release": conversation.assignee_id is not None
        and roles.may_assign(membership, current_assignee_id=conversation.assignee_id, new_assignee_id=None),
        "assigned_to_me": conversation.assignee_id == me,
        "time_zone": membership.organization.time_zone,
        "max_body": sending.MAX_BODY,
        "stamp": stamp,
        "etag": live.etag_of(stamp) if stamp else "",
        "poll_seconds": live.POLL_SECONDS,
        **extra,
    }


def _render_thread(request, membership, conversation, *, status: int = 200, **extra):
    context = _thread_context(request, membership, conversation, **extra)
    return render(request, "webapp/thread.html", context, status=status)


@login_required
@require_GET
def thread(request, conversation_id: int):
    membership, conversation = _conversation(request, conversation_id)
    return _render_thread(request, membership, conversation)


@login_required
@require_GET
def thread_live(request, conversation_id: int):
    """The thread's live part (head, messages, contact panel) for the poll: 304 from one query while
    nothing changed (webapp/live.py)."""
    organization_id = request.session.get(SESSION_ORG)
    stamp = None
    if organization_id is not None:
        stamp = live.thread_stamp(
            organization_id=organization_id, user_id=request.user.pk, conversation_id=conversation_id
        )
        if stamp is not None and (unchanged := live.not_modified(request, stamp)) is not None:
            return unchanged
    membership, conversation = _conversation(request, conversation_id)
    context = _thread_context(
        request, membership, conversation, stamp=stamp, since=_message_id(request, "from"), oob=True
    )
    return live.with_etag(render(request, "webapp/_thread_live.html", context), context["stamp"] or "")


@login_required
@require_GET
def thread_older(request, conversation_id: int):
    """The page of messages before `before` (htmx, swapped in place of the "Older messages" link; a plain
    page of them without JavaScript): the conversation and its messages, nothing marked read."""
    membership, conversation = _conversation(request, conversation_id)
    before = _message_id(request, "before")
    if before is None:
        return HttpResponseBadRequest("before: a message id is required.")
    page = threads.thread_messages(
        conversation=conversation, time_zone=membership.organization.time_zone, before=before
    )
    context = {"conversation": conversation, "messages": page.messages, "older": page.older}
    template = "webapp/_older_messages.html" if request.htmx else "webapp/thread_older.html"
    return render(request, template, context)


@login_required
@require_POST
def reply(request, conversation_id: int):
    """Sends through messaging.services.sending.message_send, the API's own service: the same checks
    (opted out, archived line, body), the same queued message and pipeline. A refusal is shown with its
    reason and status 409/400, the typed text kept. A plain form post (works without JavaScript), then a
    redirect to the thread, so a reload never sends twice."""
    membership, conversation = _conversation(request, conversation_id)
    if not roles.can_send(membership):
        raise PermissionDenied("Your role does not send messages.")
    body = request.POST.get("body", "")
    try:
        sending.message_send(
            organization=membership.organization, conversation_id=conversation.pk, body=body, sent_by=request.user
        )
    except sending.SendRefused as exc:
        return _render_thread(request, membership, conversation, status=exc.http_status, error=exc.message, body=body)
    except ValidationError as exc:
        return _render_thread(request, membership, conversation, status=400, error=" ".join(exc.messages), body=body)
    return redirect("thread", conversation_id=conversation.pk)


@login_required
@require_POST
def assign(request, conversation_id: int):
    """`assignee`: "me", "" (nobody) or a member's user id; conversation_assign refuses a non-member."""
    membership, conversation = _conversation(request, conversation_id)
    raw = request.POST.get("assignee", "").strip()
    if raw == "me":
        assignee_id: int | None = request.user.pk
    elif raw == "":
        assignee_id = None
    elif raw.isdigit():
        assignee_id = int(raw)
    else:
        return _render_thread(request, membership, conversation, status=400, action_error="assignee: not a member id.")
    if not roles.may_assign(membership, current_assignee_id=conversation.assignee_id, new_assignee_id=assignee_id):
        raise PermissionDenied("Your role may not assign this conversation so.")
    try:
        conversation_services.conversation_assign(conversation=conversation, assignee_id=assignee_id)
    except ValidationError as exc:
        message = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())
        return _render_thread(request, membership, conversation, status=400, action_error=message)
    return redirect("thread", conversation_id=conversation.pk)


@login_required
@require_POST
def close(request, conversation_id: int):
    membership, conversation = _conversation(request, conversation_id)
    if not roles.can_handle(membership):
        raise PermissionDenied("Your role does not close conversations.")
    conversation_services.conversations_close(
        conversation_ids=[conversation.pk], organization_id=membership.organization_id
    )
    return redirect("thread", conversation_id=conversation.pk)


@login_required
@require_POST
def reopen(request, conversation_id: int):
    membership, conversation = _conversation(request, conversation_id)
    if not roles.can_handle(membership):
        raise PermissionDenied("Your role does not reopen conversations.")
    conversation_services.conversation_reopen(conversation=conversation)
    return redirect("thread", conversation_id=conversation.pk)


@login_required
@require_POST
def counter(request):
    """The reply box's live counter (htmx, as the person types): characters, segments and encoding from
    messaging.segments, and what shortening the links will do — the server's own code, so the count shown
    is the count sent."""
    membership = active_membership(request)
    if membership is None:
        raise Http404
    info = compose_info(request.POST.get("body", ""), organization_id=membership.organization_id)
    return render(request, "webapp/_counter.html", {"info": info})


@login_required
def new_conversation(request):
    """Start a conversation by number: messaging.services.sending.message_send_to_number (the API's
    POST /messages), which validates the number with phonenumbers and refuses an opted-out one."""
    membership = active_membership(request)
    if membership is None:
        raise Http404
    if not roles.can_send(membership):
        raise PermissionDenied("Your role does not send messages.")
    lines = list(
        Line.objects.filter(
            organization_id=membership.organization_id, is_active=True, carrier_account__isnull=False
        ).order_by("id")
    )
    form = {name: request.POST.get(name, "") for name in ("line", "to", "body")}
    context = {"membership": membership, "lines": lines, "form": form, "max_body": sending.MAX_BODY}
    if request.method != "POST":
        return render(request, "webapp/new_conversation.html", context)
    errors: dict[str, str] = {}
    status = 400
    line_id = int(form["line"]) if form["line"].isdigit() else None
    if line_id is None:
        errors["line"] = "Choose a line to send from."
    else:
        try:
            message = sending.message_send_to_number(
                organization=membership.organization,
                line_id=line_id,
                to=form["to"],
                body=form["body"],
                sent_by=request.user,
            )
            return redirect("thread", conversation_id=message.conversation_id)
        except sending.SendRefused as exc:
            errors[exc.field] = exc.message
            status = exc.http_status
        except ValidationError as exc:
            errors.update({field: " ".join(msgs) for field, msgs in exc.message_dict.items()})
    context["errors"] = errors
    return render(request, "webapp/new_conversation.html", context, status=status)
