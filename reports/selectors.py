"""Reads for the reports: querysets from ldnclinic.scoping.visible_to, with everything a report row
needs loaded in a fixed number of queries, however many rows there are.

visible_to lets a superuser (the platform operator) see every clinic. A report is a clinic's own
report, so every queryset here is also limited to the clinics the user is an active member of: a
superuser with no membership gets nothing, one with a membership gets that clinic.
"""

import datetime as dt

from django.db.models import Count, Min, Prefetch, Q, QuerySet

from ldnclinic.scoping import staff_clinic_ids, visible_to
from patients.flag_models import FlagStatus, SafetyGateEvent, TaskStatus
from patients.models import Clinic, ClinicianTask, ConflictFlag, Patient, PatientCondition, PatientStatus
from symptoms.models import Severity, SideEffectReport, SymptomCheckIn
from titration.models import PlanStatus, Reminder, StepStatus, TitrationPlan, TitrationStep
from titration.reminder_models import ReminderStatus

# Offsets of real time zones lie between UTC-12 and UTC+14: a day's window widened by this much
# on each side holds every check-in whose local date (in its patient's zone) is in the range.
ZONE_MARGIN = dt.timedelta(hours=14)


def _own(user, queryset: QuerySet, clinic_path: str = "clinic") -> QuerySet:
    return visible_to(user, queryset).filter(**{f"{clinic_path}__in": staff_clinic_ids(user)})


def clinic_list(*, user) -> QuerySet[Clinic]:
    return _own(user, Clinic.objects.order_by("slug"), clinic_path="pk")


def checkin_list(*, user, start: dt.date | None = None, end: dt.date | None = None) -> QuerySet[SymptomCheckIn]:
    """Check-ins of live patients, oldest first. ``start``/``end`` narrow by UTC with a margin; the
    caller keeps the rows whose date in the patient's time zone is in the range."""
    qs = (
        _own(user, SymptomCheckIn.objects.filter(patient__deleted_at__isnull=True))
        .select_related("patient")
        .prefetch_related(Prefetch("side_effects", queryset=_own(user, SideEffectReport.objects.order_by("pk"))))
        .order_by("recorded_at", "pk")
    )
    return _near(qs, "recorded_at", start, end)


def _near(qs: QuerySet, field: str, start: dt.date | None, end: dt.date | None) -> QuerySet:
    """Rows whose ``field`` (a UTC time) may fall on a local date from ``start`` to ``end`` in some real
    time zone: the caller keeps those whose date in their patient's zone is in the range."""
    if start is not None:
        lower = _utc_midnight(start, -ZONE_MARGIN)
        if lower is not None:
            qs = qs.filter(**{f"{field}__gte": lower})
    if end is not None and end < dt.date.max:
        upper = _utc_midnight(end + dt.timedelta(days=1), ZONE_MARGIN)
        if upper is not None:
            qs = qs.filter(**{f"{field}__lt": upper})
    return qs


def _utc_midnight(day: dt.date, shift: dt.timedelta) -> dt.datetime | None:
    try:
        return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC) + shift
    except OverflowError:  # year 1 or 9999: no bound on that side
        return None


def patient_titration_list(*, user) -> QuerySet[Patient]:
    """Live patients with their conditions, plans (newest first) with the active or held steps,
    and the number of open opioid flags (every open flag blocks LDN: patients.services.open_flags)."""
    steps = _own(user, TitrationStep.objects.filter(status__in=[StepStatus.ACTIVE, StepStatus.HELD]))
    plans = _own(user, TitrationPlan.objects.order_by("-start_date", "-pk")).prefetch_related(
        Prefetch("steps", queryset=steps.order_by("-sequence"), to_attr="current_steps")
    )
    return (
        _own(user, Patient.objects.all())
        .annotate(open_flags=Count("conflict_flags", filter=Q(conflict_flags__status=FlagStatus.OPEN)))
        .prefetch_related(
            Prefetch("conditions", queryset=_own(user, PatientCondition.objects.order_by("condition"))),
            Prefetch("titration_plans", queryset=plans, to_attr="live_plans"),
        )
        .order_by("last_name", "first_name", "mrn", "pk")
    )


def open_flag_list(*, user) -> QuerySet[ConflictFlag]:
    return (
        _own(user, ConflictFlag.objects.filter(status=FlagStatus.OPEN, patient__deleted_at__isnull=True))
        .select_related("patient")
        .order_by("created_at", "pk")
    )


def open_task_list(*, user) -> QuerySet[ClinicianTask]:
    return (
        _own(user, ClinicianTask.objects.filter(status=TaskStatus.OPEN, patient__deleted_at__isnull=True))
        .select_related("patient")
        .order_by("due_on", "created_at", "pk")
    )


def current_plan(patient: Patient) -> TitrationPlan | None:
    """The active plan, else the newest one (from ``patient_titration_list``'s prefetch)."""
    plans = patient.live_plans
    return next((p for p in plans if p.status == PlanStatus.ACTIVE), plans[0] if plans else None)


def current_step(plan: TitrationPlan) -> TitrationStep | None:
    """titration.content.current_step over the prefetched steps: the highest active or held step."""
    return plan.current_steps[0] if plan.current_steps else None


# --- The clinic report (reports.summary): rows and counts, each keyed by clinic -------------------------------
# Live rows only: an archived patient takes every row about them out of the report, and an archived row
# (plan, step, check-in, condition) is out on its own.


