"""The worklist's rows that come from active plans: steps due this week (REM-1, 1.3) and supply (RX-3:
running out, or a next step the dispensed strength cannot make).

Whether a plan's supply runs out is the supply rules' question (``titration.supply``, RX-2/RX-3), asked
in Python; so every active plan of the user's clinics is looked at, once, from three queries of plain
tuples (the plans, their steps, the active prescriptions), and only the rows the page shows become
objects: their patients, the step-up rule's decision (``content.step_up_decisions_for`` on rows
already read) and the row's text. A clinic of 2,000 active patients costs a pass over 2,000 tuples.
"""

import dataclasses
import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass

from ldnclinic.scoping import staff_clinic_ids, visible_to
from patients.flag_models import ClinicianTask, TaskKind, TaskStatus
from patients.labs import lab_step_up_blocks_for
from patients.models import Patient, PatientStatus
from titration import content, rules, supply
from titration.models import (
    CompoundedPrescription,
    PlanStatus,
    PrescriptionStatus,
    StepStatus,
    TitrationPlan,
    TitrationStep,
)

from . import worklist_rows
from .worklist_rows import Item, Span, day_text, links_of

STEP_WINDOW_DAYS = 7  # "this week": the patient's today and the 6 days after
SUPPLY_NOTICE_DAYS = 7  # show a refill this many days before it must be ordered

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


@dataclass(slots=True)
class Step:
    """A step as the pass reads it (``STEP_COLUMNS``)."""

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
    """An active prescription as the pass reads it (``RX_COLUMNS``, and its pharmacy's name and lead time);
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


@dataclass(slots=True)
class PlanState:
    plan_id: int
    patient_id: int
    prescription_id: int | None
    target_dose_mg: object
    zone: str
    today: dt.date
    steps: list[Step]
    current: Step | None
    following: Step | None  # the next planned step after the current one
    step_day: dt.date | None  # the first evening the following step can be taken (before any re-ask)
    due_day: dt.date | None  # REM-1's evening: step_day, or the next weekly re-ask when it has passed
    rx: Rx | None  # content.active_prescription's choice
    active_rxs: list[Rx]


@dataclass
class PlanRows:
    """What the pass found: the plans due a step this week and the supply rows, each in page order."""

    steps: list[tuple[tuple, PlanState]]
    supply: list[tuple[tuple, PlanState, dict]]


class _Rules:
    """The supply rules' answers for one page, each asked once per distinct question: a clinic's
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


def read_plans(user, today: dict[str, dt.date]) -> PlanRows:
    """Every active plan of the user's clinics, as tuples, through the REM-1 and RX-3 rules."""
    plans = visible_to(
        user,
        TitrationPlan.objects.filter(
            status=PlanStatus.ACTIVE, patient__status=PatientStatus.ACTIVE, patient__deleted_at__isnull=True
        ),
    )
    if not user.is_superuser:  # a plan's patient is in its clinic: their rows are read by clinic, not all scanned
        plans = plans.filter(patient__clinic_id__in=staff_clinic_ids(user))
    rows = list(
        plans.order_by("pk").values_list("pk", "patient_id", "prescription_id", "target_dose_mg", "patient__time_zone")
    )
    # Steps and prescriptions are read by clinic too (they are in their plan's clinic): an index range,
    # not a scan of every clinic's rows.
    steps_of: dict[int, list[Step]] = defaultdict(list)
    for values in (
        visible_to(user, TitrationStep.objects.filter(plan_id__in=plans.values("pk")))
        .order_by()
        .values_list(*STEP_COLUMNS)
    ):
        step = Step(*values)
        steps_of[step.plan_id].append(step)
    for steps in steps_of.values():  # a plan's few steps sort faster here than thousands in the database
        steps.sort(key=lambda step: step.sequence)
    rx_of: dict[int, list[Rx]] = defaultdict(list)
    active = CompoundedPrescription.objects.filter(
        patient_id__in=plans.values("patient_id"), status=PrescriptionStatus.ACTIVE
    )
    for values in (
        visible_to(user, active)
        .order_by("-written_on", "-pk")
        .values_list(*RX_COLUMNS, "pharmacy__name", "pharmacy__lead_time_days")
    ):
        rx = Rx(*values[:-2], values[-2] or "", supply.DEFAULT_LEAD_TIME_DAYS if values[-1] is None else values[-1])
        rx_of[rx.patient_id].append(rx)
    found = PlanRows([], [])
    formulations = _Rules()
    for plan_id, patient_id, prescription_id, target, zone in rows:
        state = _state(plan_id, patient_id, prescription_id, target, zone, today, steps_of[plan_id], rx_of[patient_id])
        if state.due_day is not None and state.today <= state.due_day < state.today + dt.timedelta(
            days=STEP_WINDOW_DAYS
        ):
            found.steps.append(((state.due_day.toordinal(), plan_id), state))
        runout = _runout(state, formulations)
        if runout is not None:
            found.supply.append((runout["sort"], state, runout))
        rx3 = _rx3(state, formulations)
        if rx3 is not None:
            found.supply.append((rx3["sort"], state, rx3))
    found.steps.sort(key=lambda row: row[0])
    found.supply.sort(key=lambda row: row[0])
    return found


