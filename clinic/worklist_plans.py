"""The worklist's rows that come from active plans: steps due this week (REM-1, 1.3) and supply (RX-3:
running out, or a next step the dispensed strength cannot make).

What is coming for each plan is ``titration.outlook``'s question. Its stored copy (``PlanOutlook``, one row
per active plan) is what the database counts and orders here, in each patient's own calendar; the rows
the page shows are then read afresh (``outlook.read``: three queries) and only they become objects: their
patients, the step-up rule's decision (``content.step_up_decisions_for`` on rows already read) and the
row's text. A clinic of 2,000 active plans costs two indexed queries and the 20 rows shown.
"""

import datetime as dt
from dataclasses import dataclass

from django.db.models import Case, Count, DateField, F, IntegerField, Q, Value, When, Window
from django.db.models.functions import Greatest, Mod

from ldnclinic.scoping import visible_to
from patients.flag_models import ClinicianTask, TaskKind, TaskStatus
from patients.labs import lab_step_up_blocks_for
from patients.models import Patient, PatientStatus
from titration import content, outlook, rules, supply
from titration.models import PlanStatus, TitrationPlan, TitrationStep
from titration.outlook import STEP_COLUMNS, Facts
from titration.outlook_models import PlanOutlook

from . import worklist_rows
from .worklist_rows import Item, Span, day_text, links_of, per_zone

STEP_WINDOW_DAYS = 7  # "this week": the patient's today and the 6 days after
SUPPLY_NOTICE_DAYS = 7  # show a refill this many days before it must be ordered
RX3, RUNOUT = 0, 1  # at the same date, a step nobody can make comes before a supply running low


@dataclass
class PlanRows:
    """What the page shows from plans: each kind's count and its rows asked for, in page order."""

    steps_count: int
    steps: list[tuple[Facts, dt.date]]  # (the plan, the evening its step is due)
    supply_count: int
    supply: list[tuple[Facts, dict]]


def _outlooks(user):
    found = PlanOutlook.objects.filter(
        plan__status=PlanStatus.ACTIVE,
        plan__deleted_at__isnull=True,
        patient__status=PatientStatus.ACTIVE,
        patient__deleted_at__isnull=True,
    )
    return worklist_rows.in_clinics(visible_to(user, found), user, "patient")


def _by_zone(today: dict[str, dt.date], expression, output_field):
    """``expression(that zone's date)`` for each patient's own zone, as one SQL expression."""
    whens = [When(patient__time_zone=zone, then=expression(day)) for zone, day in today.items()]
    return Case(*whens, default=None, output_field=output_field)


def _due(day: dt.date):
    """``Facts.due_day`` in SQL on the stored day number: the step's evening, or when it has passed the
    next weekly re-ask on or after ``day``."""
    t = day.toordinal()
    again = Value(t) + Mod(Value(7) - Mod(Value(t) - F("step_day"), Value(7)), Value(7))
    return Case(When(step_day__gte=t, then=F("step_day")), default=again, output_field=IntegerField())


def read_plans(user, today: dict[str, dt.date], steps: Span, supplies: Span) -> PlanRows:
    """The counts of steps due and supply rows in the user's clinics, and the rows of each span."""
    stored = _outlooks(user)
    due = per_zone(today, "patient__time_zone", lambda zone, day: Q(step_day__lt=(day.toordinal() + STEP_WINDOW_DAYS)))
    by_due = stored.filter(due).annotate(sort=_by_zone(today, _due, IntegerField())).order_by("sort", "plan_id")
    step_rows = _cut(by_due, steps, ("plan_id", "sort"))
    notice = per_zone(
        today, "patient__time_zone", lambda zone, day: Q(reorder_by__lte=day + dt.timedelta(days=SUPPLY_NOTICE_DAYS))
    )
    runouts = _cut(
        stored.filter(notice)
        .annotate(sort=_by_zone(today, lambda d: Greatest(F("reorder_by"), Value(d)), DateField()))
        .order_by("sort", "plan_id"),
        Span(0, supplies.end),
        ("plan_id", "sort"),
    )
    rx3s = _cut(
        stored.filter(new_rx_by__isnull=False)
        .annotate(sort=_by_zone(today, lambda d: Greatest(F("new_rx_by"), Value(d)), DateField()))
        .order_by("sort", "plan_id"),
        Span(0, supplies.end),
        ("plan_id", "sort"),
    )
    wanted = sorted(
        [(_ordinal(sort), RX3, plan_id) for plan_id, sort in rx3s[1]]
        + [(_ordinal(sort), RUNOUT, plan_id) for plan_id, sort in runouts[1]]
    )[supplies.offset : supplies.end]
    facts = {f.plan_id: f for f in outlook.read({row[0] for row in step_rows[1]} | {w[2] for w in wanted})}
    shown_steps = []
    for plan_id, _ in step_rows[1]:
        found = facts.get(plan_id)
        due_day = found.due_day(today[found.zone]) if found is not None else None
        if due_day is not None:  # read afresh: a row its stored copy misplaced is left out, never misstated
            shown_steps.append((found, due_day))
    shown_supply = []
    for _, kind, plan_id in wanted:
        found = facts.get(plan_id)
        row = found and (_runout(found, today[found.zone]) if kind == RUNOUT else _rx3(found, today[found.zone]))
        if row:
            shown_supply.append((found, row))
    return PlanRows(step_rows[0], shown_steps, runouts[0] + rx3s[0], shown_supply)


