"""Writes for prescriptions and plans. Each clinical action passes the opioid gate first (domain.md
2.1: an open CONFLICT blocks LDN start and step-up), which a prescriber may override with a reason.

The gate runs before the action's transaction, so a blocked attempt stays in the record even though
the action itself is not done.
"""

import datetime as dt

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from patients import services as patient_services
from patients.flag_models import GateAction
from patients.models import Role

from .models import (
    CompoundedPrescription,
    PlanStatus,
    PrescriptionStatus,
    StepStatus,
    TitrationPlan,
)


def _require_prescriber(actor, clinic_id: int) -> None:
    if not actor.memberships.filter(clinic_id=clinic_id, role=Role.PRESCRIBER, is_active=True).exists():
        raise PermissionDenied("Only a prescriber of this clinic can do this.")


def gate(*, actor, patient, action: str, override_reason: str = "") -> None:
    """Check the patient's medications now (not only when the last sweep ran), then apply the gate."""
    patient_services.patient_evaluate(patient=patient)
    patient_services.opioid_gate(actor=actor, patient=patient, action=action, override_reason=override_reason)


def prescription_activate(
    *, actor, prescription: CompoundedPrescription, override_reason: str = ""
) -> CompoundedPrescription:
    _require_prescriber(actor, prescription.clinic_id)
    if prescription.status == PrescriptionStatus.ACTIVE:
        return prescription
    if prescription.status != PrescriptionStatus.DRAFT:
        raise ValidationError(f"A {prescription.get_status_display().lower()} prescription cannot be activated.")
    gate(
        actor=actor,
        patient=prescription.patient,
        action=GateAction.ACTIVATE_PRESCRIPTION,
        override_reason=override_reason,
    )
    with transaction.atomic():
        prescription.status = PrescriptionStatus.ACTIVE
        prescription._change_reason = override_reason and f"activated over open flags: {override_reason}"
        prescription.full_clean()
        prescription.save()
        patient_services.enqueue_patient_evaluation([prescription.patient_id])
    return prescription


def plan_start(*, actor, plan: TitrationPlan, start: dt.date, override_reason: str = "") -> TitrationPlan:
    """Start a drafted plan: its first step becomes active on ``start``."""
    _require_prescriber(actor, plan.clinic_id)
    if plan.status != PlanStatus.DRAFT:
        raise ValidationError(f"A {plan.get_status_display().lower()} plan cannot be started.")
    first = plan.steps.order_by("sequence").first()
    if first is None:
        raise ValidationError("The plan has no steps.")
    gate(actor=actor, patient=plan.patient, action=GateAction.START_PLAN, override_reason=override_reason)
    with transaction.atomic():
        plan.status = PlanStatus.ACTIVE
        plan.full_clean()
        plan.save()
        first.status = StepStatus.ACTIVE
        first.actual_start = start
        first.save()
        patient_services.enqueue_patient_evaluation([plan.patient_id])
    return plan


def plan_step_up(*, actor, plan: TitrationPlan, on: dt.date, override_reason: str = "") -> TitrationPlan:
    """Move to the next planned step. The full step-up rule (domain.md 1.3) arrives with the titration
    engine; the opioid condition (1.3.2) is enforced here."""
    _require_prescriber(actor, plan.clinic_id)
    if plan.status != PlanStatus.ACTIVE:
        raise ValidationError("Only an active plan can step up.")
    steps = list(plan.steps.order_by("sequence"))
    current = next((s for s in steps if s.status in (StepStatus.ACTIVE, StepStatus.HELD)), None)
    following = next(
        (s for s in steps if s.status == StepStatus.PLANNED and (not current or s.sequence > current.sequence)), None
    )
    if following is None:
        raise ValidationError("There is no further step to move to.")
    gate(actor=actor, patient=plan.patient, action=GateAction.STEP_UP, override_reason=override_reason)
    with transaction.atomic():
        if current:
            current.status = StepStatus.DONE
            current.save()
        following.status = StepStatus.ACTIVE
        following.actual_start = on
        following.save()
    return plan
