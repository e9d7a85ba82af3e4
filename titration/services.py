"""Writes for prescriptions and plans. Each clinical action passes the opioid gate first (domain.md
2.1: an open CONFLICT blocks LDN start and step-up), which a prescriber may override with a reason.

The gate runs before the action's transaction, so a blocked attempt stays in the record even though
the action itself is not done.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from ldnclinic.db import save_with_history
from patients import services as patient_services
from patients.flag_models import ClinicianTask, GateAction, TaskKind
from patients.models import PatientStatus, Role

from . import content, reminders, rules, supply
from .models import (
    CompoundedPrescription,
    PlanStatus,
    PrescriptionStatus,
    Reminder,
    StepStatus,
    TitrationPlan,
    TitrationProtocol,
    TitrationStep,
)
from .reminder_models import ReminderKind, ReminderStatus


def require_prescriber(actor, clinic_id: int) -> None:
    if not actor.memberships.filter(clinic_id=clinic_id, role=Role.PRESCRIBER, is_active=True).exists():
        raise PermissionDenied("Only a prescriber of this clinic can do this.")


def gate(*, actor, patient, action: str, override_reason: str = "", start_on: dt.date | None = None) -> None:
    """Check the patient's medications now (not only when the last sweep ran), then apply the gate."""
    patient_services.patient_evaluate(patient=patient)
    patient_services.opioid_gate(
        actor=actor, patient=patient, action=action, override_reason=override_reason, start_on=start_on
    )


def prescription_activate(
    *, actor, prescription: CompoundedPrescription, override_reason: str = ""
) -> CompoundedPrescription:
    require_prescriber(actor, prescription.clinic_id)
    if prescription.status == PrescriptionStatus.ACTIVE:
        return prescription
    if prescription.status != PrescriptionStatus.DRAFT:
        raise ValidationError(f"A {prescription.get_status_display().lower()} prescription cannot be activated.")
    gate(
        actor=actor,
        patient=prescription.patient,
        action=GateAction.ACTIVATE_PRESCRIPTION,
        override_reason=override_reason,
        start_on=prescription.start_on,
    )
    with transaction.atomic():
        prescription.status = PrescriptionStatus.ACTIVE
        prescription.full_clean()
        save_with_history(
            prescription, actor, f"activated over open flags: {override_reason}" if override_reason else "activated"
        )
        patient_services.enqueue_patient_evaluation([prescription.patient_id])
    return prescription


def _end_prescription(*, actor, prescription: CompoundedPrescription, status: str, reason: str, allowed: tuple):
    require_prescriber(actor, prescription.clinic_id)
    reason = _require_reason(reason)
    with transaction.atomic():
        prescription = CompoundedPrescription.objects.select_for_update().get(pk=prescription.pk)
        if prescription.status not in allowed:
            raise ValidationError(
                f"A {prescription.get_status_display().lower()} prescription cannot be "
                f"{PrescriptionStatus(status).label.lower()}."
            )
        prescription.status = status
        save_with_history(prescription, actor, f"{PrescriptionStatus(status).label.lower()}: {reason}")
        reminders.plan_patient(prescription.patient)  # the refill reminder follows the active prescription
    return prescription


def prescription_complete(*, actor, prescription: CompoundedPrescription, reason: str) -> CompoundedPrescription:
    """The supply has been used up or replaced by a newer prescription."""
    return _end_prescription(
        actor=actor,
        prescription=prescription,
        status=PrescriptionStatus.COMPLETED,
        reason=reason,
        allowed=(PrescriptionStatus.ACTIVE,),
    )


def prescription_cancel(*, actor, prescription: CompoundedPrescription, reason: str) -> CompoundedPrescription:
    """Withdrawn (written in error, not dispensed, stopped). Step-ups then need another active one (RX-2)."""
    return _end_prescription(
        actor=actor,
        prescription=prescription,
        status=PrescriptionStatus.CANCELLED,
        reason=reason,
        allowed=(PrescriptionStatus.DRAFT, PrescriptionStatus.ACTIVE),
    )


