"""A plan's outlook: what is coming for an active plan, and what the clinic must do before it comes.

- The next planned step and the first evening it may be taken: its planned date, or later when the
  current step started late (1.3's minimum days). A held step passes that evening and is asked again
  every 7 days (REM-1), so the evening it is *due* depends on today: ``Facts.due_day``.
- Supply (RX-2, RX-3): when the active prescription, refills included, runs out on the plan's schedule,
  in milligrams, and the day a new prescription must reach the pharmacy (its lead time before). Refills
  count: the pharmacy dispenses those without the clinic; the clinic's part is the prescription after.
- RX-3: the next step cannot be made from any active prescription (or there is none), so a new one is
  needed by the step's planned date minus the pharmacy's lead time (``titration.prescribing.rx3_items``
  words these for the plan page, the worklist for its rows).

``read`` computes these from plain rows, three queries for any number of plans, and only the worklist's
shown rows become model objects. ``PlanOutlook`` stores them per active plan so the worklist can count and
order in SQL; ``refresh`` rewrites a plan's row in the same transaction as any change to the plan, its
steps, the patient's prescriptions or a pharmacy (titration/signals.py), and ``rebuild`` (nightly, and
after a bulk load) rewrites them all. The worklist draws the rows it shows from ``read``, never from the
stored copy, so a stale row can misplace an item but never misstate one.
"""

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from . import content, schedule, supply
from .models import CompoundedPrescription, PlanStatus, PrescriptionStatus, StepStatus, TitrationPlan, TitrationStep
from .outlook_models import PlanOutlook

STEP_COLUMNS = (
    "id",
    "plan_id",
    "sequence",
    "dose_mg",
    "planned_start",
    "actual_start",
    "min_days",
    "status",
    "held_by_clinician",
    "note",
    "clinic_id",
)
RX_COLUMNS = (
    "id",
    "patient_id",
    "clinic_id",
    "form",
    "strength_value",
    "strength_unit",
    "quantity",
    "quantity_unit",
    "days_supply",
    "refills",
    "start_on",
    "written_on",
    "status",
    "pharmacy_id",
)
REFRESH_BATCH = 500


@dataclass(slots=True)
class Step:
    """A step as ``read`` reads it (``STEP_COLUMNS``)."""

    id: int
    plan_id: int
    sequence: int
    dose_mg: object
    planned_start: dt.date
    actual_start: dt.date | None
    min_days: int
    status: str
    held_by_clinician: bool
    note: str
    clinic_id: int


@dataclass(slots=True)
class Rx:
    """An active prescription as ``read`` reads it (``RX_COLUMNS``, and its pharmacy's name and lead time);
    ``content.formulation`` reads it as it reads the model."""

    id: int
    patient_id: int
    clinic_id: int
    form: str
    strength_value: object
    strength_unit: str
    quantity: object
    quantity_unit: str
    days_supply: int
    refills: int
    start_on: dt.date | None
    written_on: dt.date
    status: str
    pharmacy_id: int | None
    pharmacy_name: str
    lead_time_days: int

    def as_model(self) -> CompoundedPrescription:
        return CompoundedPrescription(**{name: getattr(self, name) for name in RX_COLUMNS})


@dataclass(frozen=True, slots=True)
class Runout:
    runs_out: dt.date
    order_by: dt.date  # the day a new prescription must reach the pharmacy
    formulation: supply.Formulation


@dataclass(slots=True)
class Facts:
    """One active plan, read (``read``): its steps, the patient's active prescriptions, and the outlook."""

    plan_id: int
    patient_id: int
    clinic_id: int
    prescription_id: int | None
    target_dose_mg: object
    zone: str
    steps: list[Step]
    current: Step | None
    following: Step | None  # the next planned step after the current one
    step_day: dt.date | None  # the first evening the following step can be taken (before any re-ask)
    rx: Rx | None  # content.active_prescription's choice: the plan's own when active, else the latest
    active_rxs: list[Rx]
    runout: Runout | None = None
    new_rx_by: dt.date | None = None

    def due_day(self, today: dt.date) -> dt.date | None:
        """REM-1's evening for the following step: ``step_day``, or the next weekly re-ask on or after
        ``today`` when that evening has passed without a step-up."""
        return None if self.step_day is None else schedule.due_evening(self.step_day, today)


