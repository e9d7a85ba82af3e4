"""Background work for the opioid conflict engine: thin tasks that take ids and call services."""

import logging

from celery import shared_task
from django.db.models import Q

from . import services
from .models import MedicationStatement, Patient, PatientStatus

logger = logging.getLogger(__name__)


@shared_task(name="patients.evaluate_medication")
def evaluate_medication(medication_id: int) -> None:
    medication = MedicationStatement.all_objects.select_related("patient").filter(pk=medication_id).first()
    if medication is not None:
        services.medication_evaluate(medication=medication)


@shared_task(name="patients.evaluate_patient")
def evaluate_patient(patient_id: int) -> None:
    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is not None:
        services.patient_evaluate(patient=patient)


@shared_task(name="patients.opioid_sweep")
def opioid_sweep() -> int:
    """Nightly: re-evaluate every screening and active patient (catalog changes, washouts elapsing,
    acknowledgements expiring). One patient's failure is logged and does not stop the others."""
    count = 0
    patients = Patient.objects.filter(Q(status=PatientStatus.SCREENING) | Q(status=PatientStatus.ACTIVE))
    for patient_id in patients.values_list("pk", flat=True).iterator():
        try:
            evaluate_patient(patient_id)
            count += 1
        except Exception:  # noqa: BLE001 - keep sweeping; the failure is in the log
            logger.exception("opioid sweep failed for patient %s", patient_id)
    logger.info("opioid sweep evaluated %s patients", count)
    return count
