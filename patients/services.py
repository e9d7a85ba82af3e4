"""Writes for the opioid conflict engine: evaluate medications into flags, acknowledge, gate actions.

Rules live in patients/opioids.py (matcher) and patients/rules.py (washout); this module applies them
to the record. Every function is idempotent: evaluating twice leaves one flag per (medication, kind).
"""

import datetime as dt
import logging
from collections.abc import Iterable

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from ldnclinic.tasks_util import enqueue_on_commit

from . import opioids, rules
from .flag_models import (
    PRESCRIBER_KINDS,
    SEVERITY_OF_KIND,
    AcknowledgeReason,
    ClinicianTask,
    ConflictFlag,
    FlagKind,
    FlagStatus,
    GateAction,
    GateOutcome,
    SafetyGateEvent,
    TaskKind,
    TaskStatus,
    TestResult,
)
from .models import MedicationSource, MedicationStatement, Patient, PatientStatus, Role, Route
from .today import patient_today  # the one "today" for a patient; callers import it from here too

logger = logging.getLogger(__name__)

RELEASE_HINTS = {"ER": "ER", "patch": "patch", "depot": "depot"}
ROUTE_HINTS = {Route.TRANSDERMAL: "patch"}


class ConflictBlocked(Exception):
    """An action was stopped by the opioid gate; ``flags`` says which, ``reasons`` and ``message`` say why."""

    def __init__(
        self, action: str, flags: list[ConflictFlag], reasons: list[str] | None = None, rules: list[str] | None = None
    ):
        self.action = action
        self.flags = flags
        self.reasons = reasons or [f"{f.get_kind_display()}: {f.medication_text}" for f in flags]
        # The rule behind each reason: an open flag blocks LDN (domain.md 2.1); a start before the earliest safe
        # start is OPI-W1 (or OPI-W2 when a prescriber shortened the washout).
        self.rules = rules or ["2.1"] * len(self.reasons)
        self.message = (
            f"Blocked: {GateAction(action).label.lower()}: {'; '.join(self.reasons)}. "
            "A prescriber may override with a reason."
        )
        super().__init__(self.message)


def _kind_for(result: opioids.MatchResult) -> str | None:
    if result.klass == opioids.CONFLICT:
        return FlagKind.CONFLICT
    if result.klass == opioids.CAUTION:
        return FlagKind.CAUTION
    if result.klass == opioids.OPIOID_CONTEXT:
        return FlagKind.OPIOID_CONTEXT
    if result.klass == opioids.UNAVAILABLE:
        return FlagKind.UNAVAILABLE
    if result.klass == opioids.ANTAGONIST and any("duplicate antagonist" in n for n in result.notes):
        return FlagKind.DUPLICATE_ANTAGONIST
    return None  # none, or a rescue antagonist such as naloxone alone


def check_medication(medication: MedicationStatement) -> opioids.MatchResult:
    """The matcher on what the record says: the name as entered, its dose text, its release and route."""
    hint = RELEASE_HINTS.get(medication.release) or ROUTE_HINTS.get(medication.route)
    text = f"{medication.name} {medication.dose}".strip()
    return opioids.match(text, release_hint=hint)


def _washout(flag: ConflictFlag) -> rules.Washout:
    return rules.earliest_safe_start(
        last_dose=flag.last_dose_date,
        washout_days=flag.washout_days,
        shortened_to=flag.shortened_washout_days,
        shortened_reason=flag.shortened_reason or "",
        washout_group=flag.washout_group,
    )


def _resolve(flag: ConflictFlag, reason: str, now: dt.datetime) -> None:
    flag.status = FlagStatus.RESOLVED
    flag.resolved_reason = reason[:300]
    flag.resolved_at = now


