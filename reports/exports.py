"""The exports: for each, its columns and its rows, one row per record, built from reports.selectors."""

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from symptoms.models import SideEffect, SideEffectReport
from titration.models import PlanStatus, StepStatus

from . import selectors

CHUNK = 2000  # rows per fetch (and per prefetch): memory stays flat on a large clinic


@dataclass(frozen=True)
class Export:
    key: str
    title: str
    description: str
    header: list[str]
    rows: Callable[..., Iterator[list]]  # rows(user, clinics {id: slug}, start, end)
    dated: bool = False  # takes the from/to filter


def _side_effect(report: SideEffectReport) -> str:
    name = report.get_effect_display()
    if report.effect == SideEffect.OTHER and report.description:
        name = f"{name} ({report.description})"
    return f"{name}: {report.get_severity_display().lower()}"


def checkin_rows(user, clinics: dict[int, str], start: dt.date | None, end: dt.date | None) -> Iterator[list]:
    for checkin in selectors.checkin_list(user=user, start=start, end=end).iterator(chunk_size=CHUNK):
        patient = checkin.patient
        day = checkin.recorded_at.astimezone(patient.zone).date()
        if (start and day < start) or (end and day > end):
            continue  # inside the UTC margin, outside the range in the patient's own time zone
        effects = "; ".join(_side_effect(e) for e in checkin.side_effects.all())
        yield [
            clinics.get(checkin.clinic_id, ""),
            patient.mrn,
            patient.full_name,
            day,
            checkin.pain,
            checkin.fatigue,
            checkin.sleep_quality,
            checkin.mood,
            checkin.took_dose_as_prescribed,
            checkin.nights_missed,
            checkin.get_opioid_use_display(),
            effects,
            checkin.notes,
        ]


def patient_rows(user, clinics: dict[int, str], start=None, end=None) -> Iterator[list]:
    for patient in selectors.patient_titration_list(user=user).iterator(chunk_size=CHUNK):
        plan = selectors.current_plan(patient)
        step = selectors.current_step(plan) if plan is not None and plan.status == PlanStatus.ACTIVE else None
        held = step is not None and step.status == StepStatus.HELD
        yield [
            clinics.get(patient.clinic_id, ""),
            patient.mrn,
            patient.full_name,
            patient.get_status_display(),
            "; ".join(c.get_condition_display() for c in patient.conditions.all()),
            step.dose_mg if step is not None else None,
            plan.get_status_display() if plan is not None else "",
            held,
            step.note if held else "",
            patient.open_flags,
        ]


def safety_rows(user, clinics: dict[int, str], start=None, end=None) -> Iterator[list]:
    for flag in selectors.open_flag_list(user=user).iterator(chunk_size=CHUNK):
        patient = flag.patient
        yield [
            clinics.get(flag.clinic_id, ""),
            "Opioid flag",
            patient.mrn,
            patient.full_name,
            flag.get_kind_display(),
            flag.get_severity_display(),
            flag.medication_text,
            flag.created_at.astimezone(patient.zone),
            None,
            flag.get_status_display(),
        ]
    for task in selectors.open_task_list(user=user).iterator(chunk_size=CHUNK):
        patient = task.patient
        yield [
            clinics.get(task.clinic_id, ""),
            "Clinician task",
            patient.mrn,
            patient.full_name,
            task.get_kind_display(),
            "",
            task.title,
            task.created_at.astimezone(patient.zone),
            task.due_on,
            task.get_status_display(),
        ]


EXPORTS = {
    e.key: e
    for e in [
        Export(
            key="checkins",
            title="Check-ins",
            description="One row per symptom check-in: scores, adherence, opioid answer, side effects and notes.",
            header=[
                "Clinic",
                "MRN",
                "Patient",
                "Recorded on (patient's time zone)",
                "Pain (0-10)",
                "Fatigue (0-10)",
                "Sleep quality (0-10)",
                "Mood (0-10)",
                "Took dose as prescribed",
                "Nights missed",
                "Opioid use since last check-in",
                "Side effects",
                "Notes",
            ],
            rows=checkin_rows,
            dated=True,
        ),
        Export(
            key="patients",
            title="Patients and titration",
            description="One row per patient: status, conditions, current dose, plan, hold and open opioid flags.",
            header=[
                "Clinic",
                "MRN",
                "Patient",
                "Status",
                "Conditions",
                "Current dose (mg)",
                "Plan status",
                "Held",
                "Hold reason",
                "Open opioid flags",
            ],
            rows=patient_rows,
        ),
        Export(
            key="safety",
            title="Safety worklist",
            description="Open opioid conflict flags and open clinician tasks.",
            header=[
                "Clinic",
                "Record",
                "MRN",
                "Patient",
                "Kind",
                "Severity",
                "Title / medication",
                "Opened at (patient's time zone)",
                "Due on",
                "Status",
            ],
            rows=safety_rows,
        ),
    ]
}
