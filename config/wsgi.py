import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()

from carriers.wsgi import WebhookFastLane  # noqa: E402  (need the apps loaded)
from shortener.wsgi import ShortLinkLane  # noqa: E402

# Short-link hosts and carrier callbacks take lanes of their own around Django (config/lanes.py).
application = ShortLinkLane(WebhookFastLane(django_application))