def medication_evaluate(*, medication: MedicationStatement, today: dt.date | None = None) -> list[ConflictFlag]:
    """Bring the medication's flags in line with the catalog, the record and the date.

    Creates the flag for the current finding (or refreshes it), resolves flags that no longer apply
    (medication archived, name corrected, washout elapsed: OPI-W1) and reopens lapsed acknowledgements.
    """
    now = timezone.now()
    patient = medication.patient
    today = today or patient_today(patient)
    result = check_medication(medication)
    wanted = None if medication.deleted_at else _kind_for(result)
    if medication.source == MedicationSource.LAB and not medication.deleted_at:
        wanted = FlagKind.CONFLICT  # a positive urine drug screen is a conflict, whatever the name says (section 5)
    touched: list[ConflictFlag] = []
    with transaction.atomic():
        if list(result.ingredients) != medication.ingredients:  # OPI-4; update() sends no save signal
            MedicationStatement.all_objects.filter(pk=medication.pk).update(ingredients=list(result.ingredients))
            medication.ingredients = list(result.ingredients)
        if wanted:
            flag = _upsert_flag(medication, wanted, result, now)
            _apply_dates_and_expiry(flag, today, now)
            if flag.kind == FlagKind.CONFLICT and flag.status == FlagStatus.OPEN and _on_ldn(patient):
                _raise_opioid_plan_task(flag)
            touched.append(flag)
        stale = ConflictFlag.objects.select_for_update().filter(medication=medication).exclude(kind=wanted or "")
        for flag in stale.exclude(status=FlagStatus.RESOLVED):
            reason = (
                "medication archived from the list"
                if medication.deleted_at
                else f"re-evaluated: no longer a {flag.get_kind_display().lower()} (catalog {result.catalog_version})"
            )
            _resolve(flag, reason, now)
            flag.evaluated_at = now
            flag.save()
            touched.append(flag)
    return touched


def _upsert_flag(medication, kind: str, result: opioids.MatchResult, now) -> ConflictFlag:
    values = {
        "medication_text": result.name[:300],
        "ingredients": list(result.ingredients),
        "evidence": [str(e) for e in result.evidence],
        "notes": list(result.notes),
        "catalog_version": result.catalog_version or "unavailable",
        "release": result.release or "",
        "washout_group": result.washout_group or "",
        "washout_days": result.washout_days,
        "last_dose_date": medication.last_dose_date,
        "severity": SEVERITY_OF_KIND[kind],
        "evaluated_at": now,
    }
    try:
        with transaction.atomic():
            flag, created = ConflictFlag.objects.get_or_create(
                medication=medication, kind=kind, defaults={**values, "patient": medication.patient}
            )
    except IntegrityError:  # another worker inserted it between our lookup and insert
        created = False
    flag = ConflictFlag.objects.select_for_update().get(medication=medication, kind=kind)
    if created:
        return flag
    if flag.status == FlagStatus.ACKNOWLEDGED and flag.last_dose_date != medication.last_dose_date:
        flag.status = FlagStatus.OPEN  # a new last dose since the acknowledgement: it no longer covers it
        flag.notes = [*flag.notes, "last dose date changed after acknowledgement; reopened"]
    for field, value in values.items():
        setattr(flag, field, value)
    if flag.status == FlagStatus.RESOLVED:
        # Found again: reopen unless the washout has run out (checked next, from the current dates).
        flag.status = FlagStatus.OPEN
        flag.resolved_reason = ""
        flag.resolved_at = None
    return flag


def _on_ldn(patient: Patient) -> bool:
    return patient.status == PatientStatus.ACTIVE


def _raise_opioid_plan_task(flag: ConflictFlag) -> None:
    """OPI-W3: an opioid while on LDN is a plan for a clinician to make, not a date to compute."""
    ClinicianTask.objects.get_or_create(
        key=f"opioid-plan:{flag.pk}:{flag.last_dose_date or 'current'}",
        defaults={
            "patient": flag.patient,
            "kind": TaskKind.OPIOID_PLAN,
            "title": f"Opioid while on LDN: {flag.medication_text}",
            "detail": "Hold LDN and agree an opioid plan with the patient (OPI-W3). "
            "No automatic restart date is given.",
        },
    )


def _apply_dates_and_expiry(flag: ConflictFlag, today: dt.date, now: dt.datetime) -> None:
    if flag.kind == FlagKind.CONFLICT:
        washout = _washout(flag)
        flag.earliest_safe_start = washout.earliest_start
        flag.earliest_start_note = washout.reason[:300]
        if flag.status != FlagStatus.RESOLVED and washout.elapsed(today):
            _resolve(flag, f"washout complete on {washout.earliest_start:%Y-%m-%d}: {washout.reason}", now)
        elif flag.status != FlagStatus.RESOLVED and _on_ldn(flag.patient):
            # OPI-W3: a current opioid while on LDN gets no automatic date; a clinician task carries it.
            flag.earliest_safe_start = None
            flag.earliest_start_note = "on LDN: hold LDN and make an opioid plan (OPI-W3); no automatic date"
    if flag.status == FlagStatus.ACKNOWLEDGED and flag.expires_at and flag.expires_at <= now:
        flag.status = FlagStatus.OPEN  # the acknowledgement lapsed; history keeps who gave it
        flag.notes = [*flag.notes, f"acknowledgement expired {flag.expires_at:%Y-%m-%d %H:%M} UTC; reopened"]
    flag.save()


