"""Writing a compounded prescription (RX-1, RX-2) and the RX-3 reads the worklist and the plan page show.

RX-2: the days supply is computed, never taken on trust: quantity x strength / daily dose, or, when the
patient has a titration plan, over the plan's doses (supply.supply_runs_out), because a supply that would
last 30 days at 1.5 mg lasts far fewer once the plan steps up. A typed value that disagrees is reported
and the computed one stored.

RX-3: a plan whose next step the active prescription cannot make needs a new prescription by that step's
date minus the pharmacy's lead time; a supply with under 7 days left needs one too.

The rules themselves are in titration/supply.py (pure); this module reads the rows and writes one.
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction

from ldnclinic.db import save_with_history

from . import content, outlook, rules, supply
from .models import (
    CompoundedPrescription,
    Filler,
    PlanStatus,
    PrescriptionStatus,
    ReleaseType,
    StepStatus,
    TitrationPlan,
    TitrationStep,
)
from .services import require_prescriber

_UPCOMING = (StepStatus.PLANNED, StepStatus.ACTIVE, StepStatus.HELD)  # steps the prescription must still make


# --- RX-2: days supply --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SupplyEstimate:
    """What quantity x strength gives for this patient: the days it lasts and on what dose it is reckoned."""

    days: int | None  # None: cannot be computed (incomplete entry, eye drops, no dose known)
    basis: str  # "at 1.5 mg a day" / "on the plan's doses (1.5, 3.0, 4.5 mg)"
    dose_mg: Decimal | None  # the daily dose on the first day of the supply
    measure: str  # what the patient measures of that dose, "" when it cannot be given
    warnings: tuple[str, ...]  # RX-2: doses the formulation cannot make, and why nothing was computed
    on_schedule: bool = False  # reckoned over the plan's doses rather than at one dose

    @property
    def text(self) -> str:
        if self.days is None:
            return "not computed"
        return f"{self.days} day{'' if self.days == 1 else 's'} {self.basis}"


def _plan_of(patient) -> TitrationPlan | None:
    """The patient's active plan, else their latest draft (the plan a new prescription is written for)."""
    plans = list(
        TitrationPlan.objects.filter(patient=patient, status__in=[PlanStatus.ACTIVE, PlanStatus.DRAFT]).order_by(
            "-created_at"
        )
    )
    return next((p for p in plans if p.status == PlanStatus.ACTIVE), plans[0] if plans else None)


def _alive_steps(plan: TitrationPlan) -> list[TitrationStep]:
    # Through .all() so a prefetch (rx3_items) is used; filtered here rather than in SQL for that reason.
    return sorted((s for s in plan.steps.all() if s.deleted_at is None), key=lambda s: s.sequence)


def _current(steps: list[TitrationStep]) -> TitrationStep | None:
    return next((s for s in reversed(steps) if s.status in (StepStatus.ACTIVE, StepStatus.HELD)), None)


def default_dose(patient, plan: TitrationPlan | None = None) -> Decimal | None:
    """The dose a prescription is reckoned on by default: the current dose, else the plan's first step."""
    plan = plan if plan is not None else _plan_of(patient)
    if plan is None:
        return None
    steps = _alive_steps(plan)
    current = _current(steps) if plan.status == PlanStatus.ACTIVE else None
    if current is not None:
        return current.dose_mg
    first = next((s for s in steps if s.status == StepStatus.PLANNED), None)
    return first.dose_mg if first else None


def _schedule(steps: list[TitrationStep]) -> list[tuple[dt.date, Decimal]]:
    """(date the dose starts, mg) for each step that is or will be taken, in order (same day: the later wins)."""
    return [(s.actual_start or s.planned_start, s.dose_mg) for s in steps if s.status != StepStatus.SKIPPED]


def _formulation(form, strength_value, strength_unit, quantity, quantity_unit) -> supply.Formulation | None:
    try:
        return supply.Formulation(
            form=form,
            strength_value=strength_value,
            strength_unit=strength_unit,
            quantity=quantity,
            quantity_unit=quantity_unit,
            days_supply=1,  # not used by the computations below
        )
    except (ValueError, TypeError):
        return None


def _unmakeable(f: supply.Formulation, steps: list[TitrationStep]) -> list[str]:
    where = supply.describe(f)
    return [
        f"step {s.sequence} ({rules.fmt_mg(s.dose_mg)} mg from {s.planned_start:%d %b %Y}) cannot be made "
        f"from {where}: a new strength or form is needed (RX-2)"
        for s in steps
        if s.status in _UPCOMING and supply.measure(s.dose_mg, f) is None
    ]


