"""Blasts in the web app: the list, the composer (create / edit a draft), the confirm step, launch, cancel,
delete. Thin: reads through messaging.selectors, writes through the API's own services
(messaging.services.blasts for drafts, messaging.services.sending for preview, launch and cancel), so there
is one send path. Every blast is looked up within the user's active organization: another's is 404.
A refused action re-renders its page with the field and the reason (4xx) and changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from messaging import segments
from messaging.models import Blast, BlastStatus, Contact, SenderKind
from messaging.selectors import blast_preview, blast_quiet_hours_deferrals, blasts_for
from messaging.services import blasts as blast_services
from messaging.services import sending
from messaging.services.templates import FIELD_RE, STANDARD_FIELDS, contact_fields, render_message

from ..blast_forms import SERVICE_FIELDS, BlastForm
from .common import active_membership

PAGE_SIZE = 50


def organization_membership(request):
    """The user's membership in their active organization; 404 without one (no hint of what exists)."""
    membership = active_membership(request)
    if membership is None:
        raise Http404
    return membership


def blast_in_organization(membership, blast_id: int) -> Blast:
    blast = blasts_for(organization=membership.organization).select_related("line").filter(pk=blast_id).first()
    if blast is None:
        raise Http404
    return blast


@dataclass
class BlastRow:
    blast: Blast
    progress: int  # percent of recipients with a final answer (sent to the carrier, failed or opted out)
    progress_text: str
    deferred: int


def blast_row(blast: Blast) -> BlastRow:
    deferred, _ = blast_quiet_hours_deferrals(blast=blast)
    total = blast.recipient_count
    if blast.status == BlastStatus.DRAFT:
        return BlastRow(blast, 0, "Draft", deferred)
    if blast.status == BlastStatus.SCHEDULED:
        return BlastRow(blast, 0, "Waiting for its send time", deferred)
    done = blast.sent_count + blast.failed_count + blast.opted_out_count
    if blast.status == BlastStatus.COMPLETED:
        done = total
    percent = min(100, round(100 * done / total)) if total else 0
    return BlastRow(
        blast, percent, f"{min(done, total):,} of {total:,} · {blast.delivered_count:,} delivered", deferred
    )


@login_required
def blast_list(request):
    """Newest first, 50 a page (keyset on the id: ?before=<id>); one query for the page."""
    membership = organization_membership(request)
    blasts = blasts_for(organization=membership.organization).select_related("line").order_by("-id")
    before = request.GET.get("before", "")
    if before.isdigit():
        blasts = blasts.filter(pk__lt=int(before))
    page = list(blasts[: PAGE_SIZE + 1])
    rows = [blast_row(b) for b in page[:PAGE_SIZE]]
    context = {
        "membership": membership,
        "rows": rows,
        "next_before": page[PAGE_SIZE - 1].pk if len(page) > PAGE_SIZE else None,
        "time_zone": membership.organization.time_zone,
    }
    return render(request, "webapp/blasts.html", context)


# ------------------------------------------------------------------------------------------------ composer
def _service_errors(form: BlastForm, exc: ValidationError) -> None:
    """A service's refusal onto the form's fields (the API's field names mapped to the form's)."""
    if hasattr(exc, "error_dict"):
        for name, errors in exc.message_dict.items():
            form.add_error(SERVICE_FIELDS.get(name), errors)
    else:
        form.add_error(None, exc.messages)


def _compose_context(membership, form: BlastForm, blast: Blast | None = None) -> dict:
    return {
        "membership": membership,
        "form": form,
        "blast": blast,
        "time_zone": membership.organization.time_zone,
    }


@login_required
def blast_new(request):
    membership = organization_membership(request)
    organization = membership.organization
    if request.method != "POST":
        form = BlastForm(organization=organization)
        return render(request, "webapp/blast_form.html", _compose_context(membership, form))
    form = BlastForm(request.POST, request.FILES, organization=organization)
    if form.is_valid():
        try:
            with transaction.atomic():  # a refused blast also undoes a CSV's import of new contacts
                blast = blast_services.blast_create(
                    organization=organization,
                    line=form.cleaned_data["line"],
                    name=form.cleaned_data["name"],
                    body=form.cleaned_data["body"],
                    send_at=form.chosen_send_at(),
                    audience=form.chosen_audience() or blast_services.Audience(all_contacts=True),
                    created_by=request.user,
                )
        except ValidationError as exc:
            _service_errors(form, exc)
        else:
            return redirect("blast-review", blast_id=blast.pk)
    return render(request, "webapp/blast_form.html", _compose_context(membership, form), status=400)


