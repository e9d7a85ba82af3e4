"""What a reminder says, decided when it is sent (domain.md section 6).

Messages are short and plain: the dose in mg and in what the patient measures, never a diagnosis,
and a link to the check-in page when there is one. A step-up reminder asks the step-up rule on the
day (REM-1): if the step cannot go ahead the patient is told to stay on their dose, and a hold that
passes 14 days raises a clinician task.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal

from django.conf import settings
from django.urls import NoReverseMatch, reverse

from patients.flag_models import ClinicianTask, ConflictFlag, FlagKind, FlagStatus, TaskKind
from patients.labs import lab_step_up_blocks_for
from symptoms.invitations import invitation_for
from symptoms.models import SymptomCheckIn

from . import rules, schedule, supply
from .models import CompoundedPrescription, PlanStatus, PrescriptionStatus, StepStatus, TitrationPlan, TitrationStep
from .reminder_models import Reminder, ReminderKind, ReminderStatus

HOLD_TASK_DAYS = 14  # REM-1
SIDE_EFFECT_WINDOW_DAYS = 28


def fmt_mg(dose: Decimal) -> str:
    return f"{rules.fmt_mg(dose)} mg"


def formulation(rx: CompoundedPrescription) -> supply.Formulation | None:
    """The prescription as the supply rules see it; None when its units do not fit its form."""
    try:
        return supply.Formulation(
            form=rx.form,
            strength_value=rx.strength_value,
            strength_unit=rx.strength_unit,
            quantity=rx.quantity,
            quantity_unit=rx.quantity_unit,
            days_supply=rx.days_supply,
        )
    except ValueError:
        return None


def measured(dose: Decimal, rx: CompoundedPrescription | None) -> supply.Measure | None:
    f = formulation(rx) if rx else None
    return supply.measure(dose, f) if f else None


def active_prescription(plan: TitrationPlan) -> CompoundedPrescription | None:
    rx = plan.prescription
    if rx is not None and rx.status == PrescriptionStatus.ACTIVE and rx.deleted_at is None:
        return rx
    return (
        CompoundedPrescription.objects.filter(patient_id=plan.patient_id, status=PrescriptionStatus.ACTIVE)
        .order_by("-written_on")
        .first()
    )


def dose_text(dose: Decimal, rx: CompoundedPrescription | None) -> str:
    amount = measured(dose, rx)
    return f"{fmt_mg(dose)} ({amount.text})" if amount else fmt_mg(dose)


def current_step(plan: TitrationPlan) -> TitrationStep | None:
    return (
        plan.steps.filter(status__in=[StepStatus.ACTIVE, StepStatus.HELD], deleted_at__isnull=True)
        .order_by("-sequence")
        .first()
    )


def _observations(checkins, steps: list[TitrationStep], zone, since: dt.date, today: dt.date, target_mg):
    """Side-effect answers as the rules read them (check-ins oldest first, side effects prefetched)."""
    started = sorted((s for s in steps if s.actual_start is not None), key=lambda s: s.actual_start)
    observations, seen = [], set()
    for checkin in checkins:
        day = checkin.recorded_at.astimezone(zone).date()
        if day < since or day > today:
            continue
        # A check-in on the day a step starts reports on the dose before it: LDN is taken at night, and the
        # step a check-in's side effect causes (an SE-2 step back) starts that same day. Crediting it to the
        # new step would count the report again at the lower dose and step back twice.
        at_dose = next((s.dose_mg for s in reversed(started) if s.actual_start < day), target_mg)
        reported = {}
        for report in checkin.side_effects.all():
            reported[report.effect] = report.severity
            observations.append(rules.SideEffectObs(report.effect, report.severity, day, at_dose, report.started_on))
        for effect in seen - set(reported):
            observations.append(rules.SideEffectObs(effect, 0, day, at_dose))
        seen |= {effect for effect, severity in reported.items() if severity > 0}
    return observations


def side_effect_observations(plan: TitrationPlan, today: dt.date) -> list[rules.SideEffectObs]:
    """Recent side-effect reports as the rules read them, oldest first. A check-in that no longer
    reports an effect seen before is an observation of that effect at severity 0: that is how an
    effect resolves (domain.md 1.3 condition 3)."""
    since = today - dt.timedelta(days=SIDE_EFFECT_WINDOW_DAYS)
    steps = list(plan.steps.filter(actual_start__isnull=False, deleted_at__isnull=True))
    checkins = (
        SymptomCheckIn.objects.filter(patient_id=plan.patient_id, deleted_at__isnull=True)
        .prefetch_related("side_effects")
        .order_by("recorded_at")
    )
    return _observations(checkins, steps, plan.patient.zone, since, today, plan.target_dose_mg)


def clinician_hold_reason(step: TitrationStep) -> rules.Reason | None:
    """A step a clinician has held stays held until they resume it (REM-1: the patient stays on the dose)."""
    if step.status != StepStatus.HELD or not step.held_by_clinician:
        return None
    why = f": {step.note}" if step.note else ""
    return rules.Reason("HOLD", f"held by a clinician{why}; resume the plan before stepping up")


def step_up_decision(plan: TitrationPlan, step: TitrationStep, today: dt.date) -> rules.Decision | None:
    """The step-up rule on ``today`` for moving to ``step`` (a planned step, or an unsaved one carrying a
    custom dose); None when there is no current step to step up from."""
    return step_up_decisions_for([(plan, step)], {plan.patient_id: today})[plan.pk]


def step_up_decisions_for(
    items: list[tuple[TitrationPlan, TitrationStep]],
    today_by_patient: dict[int, dt.date],
    *,
    steps_of: Mapping[int, list[TitrationStep]] | None = None,
    active_prescriptions: list[CompoundedPrescription] | None = None,
    lab_blocks: Mapping[int, list[str]] | None = None,
) -> dict[int, rules.Decision | None]:
    """The step-up rule (domain.md 1.3, LAB-2, a clinician's hold) for many plans in a fixed number of
    queries, for lists: {plan id: the decision, or None when the plan has no current step}.

    A list that has read them already passes ``steps_of`` ({plan id: its steps not archived, in sequence
    order}), ``active_prescriptions`` (the patients' active prescriptions, newest first) and ``lab_blocks``
    (``patients.labs.lab_step_up_blocks_for`` of the patients); those queries are then not made."""
    if not items:
        return {}
    plans = {plan.pk: plan for plan, _ in items}
    patient_ids = {plan.patient_id for plan in plans.values()}
    if steps_of is None:
        steps_of = defaultdict(list)
        for s in TitrationStep.objects.filter(plan_id__in=plans, deleted_at__isnull=True).order_by("sequence"):
            steps_of[s.plan_id].append(s)
    if active_prescriptions is None:
        active_rx = list(
            CompoundedPrescription.objects.filter(patient_id__in=patient_ids, status=PrescriptionStatus.ACTIVE)
            .select_related("pharmacy")
            .order_by("-written_on", "-pk")
        )
    else:
        active_rx = [rx for rx in active_prescriptions if rx.patient_id in patient_ids]
    rx_by_pk = {rx.pk: rx for rx in active_rx}
    rx_of_patient: dict[int, list[CompoundedPrescription]] = defaultdict(list)
    for rx in active_rx:
        rx_of_patient[rx.patient_id].append(rx)
    conflicted = set(
        ConflictFlag.objects.filter(
            patient_id__in=patient_ids,
            status=FlagStatus.OPEN,
            kind__in=[FlagKind.CONFLICT, FlagKind.UNAVAILABLE],
        ).values_list("patient_id", flat=True)
    )
    earliest = min(today_by_patient.values()) - dt.timedelta(days=SIDE_EFFECT_WINDOW_DAYS + 1)
    checkins_of = defaultdict(list)
    for checkin in (
        SymptomCheckIn.objects.filter(
            patient_id__in=patient_ids,
            deleted_at__isnull=True,
            recorded_at__gte=dt.datetime.combine(earliest, dt.time.min, tzinfo=dt.UTC),
        )
        .prefetch_related("side_effects")
        .order_by("recorded_at")
    ):
        checkins_of[checkin.patient_id].append(checkin)
    if lab_blocks is None:
        lab_blocks = lab_step_up_blocks_for(patient_ids)
    out: dict[int, rules.Decision | None] = {}
    for plan, step in items:
        today = today_by_patient[plan.patient_id]
        steps = steps_of.get(plan.pk, [])
        current = next((s for s in reversed(steps) if s.status in (StepStatus.ACTIVE, StepStatus.HELD)), None)
        if current is None:
            out[plan.pk] = None
            continue
        own = rx_by_pk.get(plan.prescription_id)  # as _active_rx_of, without scanning every plan's list
        rx = own if own is not None and own.deleted_at is None else next(iter(rx_of_patient[plan.patient_id]), None)
        since = today - dt.timedelta(days=SIDE_EFFECT_WINDOW_DAYS)
        observations = _observations(
            checkins_of[plan.patient_id], steps, plan.patient.zone, since, today, plan.target_dose_mg
        )
        context = rules.StepUpContext(
            today=today,
            current_dose_mg=current.dose_mg,
            current_step_started=current.actual_start or current.planned_start,
            min_days=current.min_days,
            next_dose_mg=step.dose_mg,
            target_mg=plan.target_dose_mg,
            open_conflict=plan.patient_id in conflicted,
            side_effects=observations,
            next_dose_deliverable=None if rx is None else measured(step.dose_mg, rx) is not None,
            lab_blocks=tuple(lab_blocks.get(plan.patient_id, ())),
        )
        decision = rules.can_step_up(context)
        held = clinician_hold_reason(current)
        if held is not None:
            decision = rules.Decision(False, (held, *decision.reasons))
        out[plan.pk] = decision
    return out


def _active_rx_of(plan: TitrationPlan, active_rx: list[CompoundedPrescription]) -> CompoundedPrescription | None:
    """As ``active_prescription``, from rows already read: the plan's own if active, else the newest active."""
    own = next((rx for rx in active_rx if rx.pk == plan.prescription_id and rx.deleted_at is None), None)
    return own or next((rx for rx in active_rx if rx.patient_id == plan.patient_id), None)


def checkin_link() -> str:
    try:
        return settings.SITE_URL + reverse("checkin-start")
    except NoReverseMatch:  # the patient check-in page arrives with the patient portal
        return ""


def _with_link(body: str) -> str:
    link = checkin_link()
    return f"{body}\nCheck in: {link}" if link else body


def prepare(reminder: Reminder, *, today: dt.date) -> tuple[str, str] | None:
    """What the sender calls: first the writes that sending this reminder causes (``follow_ups``), then its
    text (``render``, which only reads)."""
    token = follow_ups(reminder, today=today)
    return render(reminder, today=today, checkin_token=token)


def follow_ups(reminder: Reminder, *, today: dt.date) -> str | None:
    """The record's side of sending a reminder: a step held for 14 days raises a clinician task (REM-1),
    two unanswered check-in reminders raise one (REM-3), and a check-in reminder gets its single-use link.
    Returns that link's token (check-in reminders only)."""
    plan = reminder.plan
    if plan is None or plan.status != PlanStatus.ACTIVE:
        return None
    if reminder.kind in (ReminderKind.STEP_UP, ReminderKind.STAY_ON_DOSE):
        step = reminder.step
        overdue = step is not None and today - step.planned_start >= dt.timedelta(days=HOLD_TASK_DAYS)
        if overdue and step.status == StepStatus.PLANNED:
            decision = step_up_decision(plan, step, today)
            if decision is not None and not decision.allowed:
                _hold_task(plan, step, decision, today)
        return None
    if reminder.kind == ReminderKind.CHECKIN_DUE:
        _escalate_missed_checkins(reminder, today)
        return invitation_for(reminder.patient, reminder.local_date)[1]
    return None


def render(reminder: Reminder, *, today: dt.date, checkin_token: str | None = None) -> tuple[str, str] | None:
    """A reminder's subject and text on ``today``, or None when it has nothing to say any more. Reads only."""
    plan = reminder.plan
    if reminder.kind == ReminderKind.WASHOUT:
        return (
            "LDN: your start date",
            "From today your clinic may start your LDN. Please wait for your clinic to confirm before taking it.",
        )
    if plan is None or plan.status != "active":
        return None
    rx = active_prescription(plan)
    current = current_step(plan)
    current_dose = current.dose_mg if current else None
    if reminder.kind in (ReminderKind.STEP_UP, ReminderKind.STAY_ON_DOSE):
        step = reminder.step
        if step is None or step.status != StepStatus.PLANNED:
            return None
        decision = step_up_decision(plan, step, today)
        if decision is None:
            return None
        if decision.allowed and reminder.kind == ReminderKind.STEP_UP:
            return ("LDN: step up tonight", _with_link(f"Tonight, take {dose_text(step.dose_mg, rx)} of LDN."))
        stay = dose_text(current_dose, rx) if current_dose else "your current dose"
        return (
            "LDN: stay on your dose tonight",
            _with_link(f"Tonight, stay on {stay} of LDN. Your clinic will tell you when to take the next step."),
        )
    if reminder.kind == ReminderKind.NIGHTLY_DOSE and current_dose:
        return ("LDN tonight", f"Tonight's LDN dose: {dose_text(current_dose, rx)}.")
    if reminder.kind == ReminderKind.CHECKIN_DUE:
        token = checkin_token
        link = settings.SITE_URL + reverse("checkin-link", args=[token]) if token else checkin_link()
        return (
            "LDN: weekly check-in",
            f"Time for your weekly LDN check-in. It takes two minutes.\nCheck in: {link}",
        )
    if reminder.kind == ReminderKind.REFILL and rx is not None:
        return (
            "LDN: time to order more",
            "Your LDN supply will run low soon. Please ask your clinic for a refill or a new prescription today.",
        )
    return None


DOSE_KINDS = (ReminderKind.STEP_UP, ReminderKind.STAY_ON_DOSE, ReminderKind.NIGHTLY_DOSE)


def coming_dose_messages(plan: TitrationPlan, today: dt.date, *, limit: int = 3) -> list[dict]:
    """What the patient will be told about their dose, as their pending reminders would say it if sent on
    their day: for clinicians to see, after a hold or a step back, what goes out tonight. Reads only."""
    pending = (
        Reminder.objects.filter(plan=plan, kind__in=DOSE_KINDS, status=ReminderStatus.PENDING, local_date__gte=today)
        .select_related("plan", "step", "patient")
        .order_by("due_at", "pk")
    )
    out, seen = [], set()
    for reminder in pending:
        if (reminder.local_date, reminder.kind) in seen:  # one line per day and kind, whatever the channels
            continue
        seen.add((reminder.local_date, reminder.kind))
        message = render(reminder, today=reminder.local_date)
        if message is not None:
            out.append(
                {
                    "on": reminder.local_date,
                    "kind": reminder.get_kind_display(),
                    "subject": message[0],
                    "body": message[1].split("\n")[0],
                }
            )
        if len(out) == limit:
            break
    return out


def _hold_task(plan: TitrationPlan, step: TitrationStep, decision: rules.Decision, today: dt.date) -> None:
    reasons = "; ".join(r.text for r in decision.reasons)
    ClinicianTask.objects.get_or_create(
        key=f"hold-review:{step.pk}",
        defaults={
            "patient": plan.patient,
            "kind": TaskKind.HOLD_REVIEW,
            "title": f"Step to {fmt_mg(step.dose_mg)} held for {(today - step.planned_start).days} days",
            "detail": f"Held since {step.planned_start:%d %b %Y}: {reasons} (REM-1)",
            "due_on": today,
        },
    )


def _escalate_missed_checkins(reminder: Reminder, today: dt.date) -> None:
    """REM-3: after two check-in reminders with no check-in since, tell the clinic."""
    patient = reminder.patient
    last_checkin = (
        SymptomCheckIn.objects.filter(patient=patient, deleted_at__isnull=True).order_by("-recorded_at").first()
    )
    unanswered = Reminder.objects.filter(
        patient=patient, kind=ReminderKind.CHECKIN_DUE, status=ReminderStatus.SENT, channel=reminder.channel
    )
    if last_checkin is not None:
        unanswered = unanswered.filter(sent_at__gt=last_checkin.recorded_at)
    if unanswered.count() >= 2:
        ClinicianTask.objects.get_or_create(
            key=f"missed-checkins:{patient.pk}:{today:%G-W%V}",
            defaults={
                "patient": patient,
                "kind": TaskKind.MISSED_CHECKINS,
                "title": "Two weekly check-ins missed",
                "detail": "The patient has not checked in after two reminders (REM-3). Please contact them.",
                "due_on": today,
            },
        )


def refill_reminder_day(plan: TitrationPlan, today: dt.date) -> dt.date | None:
    """RX-3: the day a new supply must be asked for, so it reaches the patient before they run out."""
    rx = active_prescription(plan)
    if rx is None or rx.start_on is None:
        return None
    schedule = [
        (s.actual_start or s.planned_start, s.dose_mg)
        for s in plan.steps.filter(deleted_at__isnull=True).exclude(status=StepStatus.SKIPPED).order_by("sequence")
    ]
    f = formulation(rx)
    if f is None:
        return None
    runs_out = supply.supply_runs_out(f, rx.start_on, schedule)
    if runs_out is None:
        return None
    lead = rx.pharmacy.lead_time_days if rx.pharmacy_id else 5
    return max(supply.reorder_by(runs_out, lead), today)


def dose_summary(
    patient,
    today: dt.date,
    *,
    plan: TitrationPlan | None = None,
    steps: list[TitrationStep] | None = None,
    active_prescriptions: list[CompoundedPrescription] | None = None,
) -> dict | None:
    """For the patient's own pages: tonight's dose in what they measure, and when the next step is due.

    A page that has read the rows already passes them and no query is made: ``plan`` the patient's active
    plan (or None), ``steps`` its steps that are not archived, in sequence order, and ``active_prescriptions``
    the patient's active prescriptions, newest first. Without ``steps`` they are read here.
    """
    if steps is None:
        plan = TitrationPlan.objects.filter(patient=patient, status="active").first()
        if plan is None:
            return None
        current = current_step(plan)
        if current is None:
            return None
        rx = active_prescription(plan)
        following = (
            plan.steps.filter(status=StepStatus.PLANNED, sequence__gt=current.sequence, deleted_at__isnull=True)
            .order_by("sequence")
            .first()
        )
    else:
        if plan is None:
            return None
        current = next((s for s in reversed(steps) if s.status in (StepStatus.ACTIVE, StepStatus.HELD)), None)
        if current is None:
            return None
        rx = _active_rx_of(plan, active_prescriptions or [])
        following = next((s for s in steps if s.status == StepStatus.PLANNED and s.sequence > current.sequence), None)
    next_day = None
    # RX-3: a step the dispensed strength cannot make is not promised until a prescription that can is active.
    needs_prescription = following is not None and measured(following.dose_mg, rx) is None
    if following is not None and current.status != StepStatus.HELD and not needs_prescription:
        started = current.actual_start or current.planned_start
        next_day = max(schedule.step_evening(started, current.min_days, following.planned_start), today)
    return {
        "tonight": dose_text(current.dose_mg, rx),
        "next_step": next_day,
        "next_dose": dose_text(following.dose_mg, rx) if following and not needs_prescription else None,
        "held": current.status == StepStatus.HELD,
        "needs_prescription": needs_prescription,
    }


def calendar(patient, today: dt.date) -> dict | None:
    """The patient's dose history and coming titration dates, for their chart and calendar file."""
    plan = TitrationPlan.objects.filter(patient=patient, status="active").first()
    if plan is None:
        return None
    rx = active_prescription(plan)
    steps = list(plan.steps.filter(deleted_at__isnull=True).order_by("sequence"))
    doses = [(s.actual_start, s.dose_mg) for s in steps if s.actual_start]
    events = []
    summary = dose_summary(patient, today)
    if summary and summary["next_step"]:
        events.append((summary["next_step"], f"LDN: step up to {summary['next_dose']} if all is well"))
    for day in range(0, 57):
        date = today + dt.timedelta(days=day)
        if date > plan.start_date and (date - plan.start_date).days % 7 == 0:
            events.append((date, "LDN: weekly check-in"))
    if rx is not None:
        refill = refill_reminder_day(plan, today)
        if refill:
            events.append((refill, "LDN: ask your clinic for more"))
    return {"doses": doses, "events": sorted(events)}


def treatment_dates(patient) -> dict | None:
    """First dose ever taken, and the start of the current unbroken run at or above the plan's target
    (maintenance), from the steps' actual start dates. None when the patient has never started."""
    dates = treatment_dates_for([patient.pk])[patient.pk]
    return dates if dates["first_dose"] else None


def treatment_dates_for(
    patient_ids: Iterable[int], *, plans: Iterable[tuple[TitrationPlan, Iterable[TitrationStep]]] | None = None
) -> dict[int, dict]:
    """``treatment_dates`` for many patients in two queries (plans, then their steps), for list pages:
    {patient id: {"first_dose": date | None, "maintenance_started": date | None}}.

    A page that has read the patients' plans passes them as (plan, its steps) pairs, plans of any status
    and steps not archived, and no query is made."""
    ids = list(dict.fromkeys(patient_ids))
    if plans is None:
        found = TitrationPlan.objects.filter(
            patient_id__in=ids, status__in=[PlanStatus.ACTIVE, PlanStatus.PAUSED, PlanStatus.COMPLETED]
        ).prefetch_related("steps")
        plans = ((plan, plan.steps.all()) for plan in found)
    counted = {PlanStatus.ACTIVE, PlanStatus.PAUSED, PlanStatus.COMPLETED}
    started = defaultdict(list)
    for plan, steps in plans:
        if plan.status not in counted or plan.deleted_at is not None:
            continue
        for step in steps:
            if step.deleted_at is None and step.actual_start is not None:
                started[plan.patient_id].append((step.actual_start, step.sequence, step.dose_mg >= plan.target_dose_mg))
    dates = {}
    for patient_id in ids:
        rows = sorted(started[patient_id], key=lambda row: (row[0], row[1]))
        maintenance = None
        for actual_start, _, at_target in rows:  # the latest run of started steps at the target dose
            maintenance = (maintenance or actual_start) if at_target else None
        dates[patient_id] = {"first_dose": rows[0][0] if rows else None, "maintenance_started": maintenance}
    return dates