def supply_estimate(
    *,
    patient,
    form: str,
    strength_value: Decimal | None,
    strength_unit: str,
    quantity: Decimal | None,
    quantity_unit: str,
    written_on: dt.date | None = None,
    start_on: dt.date | None = None,
    for_dose_mg: Decimal | None = None,
) -> SupplyEstimate:
    """RX-2, read only: how long this prescription lasts the patient. ``for_dose_mg`` reckons at one dose;
    without it the patient's plan is followed (its doses from the day the supply starts), and with no plan
    there is no dose to reckon on."""
    f = _formulation(form, strength_value, strength_unit, quantity, quantity_unit)
    if f is None:
        why = "enter the form, strength and quantity to compute the days supply"
        return SupplyEstimate(None, "", None, "", (why,))
    if f.form == supply.EYE_DROPS:
        why = "eye drops are not systemic LDN: no days supply is computed for them (domain.md 1.6)"
        return SupplyEstimate(None, "", None, "", (why,))
    plan = _plan_of(patient)
    steps = _alive_steps(plan) if plan is not None else []
    warnings = _unmakeable(f, steps)

    def measure_text(dose: Decimal) -> str:
        amount = supply.measure(dose, f)
        return amount.text if amount else ""

    if for_dose_mg is not None or not steps:
        dose = for_dose_mg if for_dose_mg is not None else default_dose(patient, plan)
        if dose is None:
            why = "no dose to reckon on: give the daily dose this prescription is for (RX-2)"
            return SupplyEstimate(None, "", None, "", (*warnings, why))
        if supply.measure(dose, f) is None:
            warnings.insert(0, f"{rules.fmt_mg(dose)} mg cannot be made from {supply.describe(f)} (RX-2)")
        days = supply.supply_days(f, dose)
        return SupplyEstimate(days, f"at {rules.fmt_mg(dose)} mg a day", dose, measure_text(dose), tuple(warnings))

    schedule = _schedule(steps)
    dispensed = start_on or written_on or schedule[0][0]
    begin = max(dispensed, min(day for day, _ in schedule))  # nothing is used before the first dose
    runs_out = supply.supply_runs_out(f, begin, schedule)
    dose = next((d for day, d in reversed(schedule) if day <= begin), schedule[0][1])
    doses = ", ".join(dict.fromkeys(rules.fmt_mg(d) for _, d in schedule if d))
    basis = f"on the plan's doses ({doses} mg) from {begin:%d %b %Y}"
    if runs_out is None:  # lasts over a year past the last dose change: reckon on the final dose
        final = schedule[-1][1]
        days = max(0, (schedule[-1][0] - begin).days) + supply.supply_days(f, final)
        warnings.append(f"lasts more than a year at {rules.fmt_mg(final)} mg a day: check the quantity (RX-2)")
    else:
        days = (runs_out - begin).days
    return SupplyEstimate(days, basis, dose, measure_text(dose), tuple(warnings), on_schedule=True)


def mismatch_warning(typed: int | None, estimate: SupplyEstimate) -> str | None:
    """RX-2: a typed days supply that disagrees with the computed one."""
    if typed is None or estimate.days is None or typed == estimate.days:
        return None
    how = "quantity x strength over the plan's doses" if estimate.on_schedule else "quantity x strength / dose"
    return f"typed {typed} days; {how} gives {estimate.days} days (RX-2)"


# --- RX-1: writing a prescription ---------------------------------------------------------------------


