"""Celery tasks for the reminder outbox: thin, idempotent, taking ids."""

import logging

from celery import shared_task

from patients.models import Patient

from . import reminders

logger = logging.getLogger(__name__)


@shared_task(name="titration.reminder_tick")
def reminder_tick() -> int:
    """Beat, every REMINDER_TICK_SECONDS (a minute by default): send what is due. Safe to run twice
    at once, or twice in a row after a redelivery: rows are claimed and marked by compare-and-set."""
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
