"""The worklist's reads: what needs a clinician today, in the user's clinics, one kind at a time.

Every queryset starts from ``ldnclinic.scoping.visible_to`` (a user in two clinics sees both, each row
labelled), and each kind is read in bulk: the page takes the same number of queries with 5 rows of a
kind as with 500. Dates are each patient's own (``patients.services.patient_today``).

Kinds, in the order the page shows them:
- conflicts: open opioid flags (conflict, unavailable, then caution and the rest), with the earliest
  safe LDN start or why there is none (OPI-W1/W2);
- steps: the next planned step falling due in the patient's next 7 days (REM-1's evening, as
  ``titration.reminders._next_step_up_day`` computes it), allowed or held with the step-up rule's
  reasons (1.3);
- side_effects: severe-effect review tasks (SE-4, SE-3's morning-dose suggestion), and check-ins with
  side effects recorded after the patient's last "side effects reviewed" mark;
- missed_checkins: active patients with no check-in for 8 days or more (REM-3);
- supply: supplies running out (RX-3, the refill day) and new prescriptions needed because the next
  step cannot be made from what is dispensed (RX-3);
- labs: liver reviews and lab alerts (LAB-2 tasks); efficacy: EFF-1 review tasks; tasks: the other
  open clinician tasks; reminders: reminders that failed and have not been followed by one that went.

A row leaves the list when what it asks for is done: the flag acknowledged, the task closed, the side
effects marked reviewed, the patient checking in, a reminder getting through.
"""

import dataclasses
import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Prefetch
from django.utils import timezone

from ldnclinic.scoping import visible_to
from patients.flag_models import ClinicianTask, ConflictFlag, FlagStatus, TaskKind, TaskStatus
from patients.models import Clinic, Patient, PatientStatus
from patients.services import patient_today
from titration import content, rules, supply
from titration.models import (
    CompoundedPrescription,
    PlanStatus,
    PrescriptionStatus,
    StepStatus,
    TitrationPlan,
    TitrationStep,
)

from .access import can
from .worklist_rows import (
    Item,
    PostAction,
    conflict_items,
    day_text,
    links_of,
    missed_checkin_items,
    reminder_items,
    side_effect_items,
    task_items,
    url,
)

KINDS: tuple[tuple[str, str], ...] = (
    ("conflicts", "Open conflicts"),
    ("steps", "Steps due this week"),
    ("side_effects", "Side effects to review"),
    ("missed_checkins", "Missed check-ins"),
    ("supply", "Supplies and new prescriptions"),
    ("labs", "Liver reviews and lab alerts"),
    ("reminders", "Failed reminders"),
    ("efficacy", "Efficacy reviews due"),
    ("tasks", "Open tasks"),
)
KIND_LABELS = dict(KINDS)
MINE, UNASSIGNED, EVERYONE = "mine", "unassigned", "everyone"
ASSIGNEES = ((EVERYONE, "Everyone"), (MINE, "Mine"), (UNASSIGNED, "Unassigned"))

STEP_WINDOW_DAYS = 7  # "this week": the patient's today and the 6 days after
SUPPLY_NOTICE_DAYS = 7  # show a refill this many days before it must be ordered


@dataclass
class Section:
    key: str
    label: str
    items: list[Item] = field(default_factory=list)


@dataclass
class Worklist:
    sections: list[Section]  # the kinds asked for, in page order
    counts: list[tuple[str, str, int]]  # (kind, label, rows) for every kind, under the assignee filter
    total: int
    multi_clinic: bool
    clinics: list[Clinic]


# --- The page ---------------------------------------------------------------------------------------


