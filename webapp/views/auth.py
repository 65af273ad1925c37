"""Sign-in pages: Django's views, with the password-reset link built on PUBLIC_BASE_URL."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import views as auth_views


def public_base_url() -> str:
    """The origin every link we mail starts with: settings.PUBLIC_BASE_URL, never the request's Host
    header (which the sender of the request chooses: password-reset poisoning, docs/security.md)."""
    return settings.PUBLIC_BASE_URL.rstrip("/")


class PasswordResetView(auth_views.PasswordResetView):
    """Django's, with the mailed link built on PUBLIC_BASE_URL (Django's takes the request's host)."""

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
