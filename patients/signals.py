"""When a medication is added or changed, check it at once (the user sees the flag in the same
request) and again in the background after commit (idempotent; catches anything the request missed)."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from ldnclinic.tasks_util import enqueue_on_commit

from . import lab_rules, labs, services, tasks
from .flag_models import ClinicianTask
from .models import LabResult, LabTest, MedicationStatement, Patient


@receiver(post_save, sender=MedicationStatement, dispatch_uid="medication-opioid-check")
def medication_saved(sender, instance: MedicationStatement, raw: bool = False, **kwargs) -> None:
    if raw:  # loading fixtures
        return
    services.medication_evaluate(medication=instance)
    enqueue_on_commit(tasks.evaluate_medication, instance.pk)


@receiver(post_save, sender=LabResult, dispatch_uid="lab-result-monitoring")
def lab_result_saved(sender, instance: LabResult, raw: bool = False, **kwargs) -> None:
    """LAB-2 tasks and the urine drug screen's conflict, in the transaction that saved the result."""
    if raw:
        return
    if instance.test == LabTest.UDS:
        labs.screen_evaluate(result=instance)
    if instance.test in lab_rules.LIVER_TESTS or instance.deleted_at is not None:
        labs.labs_evaluate(patient=instance.patient)


@receiver(post_save, sender=Patient, dispatch_uid="patient-hepatic-impairment")
def patient_saved(sender, instance: Patient, raw: bool = False, created: bool = False, **kwargs) -> None:
    """LAB-2: known severe hepatic impairment raises a review that blocks step-ups; clearing the flag
    cancels it. Only when the flag is set, or a review for it may be open, so ordinary saves stay cheap."""
    if raw or (created and not instance.severe_hepatic_impairment):
        return
    if instance.severe_hepatic_impairment or ClinicianTask.objects.filter(key=f"lab2-hepatic:{instance.pk}").exists():
        labs.labs_evaluate(patient=instance)
