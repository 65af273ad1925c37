"""Rebuild conversation and blast derived fields from the messages (after a migration or a bug)."""

from django.core.management.base import BaseCommand
from tqdm import tqdm

from messaging.services.recompute import RECOMPUTE_BATCH_SIZE, derived_recompute


class Command(BaseCommand):
    help = "Recompute Conversation.last_message_* and Blast counters/completion from messages, in batches."

    def add_arguments(self, parser):
        parser.add_argument("--organization", type=int, help="Organization id.")
        parser.add_argument("--line", type=int, help="Line id.")
        parser.add_argument("--blast", type=int, help="Blast id (and the conversations of its messages).")
        parser.add_argument("--only", choices=["conversations", "blasts"], help="Rebuild only one kind.")
        parser.add_argument("--batch-size", type=int, default=RECOMPUTE_BATCH_SIZE)
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **o):
        bars = []

        def progress(label, total):
            bar = tqdm(total=total, desc=label, unit="row", disable=o["no_progress"], file=self.stderr)
            bars.append(bar)
            return bar.update

        result = derived_recompute(
            organization_id=o["organization"],
            line_id=o["line"],
            blast_id=o["blast"],
            conversations=o["only"] in (None, "conversations"),
            blasts=o["only"] in (None, "blasts"),
            batch_size=o["batch_size"],
            progress=progress,
        )
        for bar in bars:
            bar.close()
        self.stdout.write(
            f"conversations: {result.conversations} checked, {result.conversations_changed} changed; "
            f"blasts: {result.blasts} recounted"
        )