def patient_evaluate(*, patient: Patient, today: dt.date | None = None) -> list[ConflictFlag]:
    """Every medication on the list, archived ones included (so their flags resolve)."""
    flags: list[ConflictFlag] = []
    for medication in MedicationStatement.all_objects.filter(patient=patient).select_related("patient"):
        flags.extend(medication_evaluate(medication=medication, today=today))
    return flags


def open_flags(patient: Patient) -> list[ConflictFlag]:
    return list(
        ConflictFlag.objects.filter(patient=patient, status=FlagStatus.OPEN).select_related("medication").order_by("id")
    )


def _is_prescriber(user, clinic_id: int) -> bool:
    return bool(user) and user.memberships.filter(clinic_id=clinic_id, role=Role.PRESCRIBER, is_active=True).exists()


def flag_acknowledge(
    *,
    actor,
    flag: ConflictFlag,
    reason: str,
    note: str = "",
    expires_at: dt.datetime | None = None,
    shortened_washout_days: int | None = None,
    shortened_reason: str = "",
    uds_result: str = "",
    naloxone_challenge: str = "",
) -> ConflictFlag:
    """Acknowledge (or, for a conflict, override) a flag with a structured reason; OPI-W2 shortening, and the
    urine drug screen and naloxone challenge results recorded beside it (fields only: OPI-W2)."""
    if reason not in AcknowledgeReason.values:
        raise ValidationError({"reason": "Choose one of the listed reasons."})
    if reason == AcknowledgeReason.OTHER and not note.strip():
        raise ValidationError({"note": "Explain the reason."})
    if flag.kind in PRESCRIBER_KINDS and not _is_prescriber(actor, flag.clinic_id):
        raise PermissionDenied("Only a prescriber of this clinic can acknowledge an opioid conflict.")
    washout = _washout(flag)
    if shortened_washout_days is not None:
        if not _is_prescriber(actor, flag.clinic_id):
            raise PermissionDenied("Only a prescriber can shorten a washout (OPI-W2).")
        try:  # validates >= 7 days, <= the standard washout, and a reason
            washout = rules.earliest_safe_start(
                last_dose=flag.last_dose_date,
                washout_days=flag.washout_days,
                shortened_to=shortened_washout_days,
                shortened_reason=shortened_reason,
                washout_group=flag.washout_group,
            )
        except rules.WashoutError as exc:
            field = "shortened_reason" if "reason" in str(exc) else "shortened_washout_days"
            raise ValidationError({field: str(exc)}) from None
    if reason == AcknowledgeReason.WASHOUT_CONFIRMED and flag.kind == FlagKind.CONFLICT:
        _check_washout_complete(washout, patient_today(flag.patient))
    now = timezone.now()
    with transaction.atomic():
        flag = ConflictFlag.objects.select_for_update().get(pk=flag.pk)
        flag.status = FlagStatus.ACKNOWLEDGED
        flag.acknowledged_reason = reason
        flag.acknowledged_note = note
        flag.acknowledged_by = actor
        flag.acknowledged_at = now
        flag.expires_at = expires_at
        if shortened_washout_days is not None:
            flag.shortened_washout_days = shortened_washout_days
            flag.shortened_reason = shortened_reason.strip()
        for field, value in (("uds_result", uds_result), ("naloxone_challenge", naloxone_challenge)):
            if value not in TestResult.values:
                raise ValidationError({field: "Choose negative, positive or not done."})
            if value:
                setattr(flag, field, value)
        flag._change_reason = f"acknowledged: {reason}"
        _apply_dates_and_expiry(flag, patient_today(flag.patient), now)
    return flag


def _check_washout_complete(washout: rules.Washout, today: dt.date) -> None:
    """OPI-W2: "washout complete" is a fact of dates, not a checkbox."""
    if washout.earliest_start is None:
        raise ValidationError(
            {
                "reason": f"The washout cannot be confirmed: there is no earliest safe start ({washout.reason}). "
                "Record the last dose date, or a prescriber clears it by clinical judgement."
            }
        )
    if today < washout.earliest_start:
        raise ValidationError(
            {
                "reason": f"The washout is not complete: the earliest safe start is {washout.earliest_start:%d %b %Y} "
                f"({washout.reason}). It can be confirmed from that day; a prescriber may shorten it to no less "
                f"than {rules.MINIMUM_WASHOUT_DAYS} days with a reason (OPI-W2)."
            }
        )


