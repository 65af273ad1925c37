"""Settings for an organization's admins (/settings/…): lines (with NICE's start-polling flag), carrier
accounts (read-only, secrets masked), quiet hours, API keys, members, the RingCentral connection.

Thin: every write is a service the API (or the admin) also uses — messaging.services.lines.line_save,
organizations.services (organization_update_settings, api_key_create, api_keys_revoke, membership_*),
integrations.services (ringcentral_connect / ringcentral_disconnect). Only admins of the active
organization get here (others: 403, as every refused action of the web app); every object is looked up
within that organization (another's: 404). A refusal re-renders the page with the field and the reason
(400) and changes nothing."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Exists, OuterRef
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from carriers.models import mask_config
from carriers.selectors import carrier_accounts_for, webhook_health
from integrations.models import NiceConnection, RingCentralConnection
from integrations.selectors import ringcentral_connections_for
from integrations.services import ringcentral_connect, ringcentral_disconnect
from messaging.selectors import lines_for
from messaging.services.lines import LineNumberUnverifiable, line_save
from organizations import services as org_services
from organizations.models import ApiKey, Membership, Organization, Role

from .. import roles
from ..invitations import send_invitation
from ..settings_forms import (
    ApiKeyForm,
    LineCreateForm,
    LineForm,
    MemberAddForm,
    MemberRoleForm,
    QuietHoursForm,
    RingCentralForm,
    form_service_errors,
)
from .common import active_membership

log = logging.getLogger(__name__)

SECTIONS = [
    ("lines", "Lines"),
    ("carriers", "Carrier accounts"),
    ("quiet-hours", "Quiet hours"),
    ("api-keys", "API keys"),
    ("members", "Members"),
    ("ringcentral", "RingCentral"),
]


def admin_membership(request) -> Membership:
    """The user's membership in their active organization, as an admin: 404 without one, 403 for another role."""
    membership = active_membership(request)
    if membership is None:
        raise Http404
    if not roles.can_manage_settings(membership):
        raise PermissionDenied("Only the organization's admins manage its settings.")
    return membership


def _page(request, membership, section: str, template: str, status: int = 200, **context):
    context = {"membership": membership, "section": section, "sections": SECTIONS, **context}
    return render(request, f"webapp/settings/{template}", context, status=status)


@login_required
def settings_home(request):
    admin_membership(request)
    return redirect("settings-lines")


# ------------------------------------------------------------------------------------------------ lines
@login_required
def lines(request):
    """One query for the rows: each line with its carrier account and whether NICE / RingCentral is on it."""
    membership = admin_membership(request)
    rows = (
        lines_for(organization=membership.organization)
        .select_related("carrier_account")
        .annotate(
            has_nice=Exists(NiceConnection.objects.filter(line=OuterRef("pk"), is_active=True)),
            has_ringcentral=Exists(RingCentralConnection.objects.filter(line=OuterRef("pk"), is_active=True)),
        )
        .order_by("-is_active", "id")
    )
    return _page(request, membership, "lines", "lines.html", lines=list(rows))


def _line_saved(request, form: LineForm, organization, line=None) -> int | None:
    """Saves a valid form through the service; None when saved (and says so), else the status to re-render
    with."""
    if not form.is_valid():
        return 400
    try:
        saved = line_save(organization=organization, line=line, **form.cleaned_data)
    except ValidationError as exc:
        form_service_errors(form, exc)
        return 400
    except LineNumberUnverifiable:
        field = "phone_number" if "phone_number" in form.fields else "carrier_account"
        form.add_error(field, "The carrier could not confirm this number right now; try again in a minute.")
        return 503
    messages.success(request, f"Line {saved.phone_number} {'saved' if line else 'added'}.")
    return None


@login_required
def line_new(request):
    membership = admin_membership(request)
    organization = membership.organization
    if request.method != "POST":
        form = LineCreateForm(initial={"rate_per_second": 1.0, "is_active": True}, organization=organization)
        return _page(request, membership, "lines", "line_edit.html", line=None, form=form)
    form = LineCreateForm(request.POST, organization=organization)
    if (status := _line_saved(request, form, organization)) is None:
        return redirect("settings-lines")
    return _page(request, membership, "lines", "line_edit.html", status=status, line=None, form=form)


