"""Sign-in pages: Django's views, with the password-reset link built on PUBLIC_BASE_URL."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views


def public_base_url() -> str:
    """The origin every link we mail starts with: settings.PUBLIC_BASE_URL, never the request's Host
    header (which the sender of the request chooses: password-reset poisoning, docs/security.md)."""
    return settings.PUBLIC_BASE_URL.rstrip("/")


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's, which also answers an invited member (an account that has never had a password,
    webapp/invitations.py): Django skips accounts without a usable password — meant for accounts that
    sign in elsewhere, and Parley has none — so a lost invitation would need an admin to resend it."""

    def get_users(self, email):
        user_model = get_user_model()
        email_field = user_model.get_email_field_name()
        return user_model._default_manager.filter(**{f"{email_field}__iexact": email, "is_active": True})


class PasswordResetView(auth_views.PasswordResetView):
    """Django's, with the mailed link built on PUBLIC_BASE_URL (Django's takes the request's host)."""

    form_class = PasswordResetForm

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
