import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
_django = get_wsgi_application()

from django.conf import settings  # noqa: E402

from config.lanes import UnsizedBodies, application_with_lanes  # noqa: E402

# Django's request path as served: bodies without a Content-Length (chunked, HTTP/2) made readable.
django_application = UnsizedBodies(
    _django, memory_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, max_size=settings.UNSIZED_BODY_MAX_SIZE
)

# Short-link hosts and carrier callbacks take lanes of their own around Django (settings.WSGI_LANES,
# config/lanes.py).
application = application_with_lanes(django_application)