def _state(plan_id, patient_id, prescription_id, target, zone, today, steps, active) -> PlanState:
    day = today[zone]
    current = next((s for s in reversed(steps) if s.status in (StepStatus.ACTIVE, StepStatus.HELD)), None)
    following = step_day = due_day = None
    if current is not None:
        following = next((s for s in steps if s.sequence > current.sequence and s.status == StepStatus.PLANNED), None)
    if following is not None:
        earliest = (current.actual_start or current.planned_start) + dt.timedelta(days=current.min_days)
        step_day = due_day = max(following.planned_start, earliest)
        if due_day < day:  # held past its evening: REM-1 asks again every 7 days
            due_day += dt.timedelta(weeks=math.ceil((day - due_day).days / 7))
    own = next((rx for rx in active if rx.id == prescription_id), None)  # the plan's own, if active
    return PlanState(
        plan_id,
        patient_id,
        prescription_id,
        target,
        zone,
        day,
        steps,
        current,
        following,
        step_day,
        due_day,
        own or next(iter(active), None),
        active,
    )


def _runout(state: PlanState, formulations: _Rules) -> dict | None:
    """When the active prescription, refills included, runs out on the plan's schedule (RX-2 in mg,
    ``supply.supply_runs_out``), shown from a week before a new one must reach the pharmacy (its lead
    time). Unlike the patient's refill reminder (``content.refill_reminder_day``, one fill), refills
    count: the pharmacy dispenses those without the clinic, and the clinic's part is the prescription
    after the last one."""
    rx, today = state.rx, state.today
    formulation = formulations.formulation(rx) if rx is not None and rx.start_on else None
    if formulation is None:
        return None
    whole = formulations.with_refills(formulation, rx.refills)
    schedule = tuple(
        (s.actual_start or s.planned_start, s.dose_mg) for s in state.steps if s.status != StepStatus.SKIPPED
    )
    try:
        runs_out = formulations.runs_out(whole, rx.start_on, schedule)
    except ValueError:  # eye drops: not systemic LDN, no supply for titration
        return None
    if runs_out is None:
        return None
    order_by = supply.reorder_by(runs_out, rx.lead_time_days)
    if order_by > today + dt.timedelta(days=SUPPLY_NOTICE_DAYS):
        return None
    return {
        "kind": "runout",
        "runs_out": runs_out,
        "order_by": order_by,
        "formulation": formulation,
        "sort": (max(order_by, today).toordinal(), 1, state.plan_id),
    }


def _rx3(state: PlanState, formulations: _Rules) -> dict | None:
    """RX-3: the next planned step cannot be made from any active prescription's formulation (or there
    is none), so a new prescription is due by the step's date minus the pharmacy's lead time, or at once
    when that has passed."""
    step, today = state.following, state.today
    if step is None:
        return None
    for candidate in state.active_rxs:
        formulation = formulations.formulation(candidate)
        if formulation is not None and formulations.makes(step.dose_mg, formulation):
            return None
    lead = state.rx.lead_time_days if state.rx is not None else supply.DEFAULT_LEAD_TIME_DAYS
    needed_by = supply.reorder_by(step.planned_start if state.step_day is None else state.step_day, lead)
    return {"kind": "rx3", "needed_by": needed_by, "sort": (max(needed_by, today).toordinal(), 0, state.plan_id)}


# --- The rows shown --------------------------------------------------------------------------------------------


def _url(name: str, *args) -> str | None:
    return worklist_rows.url(name, *args)  # looked up at each call, as the rows module's own rows do


def shown(rows: list, span: Span) -> list:
    return rows[span.offset : span.end]


def step_items(steps: list[tuple[tuple, PlanState]], patients: dict[int, Patient]) -> list[Item]:
    """The rows of the steps due, with the step-up rule's decision for their due evening.

    Asked for the evening the step is due, as the REM-1 reminder will ask it that day, on what is known
    now: a step due in three days is not "held" merely because its minimum days end then."""
    if not steps:
        return []
    states = [state for _, state in steps]
    plans, steps_of, active = _models(states, patients)
    reviews = ClinicianTask.objects.filter(
        patient_id__in={s.patient_id for s in states}, kind=TaskKind.SIDE_EFFECT, status=TaskStatus.OPEN
    ).values_list("key", flat=True)
    under_review = set(reviews)
    decisions = content.step_up_decisions_for(
        [(plans[s.plan_id], next(x for x in steps_of[s.plan_id] if x.pk == s.following.id)) for s in states],
        {s.patient_id: s.due_day for s in states},
        steps_of=steps_of,
        active_prescriptions=active,
        lab_blocks=lab_step_up_blocks_for({s.patient_id for s in states}),
    )
    out = []
    for state in states:
        current, step = state.current, state.following
        decision = decisions.get(state.plan_id)
        reasons = [r.text for r in decision.reasons] if decision else ["the step-up rule could not be read"]
        allowed = bool(decision and decision.allowed)
        if f"side-effect:{current.id}" in under_review:  # SE-4: reminders wait for the review too
            allowed = False
            reasons.insert(0, "held: a severe side effect is under review; step-up reminders are paused (SE-4)")
        change = f"{rules.fmt_mg(current.dose_mg)} → {rules.fmt_mg(step.dose_mg)} mg"
        late = f" (first due {day_text(state.step_day)})" if state.step_day < state.due_day else ""
        out.append(
            Item(
                kind="steps",
                patient=patients[state.patient_id],
                title=f"Step {step.sequence}: {change}",
                reasons=tuple(reasons),
                when=f"Due {day_text(state.due_day)}{late}",
                tone="ok" if allowed else "medium",
                badge="Allowed" if allowed else "Held",
                links=links_of(("Step up" if allowed else "Review plan", _url("plan", state.plan_id))),
                sort=(state.due_day.toordinal(), state.plan_id),
            )
        )
    return out


