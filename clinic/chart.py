"""Reads for the patient chart (issue 10, section 2): the banner and the cards below it. Reads only.

Every function takes a patient already loaded through ``clinic.access.visible_or_404`` and reads that
patient's rows by its id, in bulk: one query per kind of row, whatever the amount of history, so the
chart's query count is flat (tests/clinic/test_chart.py checks it at 5 and at 50 rows). The timeline
lives in clinic/chart_timeline.py.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Exists, Prefetch, Q
from django.urls import NoReverseMatch, reverse

from patients import opioids
from patients import services as patient_services
from patients.flag_models import (
    PRESCRIBER_KINDS,
    ClinicianTask,
    ConflictFlag,
    FlagKind,
    FlagStatus,
    TaskKind,
    TaskStatus,
)
from patients.models import LabResult, LabTest, MedicationStatement, Patient, PatientCondition, ScreenResult
from symptoms import lab_context, outcomes
from symptoms import selectors as symptom_selectors
from symptoms.models import NRS_FIELDS, SymptomCheckIn
from titration import content
from titration import rules as titration_rules
from titration.efficacy import efficacy_messages  # a pure function over the outcome (EFF-1/EFF-2)
from titration.models import (
    CompoundedPrescription,
    PlanStatus,
    PrescriptionStatus,
    StepStatus,
    TitrationPlan,
    TitrationStep,
)

from .access import allowed_actions

CHART_DAYS = 365  # the score chart shows the last 12 months
LABS_SHOWN = 30
LAB_TASK_KINDS = (TaskKind.LAB_REVIEW, TaskKind.LAB_ALERT)
RED_KINDS = PRESCRIBER_KINDS  # conflict and "check unavailable": the ones that block LDN
CLASS_WORDS = {
    opioids.CONFLICT: "opioid: conflict",
    opioids.CAUTION: "possible opioid: caution",
    opioids.OPIOID_CONTEXT: "opioid context: ask",
    opioids.ANTAGONIST: "opioid antagonist",
    opioids.NONE: "not an opioid",
    opioids.UNAVAILABLE: "check unavailable: review manually",
}
_EPOCH = dt.date(1970, 1, 1)


def url_or_none(name: str, *args) -> str | None:
    """The route's address, or None while the area that owns it has not landed it yet."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def chart_patients():
    """The queryset the chart loads its patient from (through visible_or_404)."""
    conditions = PatientCondition.objects.order_by("condition")
    return Patient.objects.select_related("clinic").prefetch_related(Prefetch("conditions", queryset=conditions))


