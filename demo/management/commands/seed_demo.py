"""manage.py seed_demo — the demo account `make run` uses. Idempotent; see demo/services.py."""

from django.conf import settings
from django.core.management.base import BaseCommand

from demo.services import demo_seed


class Command(BaseCommand):
    help = "Create (or complete) the demo organization: admin user, API key, sandbox carrier, line, contacts."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset-password", action="store_true", help="Give the demo admin a new random password and print it."
        )

    def handle(self, *args, **options):
        result = demo_seed(reset_password=options["reset_password"])
        out, base = self.stdout, settings.PUBLIC_BASE_URL
        out.write(f"Demo organization: {result.organization.name} (id {result.organization.pk})")
        out.write(f"  created now: {', '.join(result.created) if result.created else 'nothing (already seeded)'}")
        out.write(f"  login:    {result.login}   ({base}/login/, {base}/admin/)")
        if result.password:
            out.write(self.style.WARNING(f"  password: {result.password}   (shown once; save it now)"))
        else:
            out.write("  password: unchanged since it was first printed; new one: manage.py seed_demo --reset-password")
        if result.api_key:
            out.write(self.style.WARNING(f"  API key:  {result.api_key}   (shown once; only its hash is stored)"))
            out.write(f"  try it:   curl -H 'Authorization: Bearer {result.api_key}' {base}/api/v1/conversations")
        else:
            out.write(
                f"  API key:  exists ({result.api_key_prefix}…); keys are shown only at creation. New one: "
                f"POST {base}/api/v1/api-keys or {base}/admin/organizations/apikey/add/"
            )
        out.write(f"  API docs: {base}/api/docs/")
