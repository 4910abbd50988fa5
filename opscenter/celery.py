"""The Celery application: Redis broker, schedule in the database (django-celery-beat)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opscenter.settings")

app = Celery("opscenter")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