def worklist_for(*, user, kind: str = "", assignee: str = EVERYONE) -> Worklist:
    """Everything on the user's worklist, filtered by kind ('' for all) and by whose tasks they are."""
    now = timezone.now()
    clinics = list(visible_to(user, Clinic))
    patients = visible_to(user, Patient.objects.all())  # not archived
    flags = list(
        visible_to(user, ConflictFlag.objects.filter(status=FlagStatus.OPEN, patient__deleted_at__isnull=True))
        .select_related("patient__clinic")
        .order_by("pk")
    )
    tasks = list(
        visible_to(user, ClinicianTask.objects.filter(status=TaskStatus.OPEN, patient__deleted_at__isnull=True))
        .select_related("patient__clinic", "assigned_to")
        .order_by("created_at", "pk")
    )
    plans = _active_plans(user)
    items = (
        conflict_items(flags)
        + task_items(tasks)
        + _step_items(plans, tasks)
        + side_effect_items(user, now, tasks)
        + missed_checkin_items(patients, now)
        + _supply_items(plans)
        + reminder_items(user, now)
    )
    items = [_with_actions(i, user) for i in items if _assigned_as_asked(i, user, assignee)]
    by_kind: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        by_kind[item.kind].append(item)
    for rows in by_kind.values():
        rows.sort(key=lambda i: i.sort)
    counts = [(key, label, len(by_kind[key])) for key, label in KINDS]
    shown = [key for key, _ in KINDS if not kind or key == kind]
    return Worklist(
        sections=[Section(key, KIND_LABELS[key], by_kind[key]) for key in shown],
        counts=counts,
        total=sum(n for _, _, n in counts),
        multi_clinic=len(clinics) > 1,
        clinics=clinics,
    )


def _with_actions(item: Item, user) -> Item:
    """Offer the row's buttons only to the roles that may press them (the services check again):
    reviewing side effects and taking on tasks are a prescriber's or a nurse's."""
    if not item.posts:
        return item
    if not can(user, item.patient.clinic_id, "task_assign" if item.task is not None else "side_effects_review"):
        item.posts = ()
    elif item.task is not None and item.task.assigned_to_id == user.pk:
        item.posts = tuple(
            PostAction("Hand back", p.url, (("to", "nobody"),)) if p.label == "Assign to me" else p for p in item.posts
        )
    return item


def _assigned_as_asked(item: Item, user, assignee: str) -> bool:
    """Mine: the tasks assigned to the user. Unassigned: tasks nobody has taken, and every row that is
    not a task (nobody can take those on). Everyone: all."""
    if assignee == MINE:
        return item.task is not None and item.task.assigned_to_id == user.pk
    if assignee == UNASSIGNED:
        return item.task is None or item.task.assigned_to_id is None
    return True


# --- Plans: steps due, supply, RX-3 ----------------------------------------------------------------


@dataclass
class _PlanState:
    plan: TitrationPlan
    today: dt.date
    steps: list[TitrationStep]
    current: TitrationStep | None
    following: TitrationStep | None  # the next planned step after the current one
    step_day: dt.date | None  # the first evening the following step can be taken (before any re-ask)
    due_day: dt.date | None  # REM-1's evening: step_day, or the next weekly re-ask when it has passed
    rx: CompoundedPrescription | None  # content.active_prescription's choice
    active_rxs: list[CompoundedPrescription]


