"""Celery tasks for the reminder outbox: thin, idempotent, taking ids."""

import logging

from celery import shared_task
from django.conf import settings

from patients.models import Patient

from . import efficacy, outlook, reminders

logger = logging.getLogger(__name__)


@shared_task(name="titration.reminder_tick", bind=True)
def reminder_tick(self) -> int:
    """Beat, every REMINDER_TICK_SECONDS (a minute by default): send what is due. Safe to run twice
    at once, or twice in a row after a redelivery: rows are claimed and marked by compare-and-set.

    A tick sends at most REMINDER_BATCH_SIZE. When more than that is due (9 pm in one time zone can
    make thousands due together), it first enqueues another tick on its own queue, which another
    worker process starts beside it and which does the same: the backlog is swept by every process
    at once instead of one batch per beat interval, and each task stays short."""
    if not self.request.is_eager and reminders.has_backlog(settings.REMINDER_BATCH_SIZE):
        queue = (self.request.delivery_info or {}).get("routing_key")
        try:
            self.apply_async(queue=queue, retry=False)
        except Exception:  # noqa: BLE001 - the broker is away; beat's next tick carries on
            logger.exception("could not enqueue the next reminder tick; beat's next tick will continue")
    sent = reminders.tick()
    if sent:
        logger.info("reminder tick sent %s", sent)
    return sent


@shared_task(name="titration.reminder_plan_all")
def reminder_plan_all() -> int:
    return reminders.plan_all()


@shared_task(name="titration.reminder_plan_patient")
def reminder_plan_patient(patient_id: int) -> None:
    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is not None:
        reminders.plan_patient(patient)


@shared_task(name="titration.efficacy_reviews")
def efficacy_reviews() -> int:
    """Beat, daily: EFF-1 review tasks for patients reaching 12 weeks on the maintenance dose."""
    return efficacy.raise_efficacy_reviews()


@shared_task(name="titration.outlook_rebuild")
def outlook_rebuild() -> int:
    """Beat, daily: every plan's stored outlook from the plans themselves (the worklist counts by it; each
    change already rewrites its own, so this only mends what a bulk load or a bug left behind)."""
    return outlook.rebuild()