def plan_start(*, actor, plan: TitrationPlan, start: dt.date, override_reason: str = "") -> TitrationPlan:
    """Start a drafted plan on ``start``: step 1 becomes the current dose, the patient is on LDN (active),
    and their reminders are planned, all in one transaction.

    It needs an active prescription that can make step 1 (RX-2), no other active plan, and the opioid
    gate: open flags, and a start before a conflict's earliest safe start (OPI-W1/W2), block unless a
    prescriber overrides with a reason. Blocks and overrides are both recorded.
    """
    require_prescriber(actor, plan.clinic_id)
    plan = TitrationPlan.objects.select_related("patient").get(pk=plan.pk)
    if plan.status != PlanStatus.DRAFT:
        raise ValidationError(f"A {plan.get_status_display().lower()} plan cannot be started.")
    first = plan.steps.filter(deleted_at__isnull=True).order_by("sequence").first()
    if first is None:
        raise ValidationError("The plan has no steps.")
    rx = content.active_prescription(plan)
    if rx is None:
        raise ValidationError("Activate an LDN prescription for this patient before starting the plan.")
    if content.measured(first.dose_mg, rx) is None:
        raise ValidationError(
            f"The active prescription ({rx}) cannot make the first step, {content.fmt_mg(first.dose_mg)} (RX-2): "
            "write one that can before starting."
        )
    if TitrationPlan.objects.filter(patient_id=plan.patient_id, status=PlanStatus.ACTIVE).exclude(pk=plan.pk).exists():
        raise ValidationError("The patient already has an active plan: complete or discontinue it first.")
    gate(
        actor=actor, patient=plan.patient, action=GateAction.START_PLAN, override_reason=override_reason, start_on=start
    )
    why = "plan started" + (f" over the opioid gate: {override_reason.strip()}" if override_reason.strip() else "")
    with transaction.atomic():
        plan.status = PlanStatus.ACTIVE
        plan.full_clean()
        save_with_history(plan, actor, why)
        first.status = StepStatus.ACTIVE
        first.actual_start = start
        save_with_history(first, actor, why)
        patient = plan.patient
        if patient.status != PatientStatus.ACTIVE:
            patient.status = PatientStatus.ACTIVE
            patient.discontinued_reason = ""
            save_with_history(patient, actor, f"on LDN from {start:%Y-%m-%d}: {why}")
        reminders.plan_patient(patient)
        patient_services.enqueue_patient_evaluation([plan.patient_id])
    return plan


# --- Plans from protocols, and changes to a running plan ------------------------------------------


RETRY_AFTER_STEP_BACK_DAYS = 14  # SE-2 "longer interval"; the upper bound of the allowed 3-14 days


class StepUpNotAllowed(Exception):
    """The step-up rule (domain.md 1.3) says no; ``reasons`` say why. A prescriber may override."""

    def __init__(self, reasons):
        self.reasons = tuple(reasons)
        super().__init__("Step-up not allowed: " + "; ".join(r.text for r in self.reasons))


@dataclass(frozen=True)
class PreviewStep:
    sequence: int
    dose_mg: Decimal
    planned_start: dt.date
    min_days: int
    measure: str  # what the patient measures, or why it cannot be given from the prescription
    warnings: tuple[str, ...]


def plan_preview(
    *,
    protocol: TitrationProtocol | None = None,
    custom_steps: list[rules.StepSpec] | None = None,
    start: dt.date,
    target_mg: Decimal | None = None,
    prescription: CompoundedPrescription | None = None,
) -> list[PreviewStep]:
    """The schedule and per-step quantities a prescriber sees before saving (RX-2, DOSE-1 warnings)."""
    if (protocol is None) == (custom_steps is None):
        raise ValidationError("Choose a protocol or give custom steps (not both).")
    specs = custom_steps or [rules.StepSpec(s.dose_mg, s.min_days) for s in protocol.steps.order_by("sequence")]
    try:
        planned = rules.generate_plan(specs, start, target_mg)
    except (rules.DoseError, rules.PlanError) as exc:
        raise ValidationError(str(exc)) from None
    f = content.formulation(prescription) if prescription else None
    out = []
    for step in planned:
        amount = supply.measure(step.dose_mg, f) if f else None
        if amount:
            measure = amount.text
        elif prescription is None:
            measure = "no prescription chosen"
        else:
            measure = f"cannot be given from {prescription} (RX-2): a new strength is needed"
        out.append(
            PreviewStep(
                step.sequence,
                step.dose_mg,
                step.planned_start,
                step.min_days,
                measure,
                tuple(rules.check_dose(step.dose_mg)),
            )
        )
    return out