def _ordinal(value) -> int:
    """A sort value read back from the database as a day: a date (PostgreSQL) or its ISO text (SQLite)."""
    day = value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
    return day.toordinal()


def _cut(queryset, span: Span, fields: tuple[str, ...]) -> tuple[int, list[tuple]]:
    """(every row's count, the span's rows as tuples), in one query when there are rows to show."""
    if not span.limit:
        return queryset.count(), []
    rows = list(queryset.annotate(total=Window(Count("*"))).values_list(*fields, "total")[span.offset : span.end])
    if not rows:
        return (queryset.count() if span.offset else 0), []
    return rows[0][-1], [row[:-1] for row in rows]


def _runout(facts: Facts, today: dt.date) -> dict | None:
    """The supply, refills included, runs out on the plan's schedule; shown from a week before a new
    prescription must reach the pharmacy. Unlike the patient's refill reminder (``content.refill_reminder_day``,
    one fill), refills count: the pharmacy dispenses those without the clinic."""
    found = facts.runout
    if found is None or found.order_by > today + dt.timedelta(days=SUPPLY_NOTICE_DAYS):
        return None
    return {
        "kind": "runout",
        "runs_out": found.runs_out,
        "order_by": found.order_by,
        "formulation": found.formulation,
        "today": today,
    }


def _rx3(facts: Facts, today: dt.date) -> dict | None:
    """RX-3: the next planned step cannot be made from any active prescription (or there is none), so a new
    prescription is due by the step's date minus the pharmacy's lead time, or at once when that has passed."""
    if facts.new_rx_by is None:
        return None
    return {"kind": "rx3", "needed_by": facts.new_rx_by, "today": today}


# --- The rows shown --------------------------------------------------------------------------------------------


def _url(name: str, *args) -> str | None:
    return worklist_rows.url(name, *args)  # looked up at each call, as the rows module's own rows do


def step_items(steps: list[tuple[Facts, dt.date]], patients: dict[int, Patient]) -> list[Item]:
    """The rows of the steps due, with the step-up rule's decision for their due evening.

    Asked for the evening the step is due, as the REM-1 reminder will ask it that day, on what is known
    now: a step due in three days is not "held" merely because its minimum days end then."""
    if not steps:
        return []
    states = [facts for facts, _ in steps]
    plans, steps_of, active = _models(states, patients)
    reviews = ClinicianTask.objects.filter(
        patient_id__in={s.patient_id for s in states}, kind=TaskKind.SIDE_EFFECT, status=TaskStatus.OPEN
    ).values_list("key", flat=True)
    under_review = set(reviews)
    decisions = content.step_up_decisions_for(
        [(plans[s.plan_id], next(x for x in steps_of[s.plan_id] if x.pk == s.following.id)) for s in states],
        {facts.patient_id: due_day for facts, due_day in steps},
        steps_of=steps_of,
        active_prescriptions=active,
        lab_blocks=lab_step_up_blocks_for({s.patient_id for s in states}),
    )
    out = []
    for state, due_day in steps:
        current, step = state.current, state.following
        decision = decisions.get(state.plan_id)
        reasons = [r.text for r in decision.reasons] if decision else ["the step-up rule could not be read"]
        allowed = bool(decision and decision.allowed)
        if f"side-effect:{current.id}" in under_review:  # SE-4: reminders wait for the review too
            allowed = False
            reasons.insert(0, "held: a severe side effect is under review; step-up reminders are paused (SE-4)")
        change = f"{rules.fmt_mg(current.dose_mg)} → {rules.fmt_mg(step.dose_mg)} mg"
        late = f" (first due {day_text(state.step_day)})" if state.step_day < due_day else ""
        out.append(
            Item(
                kind="steps",
                patient=patients[state.patient_id],
                title=f"Step {step.sequence}: {change}",
                reasons=tuple(reasons),
                when=f"Due {day_text(due_day)}{late}",
                tone="ok" if allowed else "medium",
                badge="Allowed" if allowed else "Held",
                links=links_of(("Step up" if allowed else "Review plan", _url("plan", state.plan_id))),
                sort=(due_day.toordinal(), state.plan_id),
            )
        )
    return out


def _models(states: list[Facts], patients: dict[int, Patient]):
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
                active.append(rx.as_model())
    active.sort(key=lambda rx: (rx.written_on, rx.pk), reverse=True)
    return plans, steps_of, active


def supply_items(rows: list[tuple[Facts, dict]], patients: dict[int, Patient]) -> list[Item]:
    return [
        (_runout_item if found["kind"] == "runout" else _rx3_item)(state, found, patients[state.patient_id])
        for state, found in rows
    ]


def _runout_item(state: Facts, found: dict, patient: Patient) -> Item:
    rx, today, runs_out, order_by = state.rx, found["today"], found["runs_out"], found["order_by"]
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
        sort=(max(order_by, today).toordinal(), RUNOUT, state.plan_id),
    )


def _rx3_item(state: Facts, found: dict, patient: Patient) -> Item:
    step, today, rx, needed_by = state.following, found["today"], state.rx, found["needed_by"]
    dose = f"{rules.fmt_mg(step.dose_mg)} mg"
    if rx is None:
        why = f"no active LDN prescription: step {step.sequence} ({dose}) needs one"
    else:
        formulation = content.formulation(rx)
        made_of = supply.describe(formulation) if formulation is not None else str(rx.as_model())
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
        sort=(max(needed_by, today).toordinal(), RX3, state.plan_id),
    )
