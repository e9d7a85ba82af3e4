"""The clinic report: cohort, outcome and safety counts for each of the user's clinics, for a period.

Reads only, from reports.selectors (scoped to the user's own clinics; archived patients and rows left out),
in a fixed number of queries whatever the number of patients: each selector is one query, and the outcomes
are read in bulk (titration.content.treatment_dates_for, symptoms.outcomes.patient_outcomes).

- Dates of events (first dose, discontinuation, safety gate event, severe side effect, failed reminder) are
  the patient's local dates, as in the exports; both ends of the period count.
- "Now" counts (status, condition, stage, open flags and tasks) are today's, whatever the period.
- Outcomes are read on the period's last day (today at the latest), per symptoms.outcomes: a result is
  evaluable at week 12 on the maintenance dose (RESP-1), from the check-ins recorded by then.
- The page's tables (with shares, and "n < 5" below five) are reports.summary_tables.
"""

import datetime as dt
import zoneinfo
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from patients.models import PatientStatus
from symptoms import outcomes
from symptoms import rules as symptom_rules
from titration import content
from titration import rules as titration_rules
from titration.models import StepStatus

from . import selectors

DEFAULT_DAYS = 90
TITRATING, HELD, MAINTENANCE, NO_PLAN = "titrating", "held", "maintenance", "no_plan"
STAGES = {
    TITRATING: "Titrating: below the target dose, or the first step not started yet",
    HELD: "Held: the current step is on hold",
    MAINTENANCE: "At target (maintenance dose)",
    NO_PLAN: "No active plan",
}
GRADES = [  # RESP-2, best first
    (symptom_rules.Grade.SUBSTANTIAL, "Substantial: improved 50% or more"),
    (symptom_rules.Grade.MODERATE, "Moderate: improved 30% to under 50%"),
    (symptom_rules.Grade.MINIMAL, "Minimal: improved 10% to under 30%"),
    (symptom_rules.Grade.NONE, "None: improved under 10%, or worse"),
]
CONDITION_RULES = {
    "RESP-4": "Fibromyalgia composite: pain responder and fatigue or sleep improved 30% (RESP-4)",
    "RESP-5": "Crohn's: HBI down 3 or more, or under 5, full HBI only (RESP-5)",
    "RESP-6": "Multiple sclerosis: MFIS down 4 or more (RESP-6)",
    "RESP-7": "Global impression: PGIC much or very much improved (RESP-7)",
}


def report_period(start: dt.date | None, end: dt.date | None, today: dt.date) -> tuple[dt.date | None, dt.date]:
    """Both empty: the last DEFAULT_DAYS days, today included. No "to": up to today. No "from": from the start."""
    if start is None and end is None:
        return today - dt.timedelta(days=DEFAULT_DAYS - 1), today
    if end is None:
        end = max(start, today)
    return start, end


@dataclass
class ClinicReport:
    clinic: object
    statuses: Counter = field(default_factory=Counter)
    conditions: Counter = field(default_factory=Counter)
    stages: Counter = field(default_factory=Counter)
    started: int = 0  # first LDN dose in the period
    discontinued: Counter = field(default_factory=Counter)  # reason -> discontinuations in the period
    evaluated: int = 0  # week 12 on the maintenance dose reached (RESP-1)
    pain_responders: int = 0
    grades: Counter = field(default_factory=Counter)  # RESP-2 grade -> patients, evaluable pain results only
    condition_results: dict = field(default_factory=lambda: defaultdict(Counter))  # rule -> applies/defined/yes
    any_responder: int = 0
    review_due: int = 0  # EFF-1
    eff2: int = 0  # EFF-2 flag
    flags: Counter = field(default_factory=Counter)
    gates: Counter = field(default_factory=Counter)
    tasks: Counter = field(default_factory=Counter)
    severe: Counter = field(default_factory=Counter)  # effect -> reports
    severe_patients: set = field(default_factory=set)
    failed: Counter = field(default_factory=Counter)  # reminder kind -> failed reminders

    @property
    def live(self) -> int:
        return sum(self.statuses.values())

    @property
    def evaluable(self) -> int:
        """Evaluated patients whose pain response is defined: the denominator of RESP-1 and RESP-2."""
        return sum(self.grades.values())

    @property
    def pain_undefined(self) -> int:
        return self.evaluated - self.evaluable


def clinic_reports(*, user, clinics, start: dt.date | None, end: dt.date, today: dt.date) -> list[ClinicReport]:
    """One report per clinic in ``clinics`` (the user's own, from selectors.clinic_list), in their order."""
    reports = {clinic.pk: ClinicReport(clinic) for clinic in clinics}
    patients = {p.pk: p for p in selectors.live_patient_list(user=user) if p.clinic_id in reports}
    _cohort(reports, patients, user, start, end)
    _outcomes(reports, patients, min(end, today))
    _safety(reports, user, start, end)
    return list(reports.values())


def _in(day: dt.date, start: dt.date | None, end: dt.date) -> bool:
    return (start is None or day >= start) and day <= end