def plan_create(
    *,
    actor,
    patient,
    start: dt.date,
    protocol: TitrationProtocol | None = None,
    custom_steps: list[rules.StepSpec] | None = None,
    target_mg: Decimal | None = None,
    prescription: CompoundedPrescription | None = None,
    note: str = "",
) -> TitrationPlan:
    """A draft plan and its steps, exactly as previewed. Starting it is a separate action (the gate)."""
    require_prescriber(actor, patient.clinic_id)
    preview = plan_preview(
        protocol=protocol, custom_steps=custom_steps, start=start, target_mg=target_mg, prescription=prescription
    )
    with transaction.atomic():
        plan = TitrationPlan(
            patient=patient,
            protocol=protocol,
            prescription=prescription,
            target_dose_mg=preview[-1].dose_mg,
            start_date=start,
            status=PlanStatus.DRAFT,
            created_by=actor,
            notes=note,
        )
        plan.full_clean()
        save_with_history(plan, actor, "plan created" + (f" from {protocol.key}" if protocol else " with custom steps"))
        for step in preview:
            save_with_history(
                TitrationStep(
                    plan=plan,
                    sequence=step.sequence,
                    dose_mg=step.dose_mg,
                    planned_start=step.planned_start,
                    min_days=step.min_days,
                ),
                actor,
                "planned",
            )
    return plan


def _steps(plan: TitrationPlan) -> list[TitrationStep]:
    return list(plan.steps.filter(deleted_at__isnull=True).order_by("sequence"))


def _current(steps: list[TitrationStep]) -> TitrationStep | None:
    return next((s for s in reversed(steps) if s.status in (StepStatus.ACTIVE, StepStatus.HELD)), None)


def _require_reason(reason: str) -> str:
    if not reason.strip():
        raise ValidationError("Say why (it is kept in the record).")
    return reason.strip()


def _active_plan(plan: TitrationPlan, doing: str) -> TitrationPlan:
    plan = TitrationPlan.objects.select_related("patient").get(pk=plan.pk)
    if plan.status != PlanStatus.ACTIVE:
        raise ValidationError(f"Only an active plan can be {doing}; this one is {plan.get_status_display().lower()}.")
    return plan


def _cancel_step_reminders(plan: TitrationPlan, why: str) -> None:
    """Pending step-up reminders go in the same transaction as the change that makes them wrong."""
    Reminder.objects.filter(plan=plan, kind=ReminderKind.STEP_UP, status=ReminderStatus.PENDING).update(
        status=ReminderStatus.CANCELLED, cancelled_reason=why[:300]
    )


def plan_hold(*, actor, plan: TitrationPlan, reason: str, system: bool = False) -> TitrationStep:
    """Stay on the current dose. A clinician's hold (not ``system``) blocks step-ups until resumed; its
    pending step-up reminders are cancelled in the same transaction and the patient is told to stay on
    the dose instead (REM-1). ``system``: the side-effect rules' hold (SE-1, SE-4), re-read at each check-in."""
    if not system:
        require_prescriber(actor, plan.clinic_id)
    reason = _require_reason(reason)
    with transaction.atomic():
        plan = _active_plan(plan, "held")
        current = _current(_steps(plan))
        if current is None:
            raise ValidationError("The plan has no current step to hold.")
        current.status = StepStatus.HELD
        current.note = reason[:500]
        current.held_by_clinician = current.held_by_clinician or not system
        if not system:  # before the save, whose signal replans (and would cancel them with a vaguer reason)
            _cancel_step_reminders(plan, f"step held: {reason}")
        save_with_history(current, actor, f"held: {reason}")
        reminders.plan_patient(plan.patient)
    return current


def plan_resume(*, actor, plan: TitrationPlan, reason: str) -> TitrationStep:
    """End a hold: the current dose goes on, and the next step-up follows the step-up rule again (1.3)."""
    require_prescriber(actor, plan.clinic_id)
    reason = _require_reason(reason)
    with transaction.atomic():
        plan = _active_plan(plan, "resumed")
        current = _current(_steps(plan))
        if current is None or current.status != StepStatus.HELD:
            raise ValidationError("The current step is not held.")
        current.status = StepStatus.ACTIVE
        current.held_by_clinician = False
        current.note = f"resumed: {reason}"[:500]
        save_with_history(current, actor, f"resumed: {reason}")
        reminders.plan_patient(plan.patient)
    return current


