"""Keep each patient's pending reminders in line with their plan, inside the same transaction as the
change (a rolled-back change leaves no reminder), whatever path the change took (services, admin,
seed data). Titration subscribes to patients' models; patients never imports titration."""

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from patients.flag_models import ClinicianTask, ConflictFlag, TaskKind
from patients.models import Patient
from patients.today import patient_today
from symptoms.models import SideEffectReport

from . import outlook, reminders
from .models import CompoundedPrescription, Pharmacy, TitrationPlan, TitrationStep


def _replan(patient) -> None:
    if patient is not None and patient.pk:
        reminders.plan_patient(patient)


@receiver(post_save, sender=TitrationPlan, dispatch_uid="plan-reminders")
def plan_saved(sender, instance: TitrationPlan, raw: bool = False, **kwargs) -> None:
    if not raw:
        _replan(instance.patient)


@receiver(post_save, sender=TitrationStep, dispatch_uid="step-reminders")
def step_saved(sender, instance: TitrationStep, raw: bool = False, **kwargs) -> None:
    if not raw:
        _replan(instance.plan.patient)


@receiver(post_save, sender=Patient, dispatch_uid="patient-reminders")
def patient_saved(sender, instance: Patient, raw: bool = False, **kwargs) -> None:
    if not raw:  # preferences, time zone or status changed
        _replan(instance)


@receiver(post_save, sender=ConflictFlag, dispatch_uid="flag-reminders")
def flag_saved(sender, instance: ConflictFlag, raw: bool = False, **kwargs) -> None:
    if not raw:  # REM-5: the washout countdown follows the earliest safe start
        _replan(instance.patient)


@receiver(post_save, sender=ClinicianTask, dispatch_uid="task-reminders")
def task_saved(sender, instance: ClinicianTask, raw: bool = False, **kwargs) -> None:
    # SE-4: an open severe side-effect review pauses step-up reminders; closing it lets them come back.
    if not raw and instance.kind == TaskKind.SIDE_EFFECT:
        _replan(instance.patient)


@receiver(post_save, sender=SideEffectReport, dispatch_uid="side-effects-steer-plan")
def side_effect_saved(sender, instance: SideEffectReport, raw: bool = False, **kwargs) -> None:
    """SE-1..SE-5: once the check-in and all its side effects are committed, let them steer the plan.
    symptoms sends; titration listens (symptoms never imports titration)."""
    if raw:
        return
    patient = instance.checkin.patient

    def apply() -> None:
        from . import services  # services import reminders, which import these models

        services.apply_side_effects(patient=patient, today=patient_today(patient))

    transaction.on_commit(apply)


# The stored outlook the worklist counts by (titration/outlook.py), rewritten in the change's transaction.


@receiver(post_save, sender=TitrationPlan, dispatch_uid="plan-outlook")
def plan_outlook(sender, instance: TitrationPlan, raw: bool = False, **kwargs) -> None:
    if not raw:
        outlook.refresh([instance.pk])


@receiver(post_save, sender=TitrationStep, dispatch_uid="step-outlook")
def step_outlook(sender, instance: TitrationStep, raw: bool = False, **kwargs) -> None:
    if not raw:
        outlook.refresh([instance.plan_id])


@receiver(post_save, sender=CompoundedPrescription, dispatch_uid="prescription-outlook")
def prescription_outlook(sender, instance: CompoundedPrescription, raw: bool = False, **kwargs) -> None:
    if not raw:  # activated, completed, cancelled, refills: every active plan of the patient counts on it
        outlook.refresh_patients([instance.patient_id])


@receiver(post_save, sender=Pharmacy, dispatch_uid="pharmacy-outlook")
def pharmacy_outlook(sender, instance: Pharmacy, raw: bool = False, **kwargs) -> None:
    if not raw:  # a new lead time moves every reorder date of its prescriptions
        patients = CompoundedPrescription.objects.filter(pharmacy=instance).values_list("patient_id", flat=True)
        outlook.refresh_patients(set(patients))