def _active_plans(user) -> list[_PlanState]:
    plans = list(
        visible_to(
            user,
            TitrationPlan.objects.filter(
                status=PlanStatus.ACTIVE, patient__status=PatientStatus.ACTIVE, patient__deleted_at__isnull=True
            ),
        )
        .select_related("patient__clinic", "prescription__pharmacy")
        .prefetch_related(Prefetch("steps", queryset=TitrationStep.objects.order_by("sequence")))
        .order_by("pk")
    )
    rxs: dict[int, list[CompoundedPrescription]] = defaultdict(list)
    for rx in (
        CompoundedPrescription.objects.filter(
            patient_id__in=[p.patient_id for p in plans], status=PrescriptionStatus.ACTIVE
        )
        .select_related("pharmacy")
        .order_by("-written_on", "-pk")
    ):
        rxs[rx.patient_id].append(rx)
    states = []
    for plan in plans:
        today = patient_today(plan.patient)
        steps = list(plan.steps.all())
        current = next((s for s in reversed(steps) if s.status in (StepStatus.ACTIVE, StepStatus.HELD)), None)
        following = step_day = due_day = None
        if current is not None:
            following = next(
                (s for s in steps if s.sequence > current.sequence and s.status == StepStatus.PLANNED), None
            )
        if following is not None:
            earliest = (current.actual_start or current.planned_start) + dt.timedelta(days=current.min_days)
            step_day = due_day = max(following.planned_start, earliest)
            if due_day < today:  # held past its evening: REM-1 asks again every 7 days
                due_day += dt.timedelta(weeks=math.ceil((today - due_day).days / 7))
        own = plan.prescription
        if own is not None and (own.status != PrescriptionStatus.ACTIVE or own.deleted_at is not None):
            own = None
        active = rxs[plan.patient_id]
        states.append(
            _PlanState(
                plan, today, steps, current, following, step_day, due_day, own or next(iter(active), None), active
            )
        )
    return states


def _step_items(plans: list[_PlanState], tasks: list[ClinicianTask]) -> list[Item]:
    due = [
        s
        for s in plans
        if s.due_day is not None and s.today <= s.due_day < s.today + dt.timedelta(days=STEP_WINDOW_DAYS)
    ]
    decisions = _decisions(due)
    under_review = {t.key for t in tasks if t.kind == TaskKind.SIDE_EFFECT}
    out = []
    for state in due:
        plan, current, step = state.plan, state.current, state.following
        decision = decisions.get(plan.pk)
        reasons = [r.text for r in decision.reasons] if decision else ["the step-up rule could not be read"]
        allowed = bool(decision and decision.allowed)
        if f"side-effect:{current.pk}" in under_review:  # SE-4: reminders wait for the review too
            allowed = False
            reasons.insert(0, "held: a severe side effect is under review; step-up reminders are paused (SE-4)")
        change = f"{rules.fmt_mg(current.dose_mg)} → {rules.fmt_mg(step.dose_mg)} mg"
        late = f" (first due {day_text(state.step_day)})" if state.step_day < state.due_day else ""
        out.append(
            Item(
                kind="steps",
                patient=plan.patient,
                title=f"Step {step.sequence}: {change}",
                reasons=tuple(reasons),
                when=f"Due {day_text(state.due_day)}{late}",
                tone="ok" if allowed else "medium",
                badge="Allowed" if allowed else "Held",
                links=links_of(("Step up" if allowed else "Review plan", url("plan", plan.pk))),
                sort=(state.due_day.toordinal(), int(not allowed), plan.pk),
            )
        )
    return out


def _decisions(states: list[_PlanState]) -> dict:
    """{plan id: the step-up rule's Decision for the plan's next step, asked for its due evening}.

    Asked for the evening the step is due, as the REM-1 reminder will ask it that day, on what is known
    now: a step due in three days is not "held" merely because its minimum days end then. The one
    place the worklist asks the rule; ``content.step_up_decisions_for`` reads all plans in a fixed
    number of queries.
    """
    return content.step_up_decisions_for(
        [(s.plan, s.following) for s in states], {s.plan.patient_id: s.due_day for s in states}
    )


def _supply_items(plans: list[_PlanState]) -> list[Item]:
    """RX-3 both ways: the supply runs out soon, or the next step cannot be made from it."""
    return _runout_items(plans) + _rx3_items(plans)


def _lead_time(rx: CompoundedPrescription | None) -> int:
    if rx is not None and rx.pharmacy_id:
        return rx.pharmacy.lead_time_days
    return supply.DEFAULT_LEAD_TIME_DAYS