@login_required
def line_edit(request, line_id: int):
    membership = admin_membership(request)
    organization = membership.organization
    line = lines_for(organization=organization).select_related("carrier_account").filter(pk=line_id).first()
    if line is None:
        raise Http404
    if request.method != "POST":
        initial = {name: getattr(line, name) for name in LineForm.base_fields}
        form = LineForm(initial=initial, organization=organization)
        return _page(request, membership, "lines", "line_edit.html", line=line, form=form)
    form = LineForm(request.POST, organization=organization)
    if (status := _line_saved(request, form, organization, line)) is None:
        return redirect("settings-lines")
    return _page(request, membership, "lines", "line_edit.html", status=status, line=line, form=form)


# ------------------------------------------------------------------------------------- carrier accounts
@login_required
def carriers(request):
    """Read-only (accounts are created and configured in the admin, as the API says): name, provider,
    state, the configuration with every secret masked, whether the webhooks ask for basic auth, and the
    webhooks' health. The webhook URLs carry the account's secret: not shown here either."""
    membership = admin_membership(request)
    accounts = list(carrier_accounts_for(organization=membership.organization))
    health = webhook_health(account_ids=[a.pk for a in accounts])
    rows = [
        {
            "account": account,
            "config": sorted(mask_config(account.config).items()),
            "basic_auth": bool(account.webhook_username),
            "health": health[account.pk],
        }
        for account in accounts
    ]
    return _page(request, membership, "carriers", "carriers.html", rows=rows)


# ------------------------------------------------------------------------------------------ quiet hours
@login_required
def quiet_hours(request):
    membership = admin_membership(request)
    organization: Organization = membership.organization
    if request.method != "POST":
        form = QuietHoursForm(initial={name: getattr(organization, name) for name in org_services.SETTINGS_FIELDS})
        return _page(request, membership, "quiet-hours", "quiet_hours.html", form=form)
    form = QuietHoursForm(request.POST)
    if form.is_valid():
        try:
            org_services.organization_update_settings(organization=organization, **form.cleaned_data)
        except ValidationError as exc:
            form_service_errors(form, exc)
        else:
            messages.success(request, "Quiet hours saved.")
            return redirect("settings-quiet-hours")
    return _page(request, membership, "quiet-hours", "quiet_hours.html", status=400, form=form)


# --------------------------------------------------------------------------------------------- API keys
def _api_keys_page(request, membership, form: ApiKeyForm, status: int = 200, created=None):
    keys = ApiKey.objects.filter(organization=membership.organization).select_related("created_by").order_by("-id")
    return _page(
        request, membership, "api-keys", "api_keys.html", status=status, form=form, keys=list(keys), created=created
    )


@login_required
@never_cache  # the page that shows a new key must not be kept by the browser or a proxy
def api_keys(request):
    """The list (prefix, scope, created, last used) and the create form. A created key is shown in the
    answer to its POST and never again: only its hash is stored."""
    membership = admin_membership(request)
    if request.method != "POST":
        return _api_keys_page(request, membership, ApiKeyForm())
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        return _api_keys_page(request, membership, form, status=400)
    created = org_services.api_key_create(
        organization=membership.organization, created_by=request.user, **form.cleaned_data
    )
    return _api_keys_page(request, membership, ApiKeyForm(), status=201, created=created)


@login_required
@require_POST
def api_key_revoke(request, key_id: int):
    membership = admin_membership(request)
    if not ApiKey.objects.filter(organization=membership.organization, pk=key_id).exists():
        raise Http404
    org_services.api_keys_revoke(organization_id=membership.organization_id, api_key_ids=[key_id])
    messages.success(request, "Key revoked: it no longer opens the API.")
    return redirect("settings-api-keys")


# ---------------------------------------------------------------------------------------------- members
def _members_page(request, membership, status: int = 200, *, form=None, role_errors=None):
    members = (
        Membership.objects.filter(organization=membership.organization)
        .select_related("user")
        .order_by("user__email", "id")
    )
    return _page(
        request,
        membership,
        "members",
        "members.html",
        status=status,
        rows=[(m, org_services.membership_is_invited(m), (role_errors or {}).get(m.pk, [])) for m in members],
        form=form or MemberAddForm(),
        roles=Role.choices,
    )


def _invite(request, invited: Membership):
    """Mails the invitation, tells the admin how it went (on the page the redirect lands on) and sends them
    back to the list. A failed mail leaves the member added and invited: the admin sees why (the error's
    kind, never its text — an SMTP error may quote the server's login) and resends from the list."""
    try:
        send_invitation(invited, invited_by=request.user)
    except Exception as exc:  # noqa: BLE001 - any mail backend's failure is the admin's to see and retry
        log.warning("invitation mail for membership %s failed: %s", invited.pk, type(exc).__name__)
        messages.error(
            request,
            f"{invited.user.email} is a member now, but the invitation could not be mailed "
            f"({type(exc).__name__}): resend it from the list.",
        )
    else:
        messages.success(request, f"Invitation sent to {invited.user.email}.")
    return redirect("settings-members")