class _Rules:
    """The supply rules' answers for one pass, each asked once per distinct question: a clinic's
    prescriptions come in a few formulations, and a formulation is a value (frozen)."""

    def __init__(self):
        self.formulations: dict[tuple, supply.Formulation | None] = {}
        self.fills: dict[tuple, supply.Formulation] = {}
        self.measures: dict[tuple, bool] = {}
        self.runouts: dict[tuple, dt.date | None] = {}

    def formulation(self, rx: Rx) -> supply.Formulation | None:
        key = (rx.form, rx.strength_value, rx.strength_unit, rx.quantity, rx.quantity_unit, rx.days_supply)
        if key not in self.formulations:
            self.formulations[key] = content.formulation(rx)
        return self.formulations[key]

    def with_refills(self, formulation: supply.Formulation, refills: int) -> supply.Formulation:
        """The prescription and its refills as one supply."""
        if not refills:
            return formulation
        key = (formulation, refills)
        if key not in self.fills:
            self.fills[key] = dataclasses.replace(formulation, quantity=formulation.quantity * (1 + refills))
        return self.fills[key]

    def runs_out(self, whole: supply.Formulation, start_on: dt.date, schedule: tuple) -> dt.date | None:
        """``supply.supply_runs_out``; raises its ValueError (eye drops) each time it is asked."""
        key = (whole, start_on, schedule)
        if key not in self.runouts:
            self.runouts[key] = supply.supply_runs_out(whole, start_on, schedule)
        return self.runouts[key]

    def makes(self, dose_mg, formulation: supply.Formulation) -> bool:
        key = (dose_mg, formulation)
        if key not in self.measures:
            self.measures[key] = supply.measure(dose_mg, formulation) is not None
        return self.measures[key]


def read(plans) -> list[Facts]:
    """The outlook of every active plan in ``plans`` (a queryset of plans, already scoped by the caller, or
    plan ids), in plan order: three queries of plain tuples whatever their number."""
    if not hasattr(plans, "model"):
        plans = TitrationPlan.objects.filter(pk__in=list(plans))
    plans = plans.filter(status=PlanStatus.ACTIVE)
    rows = list(
        plans.order_by("pk").values_list(
            "pk", "patient_id", "clinic_id", "prescription_id", "target_dose_mg", "patient__time_zone"
        )
    )
    if not rows:
        return []
    ids = [row[0] for row in rows]
    clinics = sorted({row[2] for row in rows})
    # Steps and prescriptions are read by clinic too (they are in their plan's clinic): an index range,
    # not a scan of every clinic's rows.
    steps_of: dict[int, list[Step]] = defaultdict(list)
    for values in (
        TitrationStep.objects.filter(plan_id__in=ids, clinic_id__in=clinics).order_by().values_list(*STEP_COLUMNS)
    ):
        step = Step(*values)
        steps_of[step.plan_id].append(step)
    for steps in steps_of.values():  # a plan's few steps sort faster here than thousands in the database
        steps.sort(key=lambda step: step.sequence)
    rx_of: dict[int, list[Rx]] = defaultdict(list)
    active = CompoundedPrescription.objects.filter(
        patient_id__in={row[1] for row in rows}, clinic_id__in=clinics, status=PrescriptionStatus.ACTIVE
    )
    for values in active.order_by("-written_on", "-pk").values_list(
        *RX_COLUMNS, "pharmacy__name", "pharmacy__lead_time_days"
    ):
        rx = Rx(*values[:-2], values[-2] or "", supply.DEFAULT_LEAD_TIME_DAYS if values[-1] is None else values[-1])
        rx_of[rx.patient_id].append(rx)
    rules = _Rules()
    found = []
    for plan_id, patient_id, clinic_id, prescription_id, target, zone in rows:
        facts = _facts(plan_id, patient_id, clinic_id, prescription_id, target, zone, steps_of[plan_id])
        active_rxs = rx_of[patient_id]
        own = next((rx for rx in active_rxs if rx.id == prescription_id), None)
        facts.active_rxs, facts.rx = active_rxs, own or next(iter(active_rxs), None)
        facts.runout = _runout(facts, rules)
        facts.new_rx_by = _new_rx_by(facts, rules)
        found.append(facts)
    return found