def _runout_items(plans: list[_PlanState]) -> list[Item]:
    """When the active prescription, refills included, runs out on the plan's schedule (RX-2 in mg,
    ``supply.supply_runs_out``), shown from a week before a new one must reach the pharmacy (its lead
    time). Unlike the patient's refill reminder (``content.refill_reminder_day``, one fill), refills
    count: the pharmacy dispenses those without the clinic, and the clinic's part is the prescription
    after the last one."""
    out = []
    for state in plans:
        rx, today = state.rx, state.today
        formulation = content.formulation(rx) if rx is not None and rx.start_on else None
        if formulation is None:
            continue
        whole = dataclasses.replace(formulation, quantity=formulation.quantity * (1 + rx.refills))
        schedule = [
            (s.actual_start or s.planned_start, s.dose_mg) for s in state.steps if s.status != StepStatus.SKIPPED
        ]
        try:
            runs_out = supply.supply_runs_out(whole, rx.start_on, schedule)
        except ValueError:  # eye drops: not systemic LDN, no supply for titration
            continue
        if runs_out is None:
            continue
        lead = _lead_time(rx)
        order_by = supply.reorder_by(runs_out, lead)
        if order_by > today + dt.timedelta(days=SUPPLY_NOTICE_DAYS):
            continue
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
            f"{supply.describe(formulation)}, {fills}, from {day_text(rx.start_on)}: {left_text}"
            + (" (RX-3: under 7 days)" if short else ""),
            f"{rx.pharmacy.name if rx.pharmacy_id else 'the pharmacy'} needs {lead} days to compound and deliver",
        )
        past = runs_out < today
        out.append(
            Item(
                kind="supply",
                patient=state.plan.patient,
                title=f"Prescription {'ran' if past else 'runs'} out {day_text(runs_out)}",
                reasons=reasons,
                when=f"New prescription by {day_text(order_by)}" + (" (overdue)" if order_by < today else ""),
                tone="high" if short else "medium",
                badge="Supply",
                links=links_of(("New prescription", url("prescription-new", state.plan.patient_id))),
                sort=(max(order_by, today).toordinal(), 1, state.plan.pk),
            )
        )
    return out


def _rx3_items(plans: list[_PlanState]) -> list[Item]:
    """RX-3: the next planned step cannot be made from any active prescription's formulation (or there
    is none), so a new prescription is due by the step's date minus the pharmacy's lead time, or at once
    when that has passed. Swappable for titration/prescribing.py's RX-3 read."""
    out = []
    for state in plans:
        step, today, rx = state.following, state.today, state.rx
        if step is None:
            continue
        makes = []
        for candidate in state.active_rxs:
            formulation = content.formulation(candidate)
            if formulation is not None and supply.measure(step.dose_mg, formulation) is not None:
                makes.append(candidate)
        if makes:
            continue
        needed_by = step.planned_start if state.step_day is None else state.step_day
        needed_by = supply.reorder_by(needed_by, _lead_time(rx))
        dose = f"{rules.fmt_mg(step.dose_mg)} mg"
        if rx is None:
            why = f"no active LDN prescription: step {step.sequence} ({dose}) needs one"
        else:
            formulation = content.formulation(rx)
            made_of = supply.describe(formulation) if formulation is not None else str(rx)
            why = f"the next step {dose} cannot be made from {made_of}: a new strength or form is needed (RX-3)"
        out.append(
            Item(
                kind="supply",
                patient=state.plan.patient,
                title=f"New prescription needed by {day_text(needed_by)}",
                reasons=(why, f"step {step.sequence} is planned for {day_text(state.step_day or step.planned_start)}"),
                when="Needed now (overdue)" if needed_by < today else f"Needed by {day_text(needed_by)}",
                tone="high" if needed_by <= today else "medium",
                badge="RX-3",
                links=links_of(("New prescription", url("prescription-new", state.plan.patient_id))),
                sort=(max(needed_by, today).toordinal(), 0, state.plan.pk),
            )
        )
    return out