def flag_override(*, actor, flag: ConflictFlag, note: str, expires_at: dt.datetime | None = None) -> ConflictFlag:
    """A prescriber proceeds although the flag stands (clinical judgement, with the reason). The flag stays on
    the record as acknowledged; a conflict's earliest safe start still holds at the gate (OPI-W1)."""
    if not _is_prescriber(actor, flag.clinic_id):
        raise PermissionDenied("Only a prescriber of this clinic can override a flag.")
    if not note.strip():
        raise ValidationError({"note": "Say why you override this flag (it is kept in the record)."})
    return flag_acknowledge(
        actor=actor, flag=flag, reason=AcknowledgeReason.CLINICAL_JUDGEMENT, note=note, expires_at=expires_at
    )


RESOLVE_REASONS = {AcknowledgeReason.ENTERED_IN_ERROR: "entered in error"}


def flag_resolve(*, actor, flag: ConflictFlag, reason: str, note: str = "") -> ConflictFlag:
    """A flag about a medication entered in error: the entry is archived from the list (soft delete, with the
    reason) and the engine resolves its flags. A medicine the patient really took is never resolved by hand:
    its washout elapses (OPI-W1), or it is acknowledged."""
    if reason not in RESOLVE_REASONS:
        raise ValidationError({"reason": "A flag is resolved only when its medication was entered in error."})
    if flag.kind in PRESCRIBER_KINDS and not _is_prescriber(actor, flag.clinic_id):
        raise PermissionDenied("Only a prescriber of this clinic can resolve an opioid conflict.")
    if not _is_clinical(actor, flag.clinic_id):
        raise PermissionDenied("Only a prescriber or nurse of this clinic can resolve a flag.")
    why = f"{RESOLVE_REASONS[reason]}" + (f": {note.strip()}" if note.strip() else "")
    with transaction.atomic():
        medication = MedicationStatement.objects.select_for_update().get(pk=flag.medication_id)
        medication._history_user = actor
        medication._change_reason = f"archived: {why}"[:100]
        medication.delete()  # soft delete; the engine resolves the flags ("medication archived from the list")
        medication_evaluate(medication=MedicationStatement.all_objects.get(pk=medication.pk))
    flag.refresh_from_db()
    return flag


def _is_clinical(user, clinic_id: int) -> bool:
    return (
        bool(user)
        and user.memberships.filter(
            clinic_id=clinic_id, role__in=[Role.PRESCRIBER, Role.NURSE], is_active=True
        ).exists()
    )


# Closing one of these lifts a block on the patient's LDN (a liver review blocks step-ups, LAB-2).
PRESCRIBER_TASKS = frozenset({TaskKind.LAB_REVIEW})


def task_close(*, actor, task: ClinicianTask, status: str = TaskStatus.DONE, note: str = "") -> ClinicianTask:
    """Close a clinician task as done or cancelled, saying what was done. A liver review (LAB-2) lifts a
    step-up block, so only a prescriber closes it, and must say what they reviewed."""
    if status not in (TaskStatus.DONE, TaskStatus.CANCELLED):
        raise ValidationError({"status": "Close the task as done or cancelled."})
    if task.kind in PRESCRIBER_TASKS and not _is_prescriber(actor, task.clinic_id):
        raise PermissionDenied("Only a prescriber of this clinic can close this review: it lifts a step-up block.")
    if not _is_clinical(actor, task.clinic_id):
        raise PermissionDenied("Only a prescriber or nurse of this clinic can close a task.")
    if not note.strip() and (task.kind in PRESCRIBER_TASKS or status == TaskStatus.CANCELLED):
        raise ValidationError({"note": "Say what you reviewed or why the task is cancelled (kept in the record)."})
    with transaction.atomic():
        task = ClinicianTask.objects.select_for_update().get(pk=task.pk)
        if task.status != TaskStatus.OPEN:
            raise ValidationError(f"This task is already {task.get_status_display().lower()}.")
        task.status = status
        task.completed_by = actor
        task.completed_at = timezone.now()
        task.completed_note = note.strip()
        task._history_user = actor
        task._change_reason = f"{status}: {note.strip()}"[:100]
        task.save()
    return task


