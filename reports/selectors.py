"""Reads for the reports: querysets from ldnclinic.scoping.visible_to, with everything a report row
needs loaded in a fixed number of queries, however many rows there are.

visible_to lets a superuser (the platform operator) see every clinic. A report is a clinic's own
report, so every queryset here is also limited to the clinics the user is an active member of: a
superuser with no membership gets nothing, one with a membership gets that clinic.
"""

import datetime as dt

from django.db.models import Count, Prefetch, Q, QuerySet

from ldnclinic.scoping import staff_clinic_ids, visible_to
from patients.flag_models import FlagStatus, TaskStatus
from patients.models import Clinic, ClinicianTask, ConflictFlag, Patient, PatientCondition
from symptoms.models import SideEffectReport, SymptomCheckIn
from titration.models import PlanStatus, StepStatus, TitrationPlan, TitrationStep

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
    if start is not None:
        lower = _utc_midnight(start, -ZONE_MARGIN)
        if lower is not None:
            qs = qs.filter(recorded_at__gte=lower)
    if end is not None and end < dt.date.max:
        upper = _utc_midnight(end + dt.timedelta(days=1), ZONE_MARGIN)
        if upper is not None:
            qs = qs.filter(recorded_at__lt=upper)
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
