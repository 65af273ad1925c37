"""What each role may do in the inbox and threads (docs/webapp.md, "Roles").

- admin: everything, including assigning a conversation to any member;
- agent: reply, start conversations, close and reopen, take an unassigned conversation (assign to me) and
  let go of their own — handing someone else's work around is a supervisor's call;
- support: our own staff placed in a client's account to help them (organizations.models.Role). They read
  inbox and threads, but never text the client's customers or take their conversations, and are not
  offered as assignees.
The pages hide what a role may not do, and every POST checks again (403)."""

from __future__ import annotations

from organizations.models import Membership, Role

HANDLERS = (Role.ADMIN, Role.AGENT)


def can_send(membership: Membership) -> bool:
    return membership.role in HANDLERS


def can_handle(membership: Membership) -> bool:
    """Close, reopen, assign to me."""
    return membership.role in HANDLERS


def can_assign_anyone(membership: Membership) -> bool:
    return membership.role == Role.ADMIN


def may_assign(membership: Membership, *, current_assignee_id: int | None, new_assignee_id: int | None) -> bool:
    if can_assign_anyone(membership):
        return True
    if not can_handle(membership):
        return False
    me = membership.user_id
    if new_assignee_id == me:
        return current_assignee_id in (None, me)  # take an unassigned one
    return new_assignee_id is None and current_assignee_id == me  # let go of my own


def can_manage_settings(membership: Membership | None) -> bool:
    """The settings pages (/settings/…): lines, carrier accounts, quiet hours, API keys, members, RingCentral."""
    return membership is not None and membership.role == Role.ADMIN