def _facts(plan_id, patient_id, clinic_id, prescription_id, target, zone, steps) -> Facts:
    current = next((s for s in reversed(steps) if s.status in (StepStatus.ACTIVE, StepStatus.HELD)), None)
    following = step_day = None
    if current is not None:
        following = next((s for s in steps if s.sequence > current.sequence and s.status == StepStatus.PLANNED), None)
    if following is not None:
        step_day = schedule.step_evening(
            current.actual_start or current.planned_start, current.min_days, following.planned_start
        )
    return Facts(
        plan_id, patient_id, clinic_id, prescription_id, target, zone, steps, current, following, step_day, None, []
    )


def _runout(facts: Facts, rules: _Rules) -> Runout | None:
    rx = facts.rx
    formulation = rules.formulation(rx) if rx is not None else None
    if formulation is None:
        return None
    whole = rules.with_refills(formulation, rx.refills)
    taken = tuple((s.actual_start or s.planned_start, s.dose_mg) for s in facts.steps if s.status != StepStatus.SKIPPED)
    try:  # from the day it was dispensed (started), else written
        runs_out = rules.runs_out(whole, rx.start_on or rx.written_on, taken)
    except ValueError:  # eye drops: not systemic LDN, no supply for titration
        return None
    if runs_out is None:
        return None
    return Runout(runs_out, supply.reorder_by(runs_out, rx.lead_time_days), formulation)


def _new_rx_by(facts: Facts, rules: _Rules) -> dt.date | None:
    step = facts.following
    if step is None:
        return None
    for candidate in facts.active_rxs:
        formulation = rules.formulation(candidate)
        if formulation is not None and rules.makes(step.dose_mg, formulation):
            return None
    lead = facts.rx.lead_time_days if facts.rx is not None else supply.DEFAULT_LEAD_TIME_DAYS
    return supply.reorder_by(step.planned_start, lead)  # RX-3: by the step's planned date


# --- The stored copy ---------------------------------------------------------------------------------------


def _row(facts: Facts, now: dt.datetime) -> PlanOutlook:
    return PlanOutlook(
        plan_id=facts.plan_id,
        patient_id=facts.patient_id,
        clinic_id=facts.clinic_id,
        step_on=facts.step_day,
        step_day=facts.step_day.toordinal() if facts.step_day is not None else None,
        runs_out=facts.runout.runs_out if facts.runout else None,
        reorder_by=facts.runout.order_by if facts.runout else None,
        new_rx_by=facts.new_rx_by,
        created_at=now,
        updated_at=now,
    )


def refresh(plan_ids: Iterable[int]) -> int:
    """Rewrite the stored outlook of these plans: active plans get their row, the others lose it."""
    ids = sorted(set(plan_ids))
    if not ids:
        return 0
    now = timezone.now()
    written = 0
    with transaction.atomic():
        for start in range(0, len(ids), REFRESH_BATCH):
            batch = ids[start : start + REFRESH_BATCH]
            found = read(batch)
            PlanOutlook.objects.filter(plan_id__in=batch).exclude(plan_id__in=[f.plan_id for f in found]).delete()
            PlanOutlook.objects.bulk_create(
                [_row(facts, now) for facts in found],
                update_conflicts=True,
                unique_fields=["plan"],
                update_fields=["step_on", "step_day", "runs_out", "reorder_by", "new_rx_by", "updated_at"],
            )
            written += len(found)
    return written


def refresh_patients(patient_ids: Iterable[int]) -> int:
    """A prescription changed: the outlook of its patient's active plans (and of any the row still names)."""
    ids = set(patient_ids)
    if not ids:
        return 0
    plans = TitrationPlan.objects.filter(patient_id__in=ids, status=PlanStatus.ACTIVE).values_list("pk", flat=True)
    stored = PlanOutlook.objects.filter(patient_id__in=ids).values_list("plan_id", flat=True)
    return refresh([*plans, *stored])


def rebuild() -> int:
    """Every stored outlook from the plans themselves: nightly, and after rows were loaded in bulk."""
    active = TitrationPlan.objects.filter(status=PlanStatus.ACTIVE).values_list("pk", flat=True)
    stored = PlanOutlook.objects.values_list("plan_id", flat=True)
    return refresh([*active, *stored])
