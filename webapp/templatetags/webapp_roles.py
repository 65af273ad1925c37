"""What a page shows a role, asked of webapp/roles.py (the one place that says who may do what)."""

from django import template

from .. import roles

register = template.Library()


@register.filter
def may_manage_settings(membership) -> bool:
    return roles.can_manage_settings(membership)