def _insert_after(
    plan: TitrationPlan, after: TitrationStep, dose: Decimal, on: dt.date, actor, why: str
) -> TitrationStep:
    """A new active step right after ``after``; later steps move one place down (sequence is unique)."""
    for later in reversed([s for s in _steps(plan) if s.sequence > after.sequence]):
        later.sequence += 1
        save_with_history(later, actor, "renumbered")
    step = TitrationStep(
        plan=plan,
        sequence=after.sequence + 1,
        dose_mg=dose,
        planned_start=on,
        actual_start=on,
        min_days=after.min_days,
        status=StepStatus.ACTIVE,
        note=why[:500],
    )
    step.full_clean()
    save_with_history(step, actor, why)
    return step


def plan_step_back(*, actor, plan: TitrationPlan, on: dt.date, reason: str, system: bool = False) -> TitrationStep:
    """SE-2: back to the previous dose; SE-5: from the first step, half the dose (floor 0.25 mg)."""
    if not system:
        require_prescriber(actor, plan.clinic_id)
    reason = _require_reason(reason)
    with transaction.atomic():
        plan = _active_plan(plan, "stepped back")
        steps = _steps(plan)
        current = _current(steps)
        if current is None:
            raise ValidationError("The plan has no current step to step back from.")
        before = [
            s for s in steps if s.sequence < current.sequence and s.status in (StepStatus.DONE, StepStatus.STEPPED_BACK)
        ]
        previous = max((s.dose_mg for s in before if s.dose_mg < current.dose_mg), default=None)
        dose = rules.step_back_dose(current.dose_mg, previous)
        current.status = StepStatus.STEPPED_BACK
        current.note = reason[:500]
        save_with_history(current, actor, f"stepped back: {reason}")
        lower = _insert_after(plan, current, dose, on, actor, f"stepped back to {rules.fmt_mg(dose)} mg: {reason}")
        # SE-2: resume with a longer interval: the dose that caused trouble is tried again after
        # RETRY_AFTER_STEP_BACK_DAYS, not skipped (skipping it would make the next increment bigger).
        retry = _insert_after(plan, lower, current.dose_mg, on, actor, f"retry after step-back: {reason}")
        retry.status, retry.actual_start = StepStatus.PLANNED, None
        retry.planned_start = on + dt.timedelta(days=RETRY_AFTER_STEP_BACK_DAYS)
        lower.min_days = RETRY_AFTER_STEP_BACK_DAYS
        save_with_history(lower, actor, "longer interval after a step-back (SE-2)")
        save_with_history(retry, actor, "planned retry (SE-2)")
        _replan_dates(plan, retry, actor)
        reminders.plan_patient(plan.patient)
        return lower


def _replan_dates(plan: TitrationPlan, after: TitrationStep, actor) -> None:
    """Planned steps after ``after`` keep their min days, counted from ``after``'s date."""
    day = after.planned_start + dt.timedelta(days=after.min_days)
    for step in _steps(plan):
        if step.sequence > after.sequence and step.status == StepStatus.PLANNED:
            if step.planned_start != day:
                step.planned_start = day
                save_with_history(step, actor, "rescheduled after a step-back")
            day += dt.timedelta(days=step.min_days)


def plan_skip(*, actor, plan: TitrationPlan, step: TitrationStep, reason: str) -> TitrationStep:
    """Leave a planned step out; the next step-up goes to the step after it, under the same rule (1.3)."""
    require_prescriber(actor, plan.clinic_id)
    reason = _require_reason(reason)
    with transaction.atomic():
        plan = _active_plan(plan, "changed")
        step = TitrationStep.objects.select_for_update().get(pk=step.pk)
        if step.plan_id != plan.pk or step.status != StepStatus.PLANNED or step.deleted_at is not None:
            raise ValidationError("Only a planned step of this plan can be skipped.")
        step.status = StepStatus.SKIPPED
        step.note = reason[:500]
        save_with_history(step, actor, f"skipped: {reason}")
        reminders.plan_patient(plan.patient)
    return step


