"""Re-run post-processing dead letters now: give them a fresh retry schedule and run them at once."""

from django.core.management.base import BaseCommand, CommandError

from postprocessing.registry import all_processors
from postprocessing.services import dead_letters_requeue, processings_retry_due
from postprocessing.services.drain import UNKNOWN_TYPE


class Command(BaseCommand):
    help = "Re-run dead letters (all, or one processor's, or some events'). Failures go back to retrying."

    def add_arguments(self, parser):
        parser.add_argument("--processor", help="Only this processor's dead letters.")
        parser.add_argument("--ids", nargs="+", type=int, metavar="EVENT_ID", help="Only these events.")
        parser.add_argument("--queue-only", action="store_true", help="Requeue for the drain instead of running now.")

    def handle(self, *args, processor=None, ids=None, queue_only=False, **options):
        known = {p.name for p in all_processors()} | {UNKNOWN_TYPE}
        if processor is not None and processor not in known:
            raise CommandError(f"--processor: unknown processor {processor!r} (known: {', '.join(sorted(known))})")
        count = dead_letters_requeue(processor=processor, event_ids=ids)
        self.stdout.write(f"requeued {count} dead letter(s)")
        if queue_only or not count:
            return
        ok = failed = 0
        while True:
            done, bad = processings_retry_due(event_ids=ids, processor=processor)
            ok, failed = ok + done, failed + bad
            if done + bad == 0 or bad:  # stop on the first failure: those rows now wait for their backoff
                break
        self.stdout.write(f"succeeded {ok}, failed again {failed} (retrying with backoff)")
