"""The Celery app. Workers: `celery -A config worker -Q prepare,send,webhooks,postprocessing,default,bulk`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("parley")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Periodic work registers itself in each app's tasks module via app.conf.beat_schedule entries in
# config/beat.py, so the schedule is readable in one place.
from config.beat import BEAT_SCHEDULE  # noqa: E402

app.conf.beat_schedule = BEAT_SCHEDULE
