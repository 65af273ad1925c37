"""Report pages: a blast's report (its page in the web app, with cancel for a running blast) and the
organization's report, each with SVG charts (webapp/svg.py) and a CSV export of every table. The figures
come from webapp/reports.py; a blast of another organization is 404 like any other object."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.text import slugify

from messaging.models import BlastStatus

from ..reports import blast_report, organization_report, report_csv
from .blasts import blast_in_organization, organization_membership

# A running blast's page refreshes its figures (htmx polling of the same URL, which then answers only the
# report's part): often enough to watch it fill in, rarely enough that an open tab costs little.
REFRESH_SECONDS = 5
RUNNING = (BlastStatus.SCHEDULED, BlastStatus.SENDING)


def render_blast_report(request, membership, blast, *, error: str = "", status: int = 200):
    report = blast_report(blast=blast, organization=membership.organization)
    context = {
        "membership": membership,
        "blast": blast,
        "report": report,
        "running": blast.status in RUNNING,
        "can_cancel": blast.status not in (BlastStatus.COMPLETED, BlastStatus.CANCELED, BlastStatus.DRAFT),
        "refresh_seconds": REFRESH_SECONDS,
        "csv_url": f"/blasts/{blast.pk}/report.csv",
        "time_zone": membership.organization.time_zone,
        "error": error,
    }
    partial = request.htmx and request.htmx.target == "report"
    return render(request, "webapp/_report.html" if partial else "webapp/blast_report.html", context, status=status)


@login_required
def blast_report_page(request, blast_id: int):
    membership = organization_membership(request)
    blast = blast_in_organization(membership, blast_id)
    if blast.status == BlastStatus.DRAFT:
        return redirect("blast-review", blast_id=blast.pk)
    return render_blast_report(request, membership, blast)


def _csv_response(report, table: str | None, name: str) -> HttpResponse:
    try:
        text = report_csv(report, table or None)
    except KeyError:
        raise Http404 from None
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    filename = slugify(f"{name}-{table}" if table else name) + ".csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
def blast_report_csv(request, blast_id: int):
    """The whole report (?table= one table: status, delivered, failures, clicks, links) as CSV."""
    membership = organization_membership(request)
    blast = blast_in_organization(membership, blast_id)
    report = blast_report(blast=blast, organization=membership.organization)
    return _csv_response(report, request.GET.get("table"), f"blast-{blast.pk}-report")


@login_required
def organization_report_page(request):
    membership = organization_membership(request)
    report = organization_report(organization=membership.organization)
    context = {
        "membership": membership,
        "report": report,
        "csv_url": "/reports/report.csv",
        "time_zone": membership.organization.time_zone,
    }
    return render(request, "webapp/org_report.html", context)


@login_required
def organization_report_csv(request):
    """The organization's report (?table= one of messages, lines, opt_outs, clicks) as CSV."""
    membership = organization_membership(request)
    report = organization_report(organization=membership.organization)
    return _csv_response(report, request.GET.get("table"), f"{membership.organization.name}-report")
