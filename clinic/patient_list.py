"""The patient list: search, filter by status, condition and stage, sort by allow-listed columns, 25 a page.

Stage is derived in SQL, so it can be filtered and the page stays one query: screening, paused and
discontinued come from the patient's status; an active patient is *held* when the current step of
their active plan is held, in *maintenance* when its dose has reached the plan's target, and
*titrating* otherwise (also before the plan's first step is taken).
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django import forms
from django.core.paginator import Page, Paginator
from django.db.models import Case, CharField, Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery, Value, When

from ldnclinic.scoping import visible_to
from patients.models import Condition, Patient, PatientCondition, PatientStatus
from patients.services import patient_today
from symptoms.models import SymptomCheckIn
from titration.models import PlanStatus, StepStatus, TitrationPlan, TitrationStep
from titration.rules import fmt_mg

from .worklist_rows import url

PAGE_SIZE = 25
SCREENING, TITRATING, MAINTENANCE, HELD, PAUSED, DISCONTINUED = (
    "screening",
    "titrating",
    "maintenance",
    "held",
    "paused",
    "discontinued",
)
STAGES = (
    (SCREENING, "Screening"),
    (TITRATING, "Titrating"),
    (MAINTENANCE, "Maintenance"),
    (HELD, "Held"),
    (PAUSED, "Paused"),
    (DISCONTINUED, "Discontinued"),
)
STAGE_LABELS = dict(STAGES)
# sort key -> (column label, columns sorted the way asked, then ties by name). "-key" sorts the other
# way; any other value is ignored.
SORTS = {
    "last_name": ("Name", ("last_name", "first_name")),
    "mrn": ("MRN", ("mrn",)),
    "dob": ("Date of birth", ("date_of_birth",)),
    "status": ("Status", ("status",)),
    "last_checkin": ("Last check-in", ("last_checkin",)),
}
TIES = ("last_name", "first_name", "pk")
DEFAULT_SORT = "last_name"


class PatientSearchForm(forms.Form):
    q = forms.CharField(label="Name or MRN", required=False, max_length=100)
    dob = forms.DateField(
        label="Date of birth", required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    status = forms.ChoiceField(label="Status", required=False, choices=[("", "Any status"), *PatientStatus.choices])
    condition = forms.ChoiceField(
        label="Condition", required=False, choices=[("", "Any condition"), *Condition.choices]
    )
    stage = forms.ChoiceField(label="Stage", required=False, choices=[("", "Any stage"), *STAGES])


def _current_step():
    return TitrationStep.objects.filter(
        plan__patient=OuterRef("pk"),
        plan__status=PlanStatus.ACTIVE,
        plan__deleted_at__isnull=True,
        status__in=[StepStatus.ACTIVE, StepStatus.HELD],
    ).order_by("-sequence")


def annotated(queryset: QuerySet[Patient]) -> QuerySet[Patient]:
    """Patients with ``last_checkin``, ``current_dose``, ``current_status``, ``target_dose`` and ``stage``."""
    last = SymptomCheckIn.objects.filter(patient=OuterRef("pk")).order_by("-recorded_at").values("recorded_at")[:1]
    target = TitrationPlan.objects.filter(patient=OuterRef("pk"), status=PlanStatus.ACTIVE).values("target_dose_mg")
    return queryset.annotate(
        last_checkin=Subquery(last),
        current_status=Subquery(_current_step().values("status")[:1]),
        current_dose=Subquery(_current_step().values("dose_mg")[:1]),
        target_dose=Subquery(target[:1]),
    ).annotate(
        stage=Case(
            When(status=PatientStatus.SCREENING, then=Value(SCREENING)),
            When(status=PatientStatus.PAUSED, then=Value(PAUSED)),
            When(status=PatientStatus.DISCONTINUED, then=Value(DISCONTINUED)),
            When(current_status=StepStatus.HELD, then=Value(HELD)),
            When(current_dose__gte=F("target_dose"), then=Value(MAINTENANCE)),
            default=Value(TITRATING),
            output_field=CharField(),
        )
    )


def search(queryset: QuerySet[Patient], data: dict) -> QuerySet[Patient]:
    """Filter by the cleaned form: every word of ``q`` in the first name, last name or MRN."""
    for word in (data.get("q") or "").split():
        queryset = queryset.filter(
            Q(first_name__icontains=word) | Q(last_name__icontains=word) | Q(mrn__icontains=word)
        )
    if data.get("dob"):
        queryset = queryset.filter(date_of_birth=data["dob"])
    if data.get("status"):
        queryset = queryset.filter(status=data["status"])
    if data.get("condition"):
        queryset = queryset.filter(
            Exists(PatientCondition.objects.filter(patient=OuterRef("pk"), condition=data["condition"]))
        )
    if data.get("stage"):
        queryset = queryset.filter(stage=data["stage"])
    return queryset


def sort_key(value: str | None) -> str:
    """The allow-listed sort asked for, or the default: an unknown column is ignored, never an error."""
    value = (value or "").strip()
    return value if value.removeprefix("-") in SORTS else DEFAULT_SORT


def ordered(queryset: QuerySet[Patient], key: str) -> QuerySet[Patient]:
    """Sort by the column (never-checked-in and other empty values last either way), then by name."""
    descending = key.startswith("-")
    columns = SORTS[key.removeprefix("-")][1]
    order = [F(c).desc(nulls_last=True) if descending else F(c).asc(nulls_last=True) for c in columns]
    order += [F(c).asc() for c in TIES if c not in columns]
    return queryset.order_by(*order)


@dataclass(frozen=True)
class Row:
    patient: Patient
    age: int
    conditions: list[str]
    stage: str
    current_dose: str
    last_checkin: dt.date | None
    chart: str | None  # the patient's chart, once the chart area has its route


def _age(born: dt.date, today: dt.date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def rows_of(patients) -> list[Row]:
    rows = []
    for patient in patients:
        today = patient_today(patient)
        dose: Decimal | None = patient.current_dose if patient.stage not in (SCREENING, DISCONTINUED) else None
        rows.append(
            Row(
                patient=patient,
                age=_age(patient.date_of_birth, today),
                conditions=[c.get_condition_display() for c in patient.conditions.all()],
                stage=STAGE_LABELS[patient.stage],
                current_dose=f"{fmt_mg(dose)} mg" if dose is not None else "",
                last_checkin=patient.last_checkin.astimezone(patient.zone).date() if patient.last_checkin else None,
                chart=url("patient", patient.pk),
            )
        )
    return rows


def patient_page(*, user, data: dict, sort: str, page: str | int | None) -> tuple[Page, list[Row]]:
    """One page of the patients ``user`` may see, filtered by the cleaned search ``data``."""
    conditions = Prefetch("conditions", queryset=PatientCondition.objects.order_by("condition"))
    queryset = visible_to(user, Patient.objects.select_related("clinic").prefetch_related(conditions))
    queryset = ordered(search(annotated(queryset), data), sort)
    found = Paginator(queryset, PAGE_SIZE).get_page(page)
    return found, rows_of(found.object_list)
