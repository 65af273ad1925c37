"""The mail that brings an invited member in: a link to choose their password (Django's reset-confirm
page, which the forgot-password flow uses too), built on PUBLIC_BASE_URL like every link we mail — never on
the request's Host header (docs/security.md). The link is a credential: it is never logged."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from organizations.models import Membership

from .views.auth import public_base_url


def invitation_link(membership: Membership) -> str:
    """Valid for PASSWORD_RESET_TIMEOUT and until the password is set (the token hashes the password)."""
    user = membership.user
    path = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    return public_base_url() + path


def send_invitation(membership: Membership, *, invited_by) -> None:
    """Mails the invitation. Raises what the mail backend raises: the caller tells the admin, who resends."""
    context = {
        "organization": membership.organization.name,
        "inviter": invited_by.get_full_name() or invited_by.email,
        "role": membership.get_role_display(),
        "sign_in_name": membership.user.get_username(),
        "link": invitation_link(membership),
        "valid_days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400),
    }
    subject = render_to_string("webapp/invitation_subject.txt", context).strip()
    body = render_to_string("webapp/invitation_email.txt", context)
    send_mail(subject, body, None, [membership.user.email])
