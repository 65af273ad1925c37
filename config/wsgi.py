import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()

from carriers.wsgi import WebhookFastLane  # noqa: E402  (needs the apps loaded)

# Carrier callbacks take a lane of their own around Django's request path (carriers/wsgi.py).
application = WebhookFastLane(django_application)