def _step_up_check(*, actor, plan: TitrationPlan, to: TitrationStep, on: dt.date, override_reason: str) -> str:
    """The opioid gate, then the whole step-up rule (1.3, LAB-2, a clinician's hold) for moving to ``to``.
    Refuses with every reason unless a prescriber overrides; returns the history's why."""
    gate(actor=actor, patient=plan.patient, action=GateAction.STEP_UP, override_reason=override_reason)
    decision = content.step_up_decision(plan, to, on)
    if decision is not None and not decision.allowed:
        if not override_reason.strip():
            raise StepUpNotAllowed(decision.reasons)
        overridden = "; ".join(r.text for r in decision.reasons)
        return f"stepped up by override: {override_reason.strip()} (over: {overridden})"
    return "stepped up"


def plan_set_dose(
    *, actor, plan: TitrationPlan, dose_mg: Decimal, on: dt.date, reason: str, override_reason: str = ""
) -> TitrationStep:
    """A custom dose from ``on`` (DOSE-1 applies); the current step is done. A dose above the current one
    is a step-up: the whole step-up rule applies, and only a prescriber's override passes a refusal."""
    require_prescriber(actor, plan.clinic_id)
    try:
        rules.check_dose(dose_mg)
    except rules.DoseError as exc:
        raise ValidationError({"dose_mg": str(exc)}) from None
    reason = _require_reason(reason)
    plan = _active_plan(plan, "changed")
    current = _current(_steps(plan))
    if current is None:
        raise ValidationError("Start the plan first.")
    why = f"custom dose {rules.fmt_mg(dose_mg)} mg: {reason}"
    if dose_mg > current.dose_mg:
        proposed = TitrationStep(plan=plan, sequence=current.sequence + 1, dose_mg=dose_mg, planned_start=on)
        checked = _step_up_check(actor=actor, plan=plan, to=proposed, on=on, override_reason=override_reason)
        if checked != "stepped up":
            why = f"{why}; {checked}"
    with transaction.atomic():
        current.status = StepStatus.DONE
        current.held_by_clinician = False
        save_with_history(current, actor, why)
        step = _insert_after(plan, current, dose_mg, on, actor, why)
        reminders.plan_patient(plan.patient)
        return step


def plan_advance(*, actor, plan: TitrationPlan, on: dt.date, override_reason: str = "") -> TitrationStep:
    """Step up to the next planned step if the step-up rule allows it on ``on`` (domain.md 1.3), or if a
    prescriber overrides with a reason. The opioid gate (1.3.2) is applied and recorded either way."""
    require_prescriber(actor, plan.clinic_id)
    plan = TitrationPlan.objects.select_related("patient").get(pk=plan.pk)
    steps = _steps(plan)
    current = _current(steps)
    following = next(
        (s for s in steps if s.status == StepStatus.PLANNED and (current is None or s.sequence > current.sequence)),
        None,
    )
    if plan.status != PlanStatus.ACTIVE or current is None or following is None:
        raise ValidationError("There is no next step to move to in an active plan.")
    why = _step_up_check(actor=actor, plan=plan, to=following, on=on, override_reason=override_reason)
    with transaction.atomic():
        current.status = StepStatus.DONE
        current.held_by_clinician = False
        save_with_history(current, actor, why)
        following.status = StepStatus.ACTIVE
        following.actual_start = on
        save_with_history(following, actor, why)
        reminders.plan_patient(plan.patient)
    return following


