"""Writes for laboratory monitoring (domain.md section 5), run whenever a lab result or the patient's
hepatic impairment flag is saved (patients.signals), so every way in (admin, API, import) is covered.

- LAB-2 findings become clinician tasks, one per finding (keyed): an alert above 3x ULN, a review
  that blocks step-ups above 5x ULN, for a result with no ULN to compare against, or for known severe
  hepatic impairment. The block lasts while its review task is open: a clinician closes it (done, with
  a note) after reviewing. A later normal result does not close it by itself; archiving the result
  (entered in error) cancels the tasks it raised.
- A positive urine drug screen puts an entry on the medication list, which the conflict engine flags
  as a CONFLICT (patients.services.medication_evaluate); archiving the result archives the entry and
  so resolves the flag.
"""

from django.db import transaction
from django.utils import timezone

from . import lab_rules
from .flag_models import ClinicianTask, TaskKind, TaskStatus
from .models import LabResult, LabTest, MedicationSource, MedicationStatement, Patient, ScreenResult
from .today import patient_today

TASK_KIND = {lab_rules.ALERT: TaskKind.LAB_ALERT, lab_rules.BLOCK: TaskKind.LAB_REVIEW}


def _liver_results(patient: Patient) -> list[lab_rules.LiverResult]:
    rows = LabResult.objects.filter(patient=patient, test__in=lab_rules.LIVER_TESTS).order_by("collected_at", "pk")
    return [
        lab_rules.LiverResult(
            result_id=r.pk,
            test=r.test,
            value=r.value,
            unit=r.unit,
            uln=r.ref_high,
            collected_on=r.collected_at.astimezone(patient.zone).date(),
        )
        for r in rows
    ]


def liver_check(patient: Patient) -> lab_rules.LiverCheck:
    return lab_rules.liver_check(
        _liver_results(patient), severe_hepatic_impairment=patient.severe_hepatic_impairment, patient_id=patient.pk
    )


def labs_evaluate(*, patient: Patient) -> lab_rules.LiverCheck:
    """Raise a task for each current LAB-2 finding (idempotent), and cancel the open tasks of findings
    whose cause was taken away: an archived result, or a hepatic impairment flag cleared."""
    check = liver_check(patient)
    now = timezone.now()
    with transaction.atomic():
        for finding in check.findings:
            ClinicianTask.objects.get_or_create(
                key=finding.key,
                defaults={
                    "clinic_id": patient.clinic_id,
                    "patient": patient,
                    "kind": TASK_KIND[finding.level],
                    "title": finding.text[:200],
                    "detail": finding.text,
                    "due_on": patient_today(patient, now),
                },
            )
        archived = LabResult.all_objects.filter(patient=patient, deleted_at__isnull=False).values_list("pk", flat=True)
        gone = [f"lab2-{kind}:{pk}" for pk in archived for kind in ("review", "alert")]
        if not patient.severe_hepatic_impairment:
            gone.append(f"lab2-hepatic:{patient.pk}")
        for task in ClinicianTask.objects.filter(key__in=gone, status=TaskStatus.OPEN):
            task.status = TaskStatus.CANCELLED
            task.completed_at = now
            task.completed_note = (
                "hepatic impairment flag cleared on the patient's record"
                if task.key.startswith("lab2-hepatic")
                else "lab result archived (entered in error)"
            )
            task._change_reason = task.completed_note
            task.save()
    return check


def lab_step_up_blocks(patient_id: int) -> list[str]:
    """LAB-2: why step-ups are blocked now (the open review tasks), for the step-up rule."""
    return lab_step_up_blocks_for([patient_id]).get(patient_id, [])


def lab_step_up_blocks_for(patient_ids) -> dict[int, list[str]]:
    """``lab_step_up_blocks`` for many patients in one query: {patient id: reasons}."""
    tasks = ClinicianTask.objects.filter(
        patient_id__in=list(patient_ids), kind=TaskKind.LAB_REVIEW, status=TaskStatus.OPEN
    )
    out: dict[int, list[str]] = {}
    for patient_id, detail in tasks.order_by("created_at", "pk").values_list("patient_id", "detail"):
        out.setdefault(patient_id, []).append(detail)
    return out


def screen_evaluate(*, result: LabResult) -> MedicationStatement | None:
    """A positive urine drug screen is an opioid CONFLICT (domain.md section 5): it goes on the
    medication list as an entry to verify, which the conflict engine flags on save."""
    if result.test != LabTest.UDS:
        return None
    name = f"Opioid on urine drug screen {result.collected_at:%Y-%m-%d} #{result.pk}: verify"
    # Found by the result's id, not the whole name: a corrected collection date renames the entry.
    entry = MedicationStatement.all_objects.filter(
        patient=result.patient, source=MedicationSource.LAB, name__endswith=f" #{result.pk}: verify"
    ).first()
    if result.result != ScreenResult.POSITIVE or result.deleted_at is not None:
        if entry is not None and entry.deleted_at is None:
            entry.delete()  # soft: the flag resolves with "medication archived from the list"
        return entry
    if entry is None:
        return MedicationStatement.objects.create(
            clinic_id=result.clinic_id, patient=result.patient, source=MedicationSource.LAB, name=name
        )
    if entry.deleted_at is not None or entry.name != name:
        entry.name, entry.deleted_at = name, None
        entry.save()  # the conflict engine runs again: the flag reopens, or follows the new name
    return entry