def _add(errors: dict[str, list[str]], field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def prescription_create(
    *,
    actor,
    patient,
    pharmacy,
    form: str,
    strength_value: Decimal,
    strength_unit: str,
    quantity: Decimal,
    quantity_unit: str,
    sig: str,
    written_on: dt.date,
    refills: int = 0,
    filler: str = Filler.MCC,
    filler_other: str = "",
    release: str = ReleaseType.IR,
    start_on: dt.date | None = None,
    days_supply: int | None = None,
    for_dose_mg: Decimal | None = None,
) -> tuple[CompoundedPrescription, list[str]]:
    """A draft prescription by ``actor`` (a prescriber of the patient's clinic) with its days supply computed
    (RX-2). Returns it and the warnings to show: a typed days supply that disagreed, doses it cannot make.
    Errors are a ValidationError by field; nothing is written then. Activating it is a separate action
    (titration.services.prescription_activate, which passes the opioid gate)."""
    require_prescriber(actor, patient.clinic_id)
    errors: dict[str, list[str]] = {}
    if strength_value is None or strength_value <= 0:
        _add(errors, "strength_value", "The strength must be more than 0 (RX-1).")
    if quantity is None or quantity <= 0:
        _add(errors, "quantity", "The quantity must be more than 0 (RX-1).")
    dispensed_in = supply.FORM_UNITS.get((form, strength_unit))
    if dispensed_in is not None and quantity_unit != dispensed_in:
        _add(errors, "quantity_unit", f"This form and strength is dispensed in {dispensed_in} (RX-1).")
    if for_dose_mg is not None:
        try:
            rules.check_dose(for_dose_mg)
        except rules.DoseError as exc:
            _add(errors, "for_dose_mg", str(exc))
    if days_supply is not None and days_supply < 1:
        _add(errors, "days_supply", "A days supply is at least 1 day.")
    if refills is not None and refills > 12:
        _add(errors, "refills", "At most 12 refills.")
    if pharmacy is not None and pharmacy.deleted_at is not None:
        _add(errors, "pharmacy", "This pharmacy is archived: choose another.")

    warnings: list[str] = []
    stored_days = days_supply
    if not errors:
        estimate = supply_estimate(
            patient=patient,
            form=form,
            strength_value=strength_value,
            strength_unit=strength_unit,
            quantity=quantity,
            quantity_unit=quantity_unit,
            written_on=written_on,
            start_on=start_on,
            for_dose_mg=for_dose_mg,
        )
        mismatch = mismatch_warning(days_supply, estimate)
        warnings = [mismatch] if mismatch else []
        warnings += estimate.warnings
        if estimate.days is not None:
            stored_days = estimate.days
            if estimate.days < 1:
                _add(errors, "quantity", f"This quantity does not cover one day's dose ({estimate.basis}).")
        elif days_supply is None:
            why = "; ".join(estimate.warnings)
            _add(errors, "days_supply", f"Give the days supply: it cannot be computed ({why}).")

    rx = CompoundedPrescription(
        patient=patient,
        clinic_id=patient.clinic_id,
        pharmacy=pharmacy,
        prescriber=actor,
        form=form,
        strength_value=strength_value,
        strength_unit=strength_unit,
        filler=filler,
        filler_other=filler_other or "",
        release=release,
        quantity=quantity,
        quantity_unit=quantity_unit,
        days_supply=stored_days,
        refills=refills,
        sig=sig,
        written_on=written_on,
        start_on=start_on,
        status=PrescriptionStatus.DRAFT,
    )
    try:
        # Fields already at fault are left out, so a zero strength reads as the message above and not as
        # "Constraint 'rx_strength_positive' is violated." (Django skips constraints on excluded fields).
        rx.full_clean(exclude=set(errors) | ({"days_supply"} if stored_days is None else set()))
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            if field not in errors:
                errors[field] = list(messages)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        save_with_history(rx, actor, "prescription written (draft)")
    return rx, warnings


# --- RX-3: what the clinic must do before the next step ------------------------------------------------


@dataclass(frozen=True)
class Rx3Item:
    patient_id: int
    kind: str  # "new_prescription" | "supply_low"
    due_on: dt.date  # when to act: the day a new prescription must reach the pharmacy, or the run-out day
    text: str
    plan_id: int
    step_id: int | None = None
    prescription_id: int | None = None
    rule: str = "RX-3"


NEW_PRESCRIPTION, SUPPLY_LOW = "new_prescription", "supply_low"


def _items(facts: outlook.Facts, today: dt.date) -> list[Rx3Item]:
    """RX-3 for one plan, from its outlook (titration/outlook.py), the same one the worklist counts by."""
    items: list[Rx3Item] = []
    rx, step = facts.rx, facts.following
    if facts.new_rx_by is not None:
        due = max(facts.new_rx_by, today)
        formulation = content.formulation(rx) if rx is not None else None
        where = f"from {supply.describe(formulation)}" if formulation is not None else "with no active prescription"
        items.append(
            Rx3Item(
                facts.patient_id,
                NEW_PRESCRIPTION,
                due,
                f"new prescription needed by {due:%d %b %Y}: the next step {rules.fmt_mg(step.dose_mg)} mg on "
                f"{step.planned_start:%d %b %Y} cannot be made {where} (RX-3)",
                facts.plan_id,
                step.id,
                rx.id if rx is not None else None,
            )
        )
    runout = facts.runout
    if runout is not None and (runout.runs_out - today).days < supply.SUPPLY_WARN_DAYS:
        left = (runout.runs_out - today).days
        if left <= 0:
            text = f"supply ran out on {runout.runs_out:%d %b %Y}: a new prescription is needed now (RX-3)"
        else:
            days = "1 day" if left == 1 else f"{left} days"
            text = f"supply runs out on {runout.runs_out:%d %b %Y} ({days} left): a new prescription is due (RX-3)"
        items.append(Rx3Item(facts.patient_id, SUPPLY_LOW, runout.runs_out, text, facts.plan_id, None, rx.id))
    return items


def rx3_items(*, patients: Iterable, today_by_patient: dict[int, dt.date]) -> dict[int, list[Rx3Item]]:
    """RX-3 for many patients in three queries (``outlook.read``: their active plans, the steps, the active
    prescriptions with their pharmacy): {patient id: items}, every given patient present. ``patients`` are
    Patients or ids; ``today_by_patient`` is each patient's own today (patients.services.patient_today).
    The supply counts refills (the pharmacy dispenses those without the clinic), as on the worklist."""
    ids = list(dict.fromkeys(getattr(p, "pk", p) for p in patients))
    out: dict[int, list[Rx3Item]] = {pid: [] for pid in ids}
    if ids:
        for facts in outlook.read(TitrationPlan.objects.filter(patient_id__in=ids)):
            out[facts.patient_id] += _items(facts, today_by_patient[facts.patient_id])
    return out


def rx3_for_patient(patient, today: dt.date) -> list[Rx3Item]:
    return rx3_items(patients=[patient], today_by_patient={patient.pk: today})[patient.pk]