@login_required
def members(request):
    membership = admin_membership(request)
    if request.method != "POST":
        return _members_page(request, membership)
    form = MemberAddForm(request.POST)
    if form.is_valid():
        try:
            added = org_services.membership_add(organization=membership.organization, **form.cleaned_data)
        except ValidationError as exc:
            form_service_errors(form, exc)
        else:
            if org_services.membership_is_invited(added):
                return _invite(request, added)
            messages.success(request, f"{added.user.get_username()} added as {added.get_role_display()}.")
            return redirect("settings-members")
    return _members_page(request, membership, 400, form=form)


@login_required
@require_POST
def member_invite(request, member_id: int):
    """Mails the invitation again (a lost or expired link): only to a member who has not arrived yet."""
    membership = admin_membership(request)
    invited = (
        Membership.objects.select_related("user", "organization")
        .filter(organization=membership.organization, pk=member_id)
        .first()
    )
    if invited is None:
        raise Http404
    if not org_services.membership_is_invited(invited):
        return _member_refused(
            request, membership, member_id, ValidationError("This member has already chosen a password.")
        )
    return _invite(request, invited)


def _member_refused(request, membership, member_id: int, exc: ValidationError):
    return _members_page(request, membership, 400, role_errors={member_id: exc.messages})


@login_required
@require_POST
def member_role(request, member_id: int):
    membership = admin_membership(request)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        if not Membership.objects.filter(organization=membership.organization, pk=member_id).exists():
            raise Http404
        return _members_page(request, membership, 400, role_errors={member_id: form.errors["role"]})
    try:
        changed = org_services.membership_change_role(
            organization=membership.organization, membership_id=member_id, role=form.cleaned_data["role"]
        )
    except Membership.DoesNotExist:
        raise Http404 from None
    except ValidationError as exc:
        return _member_refused(request, membership, member_id, exc)
    if member_id == membership.pk and not roles.can_manage_settings(changed):
        return redirect("home")  # stepped down: these pages are no longer theirs
    messages.success(request, f"{changed.user.get_username()} is now {changed.get_role_display()}.")
    return redirect("settings-members")


@login_required
@require_POST
def member_remove(request, member_id: int):
    membership = admin_membership(request)
    try:
        org_services.membership_remove(organization=membership.organization, membership_id=member_id)
    except Membership.DoesNotExist:
        raise Http404 from None
    except ValidationError as exc:
        return _member_refused(request, membership, member_id, exc)
    if member_id == membership.pk:
        return redirect("home")  # removed themselves: no longer an admin here
    return redirect("settings-members")


# ------------------------------------------------------------------------------------------ RingCentral
def _ringcentral_page(request, membership, form=None, status: int = 200):
    connections = ringcentral_connections_for(organization_id=membership.organization_id)
    org_wide = next((c for c in connections if c.line_id is None), None)
    if form is None:
        initial = {"base_url": org_wide.base_url, "bot_creator_id": org_wide.bot_creator_id} if org_wide else {}
        form = RingCentralForm(initial=initial or {"base_url": "https://platform.ringcentral.com"})
    per_line = [c for c in connections if c.line_id is not None]
    return _page(
        request,
        membership,
        "ringcentral",
        "ringcentral.html",
        status=status,
        org_wide=org_wide,
        per_line=per_line,
        form=form,
    )


@login_required
def ringcentral(request):
    """Status, and connect: what integrations.services.ringcentral_connect takes (a bot token pasted from
    RingCentral's console — Parley does no OAuth). Per-line connections are shown, managed in the admin."""
    membership = admin_membership(request)
    if request.method != "POST":
        return _ringcentral_page(request, membership)
    form = RingCentralForm(request.POST)
    if form.is_valid():
        try:
            ringcentral_connect(organization_id=membership.organization_id, **form.cleaned_data)
        except ValidationError as exc:
            form_service_errors(form, exc)
        else:
            return redirect("settings-ringcentral")
    return _ringcentral_page(request, membership, form, status=400)


@login_required
@require_POST
def ringcentral_disconnect_view(request):
    membership = admin_membership(request)
    ringcentral_disconnect(organization_id=membership.organization_id)
    return redirect("settings-ringcentral")
