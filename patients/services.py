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
)
from .models import MedicationSource, MedicationStatement, Patient, PatientStatus, Role, Route
from .today import patient_today  # the one "today" for a patient; callers import it from here too

logger = logging.getLogger(__name__)

RELEASE_HINTS = {"ER": "ER", "patch": "patch", "depot": "depot"}
ROUTE_HINTS = {Route.TRANSDERMAL: "patch"}


class ConflictBlocked(Exception):
    """An action was stopped by open flags; ``flags`` says which, ``message`` says why."""

    def __init__(self, action: str, flags: list[ConflictFlag]):
        self.action = action
        self.flags = flags
        lines = "; ".join(f"{f.get_kind_display()}: {f.medication_text}" for f in flags)
        self.message = (
            f"Blocked: {GateAction(action).label.lower()} needs these flags resolved or acknowledged first "
            f"({lines}). A prescriber may override with a reason."
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
) -> ConflictFlag:
    """Acknowledge (or, for a conflict, override) a flag with a structured reason; OPI-W2 shortening."""
    if reason not in AcknowledgeReason.values:
        raise ValidationError({"reason": "Choose one of the listed reasons."})
    if reason == AcknowledgeReason.OTHER and not note.strip():
        raise ValidationError({"note": "Explain the reason."})
    if flag.kind in PRESCRIBER_KINDS and not _is_prescriber(actor, flag.clinic_id):
        raise PermissionDenied("Only a prescriber of this clinic can acknowledge an opioid conflict.")
    if shortened_washout_days is not None:
        if not _is_prescriber(actor, flag.clinic_id):
            raise PermissionDenied("Only a prescriber can shorten a washout (OPI-W2).")
        try:  # validates >= 7 days, <= the standard washout, and a reason
            rules.earliest_safe_start(
                last_dose=flag.last_dose_date,
                washout_days=flag.washout_days,
                shortened_to=shortened_washout_days,
                shortened_reason=shortened_reason,
            )
        except rules.WashoutError as exc:
            raise ValidationError({"shortened_washout_days": str(exc)}) from None
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
        flag._change_reason = f"acknowledged: {reason}"
        _apply_dates_and_expiry(flag, patient_today(flag.patient), now)
    return flag


def opioid_gate(*, actor, patient: Patient, action: str, override_reason: str = "") -> SafetyGateEvent | None:
    """Stop ``action`` while the patient has open flags, unless a prescriber overrides with a reason.

    Both outcomes are written to the record. Call it outside the action's transaction so that a
    block is kept even though the action is not done.
    """
    flags = open_flags(patient)
    if not flags:
        return None
    summary = "; ".join(f"{f.get_kind_display()}: {f.medication_text}" for f in flags)
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
        raise ConflictBlocked(action, flags)
    logger.warning("opioid gate overridden by %s for patient %s: %s", actor, patient.pk, override_reason)
    return event


def enqueue_patient_evaluation(patient_ids: Iterable[int]) -> None:
    from .tasks import evaluate_patient  # tasks import services; import late to keep one direction

    for patient_id in set(patient_ids):
        enqueue_on_commit(evaluate_patient, patient_id)
