"""What every page of the web app shares: the organization the user acts for."""

from __future__ import annotations

from organizations.auth import membership_for

SESSION_ORG = "webapp_organization_id"


def active_membership(request):
    """The membership the user acts through: ?org= switches (and is remembered in the session)."""
    wanted = request.GET.get("org") or request.session.get(SESSION_ORG)
    membership = membership_for(request.user, wanted)
    if membership is None and wanted and not request.GET.get("org"):
        membership = membership_for(request.user, None)  # the remembered one was left: fall back
    if membership is not None and request.session.get(SESSION_ORG) != membership.organization_id:
        request.session[SESSION_ORG] = membership.organization_id  # written only on a switch: no save per page
    return membership
