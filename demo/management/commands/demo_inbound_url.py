"""manage.py demo_inbound_url — where the sandbox carrier posts the demo line's inbound texts.

`make run` (config/devserver.py) reads it to start the sandbox with SANDBOX_INBOUND_URL, so a text
"sent" from a customer's phone with POST /_sandbox/inbound reaches Parley. The URL holds the demo
account's webhook secret: it is for the local sandbox, printed only when asked for.
"""

from django.core.management.base import BaseCommand, CommandError

from demo.services import demo_inbound_url


class Command(BaseCommand):
    help = "Print the demo sandbox carrier account's inbound webhook URL (run seed_demo first)."

    def handle(self, *args, **options):
        url = demo_inbound_url()
        if url is None:
            raise CommandError("No demo sandbox carrier account: run manage.py seed_demo first.")
        self.stdout.write(url)
