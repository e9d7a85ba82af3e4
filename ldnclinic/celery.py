import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ldnclinic.settings")

app = Celery("ldnclinic")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