def _models(states: list[PlanState], patients: dict[int, Patient]):
    """The shown plans' rows as model instances, for the step-up rule, without reading them again."""
    plans, steps_of, active, seen = {}, {}, [], set()
    for state in states:
        plan = TitrationPlan(
            id=state.plan_id,
            patient_id=state.patient_id,
            prescription_id=state.prescription_id,
            target_dose_mg=state.target_dose_mg,
            status=PlanStatus.ACTIVE,
        )
        plan.patient = patients[state.patient_id]
        plans[state.plan_id] = plan
        steps_of[state.plan_id] = [
            TitrationStep(**{name: getattr(s, name) for name in STEP_COLUMNS}) for s in state.steps
        ]
        for rx in state.active_rxs:
            if rx.id not in seen:
                seen.add(rx.id)
                active.append(_model(rx))
    active.sort(key=lambda rx: (rx.written_on, rx.pk), reverse=True)
    return plans, steps_of, active


def _model(rx: Rx) -> CompoundedPrescription:
    return CompoundedPrescription(**{name: getattr(rx, name) for name in RX_COLUMNS})


def supply_items(rows: list[tuple[tuple, PlanState, dict]], patients: dict[int, Patient]) -> list[Item]:
    return [
        (_runout_item if found["kind"] == "runout" else _rx3_item)(state, found, patients[state.patient_id])
        for _, state, found in rows
    ]


def _runout_item(state: PlanState, found: dict, patient: Patient) -> Item:
    rx, today, runs_out, order_by = state.rx, state.today, found["runs_out"], found["order_by"]
    left = (runs_out - today).days
    short = left < supply.SUPPLY_WARN_DAYS
    if left < 0:
        left_text = f"ran out {-left} day{'s' if left != -1 else ''} ago"
    else:
        left_text = "runs out today" if left == 0 else f"{left} day{'s' if left != 1 else ''} left"
    fills = f"{rx.quantity.normalize():f} {rx.quantity_unit}" + (
        f" and {rx.refills} refill{'s' if rx.refills != 1 else ''}" if rx.refills else ""
    )
    reasons = (
        f"{supply.describe(found['formulation'])}, {fills}, from {day_text(rx.start_on)}: {left_text}"
        + (" (RX-3: under 7 days)" if short else ""),
        f"{rx.pharmacy_name if rx.pharmacy_id else 'the pharmacy'} needs {rx.lead_time_days} days"
        " to compound and deliver",
    )
    past = runs_out < today
    return Item(
        kind="supply",
        patient=patient,
        title=f"Prescription {'ran' if past else 'runs'} out {day_text(runs_out)}",
        reasons=reasons,
        when=f"New prescription by {day_text(order_by)}" + (" (overdue)" if order_by < today else ""),
        tone="high" if short else "medium",
        badge="Supply",
        links=links_of(("New prescription", _url("prescription-new", state.patient_id))),
        sort=found["sort"],
    )


def _rx3_item(state: PlanState, found: dict, patient: Patient) -> Item:
    step, today, rx, needed_by = state.following, state.today, state.rx, found["needed_by"]
    dose = f"{rules.fmt_mg(step.dose_mg)} mg"
    if rx is None:
        why = f"no active LDN prescription: step {step.sequence} ({dose}) needs one"
    else:
        formulation = content.formulation(rx)
        made_of = supply.describe(formulation) if formulation is not None else str(_model(rx))
        why = f"the next step {dose} cannot be made from {made_of}: a new strength or form is needed (RX-3)"
    return Item(
        kind="supply",
        patient=patient,
        title=f"New prescription needed by {day_text(needed_by)}",
        reasons=(why, f"step {step.sequence} is planned for {day_text(state.step_day or step.planned_start)}"),
        when="Needed now (overdue)" if needed_by < today else f"Needed by {day_text(needed_by)}",
        tone="high" if needed_by <= today else "medium",
        badge="RX-3",
        links=links_of(("New prescription", _url("prescription-new", state.patient_id))),
        sort=found["sort"],
    )
