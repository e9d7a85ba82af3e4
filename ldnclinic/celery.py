import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ldnclinic.settings")

app = Celery("ldnclinic")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def catch_up_on_start(sender=None, **kwargs) -> None:
    """A worker that starts (or restarts) plans and sends what is already due at once, instead of
    waiting for beat's first tick a minute later. Both tasks are idempotent."""
    app.send_task("titration.reminder_plan_all")
    app.send_task("titration.reminder_tick")