def age_on(born: dt.date, today: dt.date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


# --- treatment: plans, steps, prescriptions -------------------------------------------------------------------


@dataclass
class Treatment:
    plans: list[TitrationPlan]  # newest first, each with ``live_steps`` in sequence order
    plan: TitrationPlan | None  # the active plan, else the newest paused or draft one
    current: TitrationStep | None  # its active or held step
    prescriptions: list[CompoundedPrescription]  # active and draft, newest first

    @property
    def active_plan(self) -> TitrationPlan | None:
        return self.plan if self.plan is not None and self.plan.status == PlanStatus.ACTIVE else None

    @property
    def active_prescriptions(self) -> list[CompoundedPrescription]:
        return [rx for rx in self.prescriptions if rx.status == PrescriptionStatus.ACTIVE]

    def dose_summary(self, patient: Patient, today: dt.date) -> dict | None:
        """``titration.content.dose_summary`` from the rows read here: no query."""
        plan = self.active_plan
        return content.dose_summary(
            patient,
            today,
            plan=plan,
            steps=plan.live_steps if plan is not None else [],
            active_prescriptions=self.active_prescriptions,
        )


def treatment(patient: Patient) -> Treatment:
    steps = TitrationStep.objects.filter(deleted_at__isnull=True).order_by("sequence")
    plans = list(
        TitrationPlan.objects.filter(patient_id=patient.pk)
        .select_related("protocol")
        .prefetch_related(Prefetch("steps", queryset=steps, to_attr="live_steps"))
        .order_by("-start_date", "-pk")
    )
    rank = {PlanStatus.ACTIVE: 0, PlanStatus.PAUSED: 1, PlanStatus.DRAFT: 2}
    candidates = [p for p in plans if p.status in rank]
    plan = min(candidates, key=lambda p: rank[p.status], default=None)
    current = None
    if plan is not None:
        current = next((s for s in reversed(plan.live_steps) if s.status in (StepStatus.ACTIVE, StepStatus.HELD)), None)
    prescriptions = list(
        CompoundedPrescription.objects.filter(
            patient_id=patient.pk, status__in=[PrescriptionStatus.ACTIVE, PrescriptionStatus.DRAFT]
        )
        .select_related("pharmacy", "prescriber")
        .order_by("-written_on", "-pk")
    )
    return Treatment(plans, plan, current, prescriptions)


# --- the banner ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlagLine:
    flag: ConflictFlag
    red: bool
    earliest: dt.date | None
    why_no_date: str
    url: str | None


@dataclass(frozen=True)
class Banner:
    name: str
    age: int
    mrn: str
    date_of_birth: dt.date
    conditions: tuple[str, ...]
    status: str
    status_value: str
    dose: dict | None  # titration.content.dose_summary: tonight, next_step, next_dose, held
    hold_reason: str
    held_by_clinician: bool  # until a prescriber resumes; else the side-effect rules' hold (SE-1, SE-4)
    flags: tuple[FlagLine, ...]
    clinic_name: str
    clinic_phone: str
    dose_time: str

    @property
    def red(self) -> bool:
        return any(line.red for line in self.flags)


SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


def live_flags(patient: Patient) -> list[ConflictFlag]:
    """The flags that are not resolved, in id order: the open ones head the banner, and each medication
    shows its most serious one."""
    return list(ConflictFlag.objects.filter(patient_id=patient.pk).exclude(status=FlagStatus.RESOLVED).order_by("pk"))


def open_flags(patient: Patient, live: list[ConflictFlag] | None = None) -> list[ConflictFlag]:
    """Open flags, the most serious first, then the latest earliest start (the one that decides)."""
    flags = [f for f in (live_flags(patient) if live is None else live) if f.status == FlagStatus.OPEN]
    return sorted(flags, key=lambda f: (SEVERITY_ORDER.get(f.severity, 3), -_day(f.earliest_safe_start or _EPOCH)))


def banner(
    patient: Patient,
    today: dt.date,
    treated: Treatment,
    flags: list[ConflictFlag],
    actions,
    summary: dict | None = None,
) -> Banner:
    if summary is None:
        summary = treated.dose_summary(patient, today)
    held = treated.current is not None and treated.current.status == StepStatus.HELD

    def may_act(flag: ConflictFlag) -> bool:
        return bool(actions.get("flag_conflict" if flag.kind in PRESCRIBER_KINDS else "flag_acknowledge"))

    lines = tuple(
        FlagLine(
            flag=f,
            red=f.kind in RED_KINDS,
            earliest=f.earliest_safe_start,
            why_no_date="" if f.earliest_safe_start else (f.earliest_start_note or "no earliest start date on file"),
            url=url_or_none("clinic:flag", f.pk) if may_act(f) else None,
        )
        for f in flags
    )
    return Banner(
        name=patient.full_name,
        age=age_on(patient.date_of_birth, today),
        mrn=patient.mrn,
        date_of_birth=patient.date_of_birth,
        conditions=tuple(c.get_condition_display() for c in patient.conditions.all()),
        status=patient.get_status_display(),
        status_value=patient.status,
        dose=summary,
        hold_reason=treated.current.note if held else "",
        held_by_clinician=held and treated.current.held_by_clinician,
        flags=lines,
        clinic_name=patient.clinic.name,
        clinic_phone=patient.clinic.phone,
        dose_time=patient.get_dose_time_display().lower(),
    )


# --- the score chart: pain, fatigue, sleep, mood over the dose --------------------------------------------------


def _day(value: dt.date) -> int:
    """Days since 1970-01-01: the chart's x axis is linear in days (no date adapter is vendored)."""
    return (value - _EPOCH).days


def _mg(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def dose_segments(treated: Treatment, patient: Patient, today: dt.date) -> list[tuple[dt.date, dt.date, Decimal]]:
    """(from, to, dose) for each dose the patient took, oldest first, from the steps' actual starts."""
    segments = []
    for plan in sorted(treated.plans, key=lambda p: (p.start_date, p.pk)):
        started = [s for s in plan.live_steps if s.actual_start and s.status != StepStatus.SKIPPED]
        started.sort(key=lambda s: (s.actual_start, s.sequence))
        if not started:
            continue
        if plan.status in (PlanStatus.ACTIVE, PlanStatus.PAUSED):
            end = today
        else:  # completed or cancelled: the dose stops when the plan did
            end = min(today, plan.updated_at.astimezone(patient.zone).date())
        for step, following in zip(started, [*started[1:], None], strict=True):
            until = following.actual_start if following else end
            if until >= step.actual_start:
                segments.append((step.actual_start, until, step.dose_mg))
    return segments


def hold_periods(patient: Patient, treated: Treatment, today: dt.date) -> list[tuple[dt.date, dt.date]]:
    """When a step was held, from the steps' history: (from, to) in the patient's dates, oldest first."""
    plan_ids = [p.pk for p in treated.plans]
    if not plan_ids:
        return []
    rows = (
        TitrationStep.history.filter(plan_id__in=plan_ids)
        .order_by("id", "history_date", "history_id")
        .values_list("id", "history_date", "status")
    )
    periods, open_since, last_id = [], None, None
    zone = patient.zone
    for step_id, when, status in rows:
        if step_id != last_id:
            if open_since is not None:
                periods.append((open_since, today))
            open_since, last_id = None, step_id
        day = when.astimezone(zone).date()
        if status == StepStatus.HELD and open_since is None:
            open_since = day
        elif status != StepStatus.HELD and open_since is not None:
            periods.append((open_since, day))
            open_since = None
    if open_since is not None:
        periods.append((open_since, today))
    return sorted(periods)


def _dose_on(segments, day: dt.date) -> Decimal | None:
    found = None
    for start, end, dose in segments:
        if start <= day <= end:
            found = dose  # the later segment wins on a change day
    return found


@dataclass(frozen=True)
class ChartRow:
    date: dt.date
    pain: int | None
    fatigue: int | None
    sleep: int | None
    mood: int | None
    dose_mg: Decimal | None
    held: bool
    dose_change: bool
    checkin: bool

    @property
    def dose_text(self) -> str:
        return titration_rules.fmt_mg(self.dose_mg) if self.dose_mg is not None else "–"

    # The table's cells as text: a year of weekly rows through the template's date filter and
    # default_if_none cost more than the rest of the chart's cards together.
    @property
    def date_iso(self) -> str:
        return self.date.isoformat()

    @property
    def date_text(self) -> str:
        return day_text(self.date)

    def _score(self, value: int | None) -> str:
        if not self.checkin:
            return ""
        return "–" if value is None else str(value)

    @property
    def pain_text(self) -> str:
        return self._score(self.pain)

    @property
    def fatigue_text(self) -> str:
        return self._score(self.fatigue)

    @property
    def sleep_text(self) -> str:
        return self._score(self.sleep)

    @property
    def mood_text(self) -> str:
        return self._score(self.mood)

    @property
    def note(self) -> str:
        return "; ".join(word for word, on in (("dose change", self.dose_change), ("held", self.held)) if on)


def day_text(value: dt.date) -> str:
    """As the template filter date:"j M Y" writes it (English month names)."""
    return f"{value.day} {MONTHS[value.month - 1]} {value.year}"


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class ScoreChart:
    data: dict  # for json_script
    rows: tuple[ChartRow, ...]  # the same numbers, newest first, for the data table
    start: dt.date

    @property
    def empty(self) -> bool:
        return not self.rows


def _midnight(day: dt.date, zone) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=zone)


def chart_checkins(patient: Patient, today: dt.date, first_dose: dt.date | None) -> list[tuple]:
    """The check-ins the chart shows, oldest first, as (recorded_at, {NRS field: value}): the last 12
    months (the score chart), and for the response card (BASE-1, RESP-1) every one before the first dose
    and the last two from it on. One query, with only those columns."""
    zone = patient.zone
    wanted = Q(recorded_at__gte=_midnight(today - dt.timedelta(days=CHART_DAYS), zone))
    if first_dose is not None:
        dosed = _midnight(first_dose, zone)
        last_two = SymptomCheckIn.objects.filter(
            patient_id=patient.pk, recorded_at__gte=dosed, recorded_at__lt=_midnight(today + dt.timedelta(days=1), zone)
        ).order_by("-recorded_at", "-pk")
        wanted |= Q(recorded_at__lt=dosed) | Q(pk__in=last_two.values("pk")[:2])
    rows = (
        SymptomCheckIn.objects.filter(wanted, patient_id=patient.pk)
        .order_by("recorded_at", "pk")
        .values_list("recorded_at", *NRS_FIELDS)
    )
    return [(at, dict(zip(NRS_FIELDS, values, strict=True))) for at, *values in rows]


def score_chart(patient: Patient, today: dt.date, treated: Treatment, read: list[tuple] | None = None) -> ScoreChart:
    """The last 12 months' scores over the dose; ``read``: ``chart_checkins`` (read here when not given)."""
    start = today - dt.timedelta(days=CHART_DAYS)
    zone = patient.zone
    since = _midnight(start, zone)
    if read is None:
        read = chart_checkins(patient, today, None)
    checkins = [
        (at.astimezone(zone).date(), v["pain"], v["fatigue"], v["sleep_quality"], v["mood"])
        for at, v in read
        if at >= since
    ]
    checkins = [row for row in checkins if row[0] <= today]
    taken = dose_segments(treated, patient, today)
    changes = {a for a, _, _ in taken if a >= start}
    segments = [(max(a, start), b, mg) for a, b, mg in taken if b >= start]
    holds = [(max(a, start), b) for a, b in hold_periods(patient, treated, today) if b >= start]

    def held_on(day):
        return any(a <= day <= b for a, b in holds)

    data = {
        "start": _day(start),
        "end": _day(today),
        "scores": [
            {"x": _day(day), "date": day.isoformat(), "pain": p, "fatigue": f, "sleep": s, "mood": m}
            for day, p, f, s, m in checkins
        ],
        "dose": _with_breaks(segments),
        "holds": [
            {"x0": _day(a), "x1": _day(b), "from": a.isoformat(), "to": b.isoformat(), "mg": _mg(_dose_on(segments, a))}
            for a, b in holds
        ],
    }
    days = sorted({row[0] for row in checkins} | changes, reverse=True)
    by_day: dict[dt.date, list] = {}
    for row in checkins:
        by_day.setdefault(row[0], []).append(row)
    rows = []
    for day in days:
        entries = by_day.get(day) or [None]
        for entry in reversed(entries):  # several check-ins in a day: each its own row
            rows.append(
                ChartRow(
                    date=day,
                    pain=entry[1] if entry else None,
                    fatigue=entry[2] if entry else None,
                    sleep=entry[3] if entry else None,
                    mood=entry[4] if entry else None,
                    dose_mg=_dose_on(segments, day),
                    held=held_on(day),
                    dose_change=day in changes,
                    checkin=entry is not None,
                )
            )
    return ScoreChart(data=data, rows=tuple(rows), start=start)


def _with_breaks(segments) -> list[dict | None]:
    """Stepped-line points: each dose from its first to its last day, with a gap (None) where no dose was taken."""
    points: list[dict | None] = []
    for a, b, mg in segments:
        if points and points[-1] is not None and points[-1]["x"] < _day(a):
            points.append(None)
        points.append({"x": _day(a), "date": a.isoformat(), "mg": _mg(mg)})
        points.append({"x": _day(b), "date": b.isoformat(), "mg": _mg(mg)})
    return points


# --- medications -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MedicationRow:
    medication: MedicationStatement
    klass: str  # patients.opioids class
    class_text: str
    ingredients: tuple[str, ...]
    washout: str  # "10 days (OPI-W1)", "no automatic date ...", ""
    flag: ConflictFlag | None  # the medication's most serious flag that is not resolved
    red: bool
    url: str | None = None  # its edit page, for a role that may change the list


def medications(
    patient: Patient, *, may_edit: bool = False, flags: list[ConflictFlag] | None = None
) -> list[MedicationRow]:
    """The medication list; ``flags``: ``live_flags`` (read here when not given)."""
    meds = list(MedicationStatement.objects.filter(patient_id=patient.pk).order_by("name", "pk"))
    flags_of: dict[int, list[ConflictFlag]] = {}
    for flag in live_flags(patient) if flags is None else flags:
        flags_of.setdefault(flag.medication_id, []).append(flag)
    rows = []
    for med in meds:
        # The matcher is pure (no queries): the same check the conflict engine ran on save (OPI-1..OPI-4).
        found = patient_services.check_medication(med)
        flag = _most_serious(flags_of.get(med.pk, []))
        klass = found.klass
        if flag is not None and flag.kind == FlagKind.CONFLICT:
            klass = opioids.CONFLICT
        rows.append(
            MedicationRow(
                medication=med,
                klass=klass,
                class_text=CLASS_WORDS.get(klass, klass),
                ingredients=tuple(med.ingredients or found.ingredients),
                washout=_washout_text(flag, found),
                flag=flag,
                red=klass in (opioids.CONFLICT, opioids.UNAVAILABLE),
                url=url_or_none("clinic:medication-edit", med.pk) if may_edit else None,
            )
        )
    return rows


def _most_serious(flags: list[ConflictFlag]) -> ConflictFlag | None:
    return min(flags, key=lambda f: (SEVERITY_ORDER.get(f.severity, 3), f.pk), default=None)


def _washout_text(flag: ConflictFlag | None, found: opioids.MatchResult) -> str:
    if flag is not None and flag.kind == FlagKind.CONFLICT:
        if flag.shortened_washout_days:
            days = f"{flag.shortened_washout_days} days (shortened from {flag.washout_days}, OPI-W2)"
        elif flag.washout_days:
            days = f"{flag.washout_days} days (OPI-W1)"
        else:
            days = "no automatic date"
        if flag.earliest_safe_start:
            return f"{days}; earliest LDN start {flag.earliest_safe_start.isoformat()}"
        return f"{days}; {flag.earliest_start_note}" if flag.earliest_start_note else days
    if found.klass == opioids.CONFLICT:
        return f"{found.washout_days} days (OPI-W1)" if found.washout_days else "no automatic date (OPI-W1)"
    return ""


# --- labs (LAB-1, LAB-2) ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabRow:
    lab: LabResult
    flag: str  # "high", "low", "positive" or ""


@dataclass(frozen=True)
class LabsCard:
    rows: tuple[LabRow, ...]
    more: bool
    esr: lab_context.EsrContext
    lab2_tasks: tuple[ClinicianTask, ...]
    step_ups_blocked: bool
    missing_liver: tuple[str, ...]


def lab_flag(lab: LabResult) -> str:
    if lab.test == LabTest.UDS:
        return "positive" if lab.result == ScreenResult.POSITIVE else ""
    if lab.value is None:
        return ""
    if lab.ref_high is not None and lab.value > lab.ref_high:
        return "high"
    if lab.ref_low is not None and lab.value < lab.ref_low:
        return "low"
    return ""


def labs(patient: Patient, today: dt.date, first_dose: dt.date | None, tasks: list[ClinicianTask]) -> LabsCard:
    """The latest results, the ESRs (LAB-1) and whether a baseline ALT and AST are on file, in one query:
    the latest LABS_SHOWN + 1 results with every ESR (older ones too), the latest being the first rows."""
    mine = LabResult.objects.filter(patient_id=patient.pk)
    latest = mine.order_by("-collected_at", "-pk").values("pk")[: LABS_SHOWN + 1]
    esr = Q(test=LabTest.ESR, value__isnull=False)
    found = list(
        mine.filter(Q(pk__in=latest) | esr)
        .annotate(  # not per row: the database answers each once
            has_alt=Exists(mine.filter(test=LabTest.ALT)), has_ast=Exists(mine.filter(test=LabTest.AST))
        )
        .order_by("-collected_at", "-pk")
    )
    tested = {
        test for test, on_file in (("ALT", found and found[0].has_alt), ("AST", found and found[0].has_ast)) if on_file
    }
    esrs = sorted(
        (lab for lab in found if lab.test == LabTest.ESR and lab.value is not None),
        key=lambda lab: (lab.collected_at, lab.pk),
    )
    rows = [(lab.patient_id, lab.clinic_id, lab.value, lab.unit, lab.ref_high, lab.collected_at) for lab in esrs]
    esr_results = symptom_selectors.esr_results_for([patient], rows=rows)[patient.pk]
    shown = found[: LABS_SHOWN + 1]
    lab2 = tuple(t for t in tasks if t.kind in LAB_TASK_KINDS)
    return LabsCard(
        rows=tuple(LabRow(lab, lab_flag(lab)) for lab in shown[:LABS_SHOWN]),
        more=len(shown) > LABS_SHOWN,
        esr=lab_context.esr_context(esr_results, first_dose=first_dose, today=today),
        lab2_tasks=lab2,
        step_ups_blocked=any(t.kind == TaskKind.LAB_REVIEW for t in lab2),
        missing_liver=tuple(test for test in ("ALT", "AST") if test not in tested),
    )


# --- response to LDN (BASE-1, RESP-1..7, EFF-1/2) ---------------------------------------------------------------


@dataclass(frozen=True)
class ResponseCard:
    outcome: outcomes.PatientOutcome
    efficacy: tuple[titration_rules.Reason, ...]
    pain_text: str


def response(
    patient: Patient,
    today: dt.date,
    *,
    dates: dict | None = None,
    checkins: list[tuple] | None = None,
    conditions: set[str] | None = None,
) -> ResponseCard:
    """The response card; the chart passes the treatment dates, check-ins and conditions it has read."""
    if dates is None:
        dates = content.treatment_dates_for([patient.pk])[patient.pk]
    outcome = outcomes.patient_outcome(patient, today=today, dates=dates, checkins=checkins, conditions=conditions)
    pain = outcome.summary if outcome.summary != "—" else "not available yet (see the table)"
    return ResponseCard(outcome, tuple(efficacy_messages(outcome, today)), pain)


# --- tasks and actions -----------------------------------------------------------------------------------------


def open_tasks(patient: Patient) -> list[ClinicianTask]:
    return list(
        ClinicianTask.objects.filter(patient_id=patient.pk, status=TaskStatus.OPEN).order_by(
            "due_on", "created_at", "pk"
        )
    )


@dataclass(frozen=True)
class ActionLink:
    label: str
    url: str
    primary: bool = False


def action_links(allowed: dict[str, bool], patient: Patient, treated: Treatment) -> list[ActionLink]:
    """The other areas' pages, each shown when the role allows it and its route exists."""
    wanted = [
        ("prescribe", "New prescription", "clinic:prescription-new", (patient.pk,)),
        ("plan", "New plan", "clinic:plan-new", (patient.pk,)),
        ("patient_edit", "Add medication", "clinic:medication-add", (patient.pk,)),
        ("lab_add", "Add lab result", "clinic:lab-add", (patient.pk,)),
        ("reminder_preferences", "Reminder preferences", "clinic:reminder-preferences", (patient.pk,)),
        ("patient_status", "Change status", "clinic:patient-status", (patient.pk,)),
        ("patient_edit", "Edit details", "clinic:patient-edit", (patient.pk,)),
    ]
    links = []
    if treated.plan is not None:
        url = url_or_none("clinic:plan", treated.plan.pk)
        if url:
            links.append(ActionLink("Plan and step actions", url, primary=True))
    for action, label, name, args in wanted:
        if name == "clinic:plan-new" and treated.plan is not None and treated.plan.status == PlanStatus.ACTIVE:
            continue  # one active plan at a time: its own page has the actions
        url = url_or_none(name, *args) if allowed.get(action) else None
        if url:
            links.append(ActionLink(label, url))
    return links


# --- the whole chart -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Linked:
    """A row with the address of its own page, when that page exists and the user's role may use it."""

    obj: object
    url: str | None


@dataclass
class Chart:
    patient: Patient
    today: dt.date
    banner: Banner
    treatment: Treatment
    scores: ScoreChart
    medications: list[MedicationRow]
    labs: LabsCard
    response: ResponseCard
    tasks: list[Linked]
    prescriptions: list[Linked]
    actions: list[ActionLink]
    allowed: dict[str, bool]
    plan_url: str | None = None


def patient_chart(*, patient: Patient, user) -> Chart:
    """Everything below the banner and the banner, each kind of row read once and shared between the
    cards that show it (plans and steps: the plan card, tonight's dose, the treatment dates; flags: the
    banner and the medication list; check-ins: the score chart and the response card)."""
    today = patient_services.patient_today(patient)
    allowed = allowed_actions(user, patient.clinic_id)
    treated = treatment(patient)
    tasks = open_tasks(patient)
    flags = live_flags(patient)
    dates = content.treatment_dates_for([patient.pk], plans=[(p, p.live_steps) for p in treated.plans])[patient.pk]
    checkins = chart_checkins(patient, today, dates["first_dose"])
    conditions = {c.condition for c in patient.conditions.all()}
    answer = response(patient, today, dates=dates, checkins=checkins, conditions=conditions)
    may_close = bool(allowed.get("task_close"))
    return Chart(
        patient=patient,
        today=today,
        banner=banner(patient, today, treated, open_flags(patient, flags), allowed),
        treatment=treated,
        scores=score_chart(patient, today, treated, checkins),
        medications=medications(patient, may_edit=bool(allowed.get("patient_edit")), flags=flags),
        labs=labs(patient, today, answer.outcome.first_dose, tasks),
        response=answer,
        tasks=[Linked(t, url_or_none("clinic:task", t.pk) if may_close else None) for t in tasks],
        prescriptions=[Linked(rx, url_or_none("clinic:prescription", rx.pk)) for rx in treated.prescriptions],
        actions=action_links(allowed, patient, treated),
        allowed=allowed,
        plan_url=url_or_none("clinic:plan", treated.plan.pk) if treated.plan else None,
    )


def wallet_card(patient: Patient) -> dict:
    """What the printable LDN wallet card says: the patient's name, tonight's dose and the clinic's phone."""
    today = patient_services.patient_today(patient)
    summary = content.dose_summary(patient, today)
    return {
        "name": patient.full_name,
        "dose": summary["tonight"] if summary else "",
        "dose_time": patient.get_dose_time_display().lower(),
        "clinic_name": patient.clinic.name,
        "clinic_phone": patient.clinic.phone,
        "today": today,
    }
