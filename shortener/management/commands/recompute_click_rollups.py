"""Rebuild the click rollups (reports' clicks) from links and clicks: the backfill and the repair tool."""

from django.core.management.base import BaseCommand

from organizations.models import Organization
from shortener.services.rollups import click_rollups_rebuild


class Command(BaseCommand):
    help = (
        "Recompute ClickRollup, BlastLinkRollup and BlastClicker from links and clicks, one organization per "
        "transaction; writes only the rows that differ. The backfill for clicks from before the rollups."
    )

    def add_arguments(self, parser):
        parser.add_argument("--organization", type=int, help="Organization id (default: every organization).")

    def handle(self, *args, **o):
        orgs = Organization.objects.order_by("pk").values_list("pk", flat=True)
        if o["organization"] is not None:
            orgs = orgs.filter(pk=o["organization"])
        total = changed = 0
        for org_id in orgs:
            changed += click_rollups_rebuild(organization_id=org_id)
            total += 1
        self.stdout.write(f"click rollups: {total} organizations rebuilt, {changed} rows written or deleted")