def _end_plan(*, actor, plan: TitrationPlan, status: str, reason: str) -> TitrationPlan:
    require_prescriber(actor, plan.clinic_id)
    reason = _require_reason(reason)
    with transaction.atomic():
        plan = TitrationPlan.objects.select_for_update().select_related("patient").get(pk=plan.pk)
        if plan.status not in (PlanStatus.ACTIVE, PlanStatus.PAUSED, PlanStatus.DRAFT):
            raise ValidationError(f"A {plan.get_status_display().lower()} plan cannot be changed.")
        if status == PlanStatus.COMPLETED and plan.status == PlanStatus.DRAFT:
            raise ValidationError("A plan that never started cannot be completed: discontinue it instead.")
        label = "completed" if status == PlanStatus.COMPLETED else "discontinued"
        current = _current(_steps(plan))
        if current is not None:
            current.status = StepStatus.DONE
            current.held_by_clinician = False
            save_with_history(current, actor, f"plan {label}: {reason}")
        for step in _steps(plan):
            if step.status == StepStatus.PLANNED:
                step.status = StepStatus.SKIPPED
                step.note = f"plan {label}"
                save_with_history(step, actor, f"plan {label}: {reason}")
        plan.status = status
        save_with_history(plan, actor, f"{label}: {reason}")
        patient = plan.patient
        on_other_plan = TitrationPlan.objects.filter(patient=patient, status=PlanStatus.ACTIVE).exists()
        if status == PlanStatus.CANCELLED:
            patient.status, patient.discontinued_reason = PatientStatus.DISCONTINUED, reason
            save_with_history(patient, actor, f"LDN discontinued: {reason}")
        elif not on_other_plan and patient.status == PatientStatus.ACTIVE:
            patient.status = PatientStatus.PAUSED  # no LDN course runs now; a new plan makes them active again
            save_with_history(patient, actor, f"LDN course completed: {reason}")
        reminders.plan_patient(patient)
    return plan


def plan_complete(*, actor, plan: TitrationPlan, reason: str) -> TitrationPlan:
    """The LDN course ends as planned: the plan is completed, steps not taken are skipped, and the patient,
    with no other course running, is paused (reminders stop)."""
    return _end_plan(actor=actor, plan=plan, status=PlanStatus.COMPLETED, reason=reason)


def plan_discontinue(*, actor, plan: TitrationPlan, reason: str) -> TitrationPlan:
    """LDN is stopped: the plan is cancelled and the patient discontinued, with the reason (and the date,
    in the history)."""
    return _end_plan(actor=actor, plan=plan, status=PlanStatus.CANCELLED, reason=reason)


# --- Side effects steer the plan (SE-1..SE-5), called when a check-in's side effects are saved -----


def apply_side_effects(*, patient, today: dt.date) -> rules.SideEffectPlan | None:
    """Read the patient's recent side effects and hold, step back, or hand over to a clinician.

    Idempotent: acting again on the same reports changes nothing (a held step stays held; a step-back
    happens once, because the new step starts after the reports that caused it).
    """
    plan = TitrationPlan.objects.filter(patient=patient, status=PlanStatus.ACTIVE).first()
    if plan is None:
        return None
    steps = _steps(plan)
    current = _current(steps)
    if current is None:
        return None
    previous = max(
        (s.dose_mg for s in steps if s.sequence < current.sequence and s.dose_mg < current.dose_mg), default=None
    )
    decision = rules.side_effect_plan(
        content.side_effect_observations(plan, today),
        current.dose_mg,
        previous,
        today,
        current_step_started=current.actual_start or current.planned_start,
    )
    reasons = "; ".join(r.text for r in decision.reasons)
    if decision.action == "hold" and current.status != StepStatus.HELD:
        plan_hold(actor=None, plan=plan, reason=reasons, system=True)
    elif decision.action == "step_back":
        plan_step_back(actor=None, plan=plan, on=today, reason=reasons, system=True)
    elif decision.action == "hold_clinician":
        ClinicianTask.objects.get_or_create(
            key=f"side-effect:{current.pk}",
            defaults={
                "patient": patient,
                "kind": TaskKind.SIDE_EFFECT,
                "title": "Severe side effect: review the LDN plan",
                "detail": f"{reasons} (SE-4). Step-up reminders are paused while the step is held.",
                "due_on": today,
            },
        )
        if current.status != StepStatus.HELD:
            plan_hold(actor=None, plan=plan, reason=reasons, system=True)
        reminders.plan_patient(patient)  # the open task pauses step-up reminders (SE-4, REM-4 style)
    if decision.suggest_morning and patient.dose_time != "morning":
        ClinicianTask.objects.get_or_create(
            key=f"morning-dose:{current.pk}",
            defaults={
                "patient": patient,
                "kind": TaskKind.OTHER,
                "title": "Suggest taking LDN in the morning",
                "detail": f"Sleep disturbance or vivid dreams reported: {reasons}.",  # SE-3's reason names it
                "due_on": today,
            },
        )
    return decision