def live_patient_list(*, user) -> QuerySet[Patient]:
    """Live patients, with what the report reads of them (status, zone; pk and clinic for grouping)."""
    return _own(user, Patient.objects.all()).only("pk", "clinic_id", "status", "time_zone").order_by("pk")


def condition_counts(*, user) -> QuerySet:
    """{clinic_id, condition, n}: live patients per condition (a patient with two counts under each)."""
    qs = _own(user, PatientCondition.objects.filter(patient__deleted_at__isnull=True))
    return qs.values("clinic_id", "condition").annotate(n=Count("patient_id", distinct=True)).order_by()


def active_plan_list(*, user) -> QuerySet:
    """(patient id, plan id, target dose) of each live patient's active plan (one at most: a constraint)."""
    qs = _own(user, TitrationPlan.objects.filter(status=PlanStatus.ACTIVE, patient__deleted_at__isnull=True))
    return qs.values_list("patient_id", "pk", "target_dose_mg")


def running_step_list(*, user) -> QuerySet:
    """(plan id, sequence, status, dose) of the active or held steps of live active plans."""
    qs = _own(
        user,
        TitrationStep.objects.filter(
            status__in=[StepStatus.ACTIVE, StepStatus.HELD],
            plan__status=PlanStatus.ACTIVE,
            plan__deleted_at__isnull=True,
            plan__patient__deleted_at__isnull=True,
        ),
    )
    return qs.values_list("plan_id", "sequence", "status", "dose_mg")


def first_dose_list(*, user, start: dt.date | None, end: dt.date | None) -> QuerySet:
    """(clinic id, patient id, first dose) of live patients whose first LDN dose ever (the earliest started
    step of any live plan but a draft, a cancelled one included: the patient did take it) is in the range."""
    qs = _own(
        user,
        TitrationStep.objects.filter(
            actual_start__isnull=False, plan__deleted_at__isnull=True, plan__patient__deleted_at__isnull=True
        ).exclude(plan__status=PlanStatus.DRAFT),
    )
    qs = qs.values("clinic_id", "plan__patient_id").annotate(first=Min("actual_start")).order_by()
    if start is not None:
        qs = qs.filter(first__gte=start)
    if end is not None:
        qs = qs.filter(first__lte=end)
    return qs.values_list("clinic_id", "plan__patient_id", "first")


def discontinuation_history(*, user, start: dt.date | None) -> QuerySet:
    """The status history (patient id, when, status, reason), oldest first, of the live patients with a
    "discontinued" record from about ``start`` on: the patient record keeps no date of its own for it."""
    history = Patient.history.model
    recent = history.objects.filter(status=PatientStatus.DISCONTINUED)
    recent = _near(recent, "history_date", start, None)
    return (
        history.objects.filter(id__in=_own(user, Patient.objects.all()).values("pk"))
        .filter(id__in=recent.values("id"))
        .order_by("id", "history_date", "history_id")
        .values_list("id", "history_date", "status", "discontinued_reason")
    )


def open_flag_counts(*, user) -> QuerySet:
    """{clinic_id, kind, n} of open opioid conflict flags of live patients."""
    qs = _own(user, ConflictFlag.objects.filter(status=FlagStatus.OPEN, patient__deleted_at__isnull=True))
    return qs.values("clinic_id", "kind").annotate(n=Count("pk")).order_by()


def open_task_counts(*, user) -> QuerySet:
    """{clinic_id, kind, n} of open clinician tasks of live patients."""
    qs = _own(user, ClinicianTask.objects.filter(status=TaskStatus.OPEN, patient__deleted_at__isnull=True))
    return qs.values("clinic_id", "kind").annotate(n=Count("pk")).order_by()


def gate_event_list(*, user, start: dt.date | None, end: dt.date | None) -> QuerySet:
    """(clinic id, outcome, when, patient's zone) of safety gate events near the range (see ``_near``)."""
    qs = _own(user, SafetyGateEvent.objects.filter(patient__deleted_at__isnull=True))
    return _near(qs, "created_at", start, end).values_list("clinic_id", "outcome", "created_at", "patient__time_zone")


def severe_side_effect_list(*, user, start: dt.date | None, end: dt.date | None) -> QuerySet:
    """(clinic id, effect, check-in time, patient id, patient's zone) of severe side effects (SE-4)
    reported in live check-ins near the range (see ``_near``)."""
    qs = _own(
        user,
        SideEffectReport.objects.filter(
            severity=Severity.SEVERE, checkin__deleted_at__isnull=True, checkin__patient__deleted_at__isnull=True
        ),
    )
    return _near(qs, "checkin__recorded_at", start, end).values_list(
        "clinic_id", "effect", "checkin__recorded_at", "checkin__patient_id", "checkin__patient__time_zone"
    )


def failed_reminder_counts(*, user, start: dt.date | None, end: dt.date | None) -> QuerySet:
    """{clinic_id, kind, n} of reminders that failed for good, for a day (the patient's) in the range."""
    qs = _own(user, Reminder.objects.filter(status=ReminderStatus.FAILED, patient__deleted_at__isnull=True))
    if start is not None:
        qs = qs.filter(local_date__gte=start)
    if end is not None:
        qs = qs.filter(local_date__lte=end)
    return qs.values("clinic_id", "kind").annotate(n=Count("pk")).order_by()