def _local(when: dt.datetime, zone: str) -> dt.date:
    return when.astimezone(zoneinfo.ZoneInfo(zone)).date()


def _cohort(reports, patients, user, start, end) -> None:
    for patient in patients.values():
        reports[patient.clinic_id].statuses[patient.status] += 1
    for row in selectors.condition_counts(user=user):
        if row["clinic_id"] in reports:
            reports[row["clinic_id"]].conditions[row["condition"]] += row["n"]
    plans = {patient_id: (plan_id, target) for patient_id, plan_id, target in selectors.active_plan_list(user=user)}
    current: dict[int, tuple] = {}  # plan id -> (sequence, status, dose) of its highest active or held step
    for plan_id, sequence, status, dose in selectors.running_step_list(user=user):
        if plan_id not in current or sequence > current[plan_id][0]:
            current[plan_id] = (sequence, status, dose)
    for pk, patient in patients.items():
        plan_id, target = plans.get(pk, (None, None))
        reports[patient.clinic_id].stages[stage(plan_id is not None, current.get(plan_id), target)] += 1
    for clinic_id, _patient_id, _first in selectors.first_dose_list(user=user, start=start, end=end):
        if clinic_id in reports:
            reports[clinic_id].started += 1
    for patient_id, when, reason in discontinuations(
        selectors.discontinuation_history(user=user, start=start), patients
    ):
        patient = patients[patient_id]
        if _in(_local(when, patient.time_zone), start, end):
            reports[patient.clinic_id].discontinued[" ".join(reason.split()) or "(no reason given)"] += 1


def stage(has_plan: bool, step: tuple | None, target) -> str:
    """The titration stage of a patient: no active plan; held; at (or above) the plan's target; else titrating."""
    if not has_plan:
        return NO_PLAN
    if step is None:
        return TITRATING
    _sequence, status, dose = step
    if status == StepStatus.HELD:
        return HELD
    return MAINTENANCE if dose >= target else TITRATING


def discontinuations(history, patients) -> list[tuple[int, dt.datetime, str]]:
    """(patient id, when, reason) for each change of a patient's status to "discontinued": the first record
    of each run of them gives the time, the run's last record the reason (a later edit of the reason wins)."""
    found: list[list] = []
    previous: tuple[int, str] | None = None
    for patient_id, when, status, reason in history:  # by patient, oldest first
        if patient_id not in patients:
            continue
        if status == PatientStatus.DISCONTINUED:
            if previous == (patient_id, PatientStatus.DISCONTINUED):
                found[-1][2] = reason
            else:
                found.append([patient_id, when, reason])
        previous = (patient_id, status)
    return [tuple(event) for event in found]


def _outcomes(reports, patients, as_of: dt.date) -> None:
    dates = content.treatment_dates_for(list(patients)) if patients else {}
    due = {
        pk: dates[pk]
        for pk in patients
        if symptom_rules.evaluated_at_week_12_on_maintenance(dates[pk]["maintenance_started"], as_of)
        or titration_rules.efficacy_review_due(dates[pk]["maintenance_started"], as_of)
    }
    found = outcomes.patient_outcomes([patients[pk] for pk in due], today=as_of, dates=due) if due else {}
    for pk, outcome in found.items():
        report = reports[patients[pk].clinic_id]
        maintenance = outcome.maintenance_started
        if titration_rules.efficacy_review_due(maintenance, as_of):
            report.review_due += 1
            if titration_rules.efficacy_flag(maintenance, as_of, outcome.responder) is not None:
                report.eff2 += 1
        if not outcome.evaluated:
            continue
        report.evaluated += 1
        report.any_responder += outcome.responder is True
        pain = outcome.pain
        if pain.responder is not None:
            report.pain_responders += pain.responder
            report.grades[pain.grade] += 1
        for result in outcome.results:
            counts = report.condition_results[result.rule]
            counts["applies"] += 1
            counts["defined"] += result.responder is not None
            counts["yes"] += result.responder is True


def _safety(reports, user, start, end) -> None:
    for source, counts in ((selectors.open_flag_counts, "flags"), (selectors.open_task_counts, "tasks")):
        for row in source(user=user):
            if row["clinic_id"] in reports:
                getattr(reports[row["clinic_id"]], counts)[row["kind"]] += row["n"]
    for row in selectors.failed_reminder_counts(user=user, start=start, end=end):
        if row["clinic_id"] in reports:
            reports[row["clinic_id"]].failed[row["kind"]] += row["n"]
    for clinic_id, outcome, when, zone in selectors.gate_event_list(user=user, start=start, end=end):
        if clinic_id in reports and _in(_local(when, zone), start, end):
            reports[clinic_id].gates[outcome] += 1
    for clinic_id, effect, when, patient_id, zone in selectors.severe_side_effect_list(user=user, start=start, end=end):
        if clinic_id in reports and _in(_local(when, zone), start, end):
            reports[clinic_id].severe[effect] += 1
            reports[clinic_id].severe_patients.add(patient_id)