@login_required
def blast_edit(request, blast_id: int):
    membership = organization_membership(request)
    organization = membership.organization
    blast = blast_in_organization(membership, blast_id)
    if blast.status != BlastStatus.DRAFT:
        return redirect("blast-report", blast_id=blast.pk)
    if request.method != "POST":
        initial = {
            "name": blast.name,
            "line": blast.line_id,
            "body": blast.body,
            "when": "later" if blast.send_at else "now",
            "send_at": blast.send_at.astimezone(ZoneInfo(organization.time_zone)).replace(tzinfo=None)
            if blast.send_at
            else None,
        }
        form = BlastForm(initial=initial, organization=organization, editing=True)
        return render(request, "webapp/blast_form.html", _compose_context(membership, form, blast))
    form = BlastForm(request.POST, request.FILES, organization=organization, editing=True)
    if form.is_valid():
        try:
            with transaction.atomic():
                blast = blast_services.blast_update(
                    organization=organization,
                    blast_id=blast.pk,
                    audience=form.chosen_audience(),
                    line=form.cleaned_data["line"],
                    name=form.cleaned_data["name"],
                    body=form.cleaned_data["body"],
                    send_at=form.chosen_send_at(),
                )
        except ValidationError as exc:
            _service_errors(form, exc)
        except blast_services.BlastNotDraft as exc:
            form.add_error(None, str(exc))
            return render(request, "webapp/blast_form.html", _compose_context(membership, form, blast), status=409)
        else:
            return redirect("blast-review", blast_id=blast.pk)
    return render(request, "webapp/blast_form.html", _compose_context(membership, form, blast), status=400)


@login_required
@require_POST
def compose_preview(request):
    """The composer's live preview (htmx): the body rendered for a sample contact of the organization (its
    first texted-able contact), with segments, encoding and the merge fields that contact lacks."""
    membership = organization_membership(request)
    body = request.POST.get("body", "")[: sending.MAX_BODY]
    contact = (
        Contact.objects.filter(
            organization=membership.organization, archived_at__isnull=True, sender_kind=SenderKind.PHONE
        )
        .order_by("id")
        .first()
    )
    fields = (
        contact_fields(
            contact.first_name, contact.last_name, contact.email, contact.phone_number, contact.custom_fields
        )
        if contact
        else {}
    )
    text = render_message(body, fields) if body else ""
    used = sorted(set(FIELD_RE.findall(body)))
    missing = [f for f in used if f not in STANDARD_FIELDS and f not in fields]
    info = segments.count(text) if text else None
    context = {"contact": contact, "text": text, "info": info, "missing": missing}
    return render(request, "webapp/_compose_preview.html", context)


# ------------------------------------------------------------------------------------------ confirm, launch
def _review_context(membership, blast: Blast, **extra) -> dict:
    preview = blast_preview(organization=membership.organization, blast_id=blast.pk)
    return {
        "membership": membership,
        "blast": blast,
        "preview": preview,
        "time_zone": membership.organization.time_zone,
        **extra,
    }


@login_required
def blast_review(request, blast_id: int):
    """The confirm step: what a launch now would do (the API's blast_preview): recipients, opt-outs left
    out, the sample text, segments, how many quiet hours would defer and until when."""
    membership = organization_membership(request)
    blast = blast_in_organization(membership, blast_id)
    if blast.status != BlastStatus.DRAFT:
        return redirect("blast-report", blast_id=blast.pk)
    return render(request, "webapp/blast_review.html", _review_context(membership, blast))


@login_required
@require_POST
def blast_launch(request, blast_id: int):
    membership = organization_membership(request)
    blast = blast_in_organization(membership, blast_id)
    try:
        sending.blast_launch(organization=membership.organization, blast_id=blast.pk)
    except sending.SendRefused as exc:
        if blast.status != BlastStatus.DRAFT:
            return redirect("blast-report", blast_id=blast.pk)
        context = _review_context(membership, blast, error=f"{exc.field}: {exc.message}")
        return render(request, "webapp/blast_review.html", context, status=exc.http_status)
    return redirect("blast-report", blast_id=blast.pk)


@login_required
@require_POST
def blast_cancel(request, blast_id: int):
    membership = organization_membership(request)
    blast = blast_in_organization(membership, blast_id)
    try:
        sending.blast_cancel(organization=membership.organization, blast_id=blast.pk)
    except sending.SendRefused as exc:
        from .reports import render_blast_report

        return render_blast_report(request, membership, blast, error=exc.message, status=exc.http_status)
    return redirect("blast-report", blast_id=blast.pk)


@login_required
@require_POST
def blast_delete(request, blast_id: int):
    membership = organization_membership(request)
    blast = blast_in_organization(membership, blast_id)
    try:
        blast_services.blast_delete(organization=membership.organization, blast_id=blast.pk)
    except blast_services.BlastNotDraft as exc:
        from .reports import render_blast_report

        return render_blast_report(request, membership, blast, error=str(exc), status=409)
    return redirect("blasts")