# Who may move a patient between statuses by hand. Starting LDN (active) is plan_start's: it needs a plan.
MANUAL_STATUSES = frozenset({PatientStatus.SCREENING, PatientStatus.PAUSED, PatientStatus.DISCONTINUED})


def patient_set_status(*, actor, patient: Patient, status: str, reason: str = "") -> Patient:
    """Screening, paused or discontinued, with the reason in the history (discontinued: also on the record).
    "Active" (on LDN) comes only from starting a plan, and a patient on an active plan is taken off it by
    completing or discontinuing the plan, so the plan and the status never disagree."""
    if not _is_clinical(actor, patient.clinic_id):
        raise PermissionDenied("Only a prescriber or nurse of this clinic can change a patient's status.")
    if status not in PatientStatus.values:
        raise ValidationError({"status": "Choose one of the listed statuses."})
    if status not in MANUAL_STATUSES:
        raise ValidationError({"status": "A patient becomes active when their titration plan is started."})
    if not reason.strip():
        raise ValidationError({"reason": "Say why (it is kept in the record)."})
    from django.apps import apps  # titration is above patients: look its model up, do not import it

    plan_model = apps.get_model("titration", "TitrationPlan")
    if plan_model.objects.filter(patient=patient, status="active").exists():
        raise ValidationError(
            {"status": "The patient is on an active plan: hold, complete or discontinue the plan instead."}
        )
    with transaction.atomic():
        patient = Patient.objects.select_for_update().get(pk=patient.pk)
        patient.status = status
        patient.discontinued_reason = reason.strip() if status == PatientStatus.DISCONTINUED else ""
        patient._history_user = actor
        patient._change_reason = f"status {status}: {reason.strip()}"[:100]
        patient.full_clean()
        patient.save()
    return patient


def _before_safe_start(patient: Patient, start_on: dt.date) -> list[ConflictFlag]:
    """Acknowledged conflicts whose earliest safe start (OPI-W1, or as shortened by OPI-W2) is after
    ``start_on``: acknowledging a conflict never moves its date."""
    return list(
        ConflictFlag.objects.filter(
            patient=patient,
            kind=FlagKind.CONFLICT,
            status=FlagStatus.ACKNOWLEDGED,
            earliest_safe_start__gt=start_on,
        )
        .select_related("medication")
        .order_by("id")
    )


def opioid_gate(
    *, actor, patient: Patient, action: str, override_reason: str = "", start_on: dt.date | None = None
) -> SafetyGateEvent | None:
    """Stop ``action`` while the patient has open flags, or (starting LDN: activating a prescription or
    starting a plan) when the LDN start date is before a conflict's earliest safe start, unless a
    prescriber overrides with a reason.

    Both outcomes are written to the record. Call it outside the action's transaction so that a
    block is kept even though the action is not done.
    """
    flags = open_flags(patient)
    reasons = [f"{f.get_kind_display()}: {f.medication_text}" for f in flags]
    rule_ids = ["2.1"] * len(flags)
    if action in (GateAction.ACTIVATE_PRESCRIPTION, GateAction.START_PLAN):
        start_on = start_on or patient_today(patient)
        for flag in _before_safe_start(patient, start_on):
            flags.append(flag)
            rule_ids.append("OPI-W2" if flag.shortened_washout_days else "OPI-W1")
            reasons.append(
                f"LDN start {start_on:%d %b %Y} is before the earliest safe start {flag.earliest_safe_start:%d %b %Y} "
                f"after {flag.medication_text} ({flag.earliest_start_note or 'OPI-W1'})"
            )
    if not flags:
        return None
    summary = "; ".join(reasons)
    overriding = bool(override_reason.strip()) and _is_prescriber(actor, patient.clinic_id)
    with transaction.atomic():
        event = SafetyGateEvent.objects.create(
            patient=patient,
            action=action,
            outcome=GateOutcome.OVERRIDDEN if overriding else GateOutcome.BLOCKED,
            summary=summary,
            reason=override_reason.strip() if overriding else "",
            actor=actor,
        )
        event.flags.set(flags)
    if not overriding:
        raise ConflictBlocked(action, flags, reasons, rule_ids)
    logger.warning("opioid gate overridden by %s for patient %s: %s", actor, patient.pk, override_reason)
    return event


def enqueue_patient_evaluation(patient_ids: Iterable[int]) -> None:
    from .tasks import evaluate_patient  # tasks import services; import late to keep one direction

    for patient_id in set(patient_ids):
        enqueue_on_commit(evaluate_patient, patient_id)
