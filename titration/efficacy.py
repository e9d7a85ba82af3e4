"""EFF-1 as a clinician task: when a patient reaches 12 weeks on the maintenance dose, a review task is
raised once for that run on the dose, carrying EFF-2's verdict (a responder, not a responder: consider
discontinuation or another dose, or status unknown: review). Beat runs it daily; it is idempotent by
key, so a task a clinician has closed is not raised again for the same run.
"""

import datetime as dt

from django.db import transaction

from patients.flag_models import ClinicianTask, TaskKind
from patients.models import PatientStatus
from patients.services import patient_today
from symptoms import outcomes

from . import content, rules
from .models import PlanStatus, TitrationPlan


def efficacy_messages(outcome: outcomes.PatientOutcome, today: dt.date) -> list[rules.Reason]:
    """EFF-1 (the review at 12 weeks on the maintenance dose) and EFF-2 (not a responder by then), read with
    the patient's responder status (symptoms.rules.responder_status)."""
    started = outcome.maintenance_started
    if started is None:
        text = "not on the maintenance dose yet: the efficacy review comes at 12 weeks on it (EFF-1)"
        return [rules.Reason("EFF-1", text)]
    due_on = started + dt.timedelta(days=rules.EFFICACY_REVIEW_DAYS)
    if rules.efficacy_review_due(started, today):
        messages = [rules.Reason("EFF-1", f"efficacy review due since {due_on.isoformat()} (EFF-1)")]
    else:
        messages = [rules.Reason("EFF-1", f"efficacy review due on {due_on.isoformat()} (EFF-1)")]
    flag = rules.efficacy_flag(started, today, outcome.responder)
    if flag is not None:
        messages.append(flag)
    elif rules.efficacy_review_due(started, today):
        weeks = (today - started).days // 7
        messages.append(rules.Reason("EFF-2", f"a responder after {weeks} weeks on the maintenance dose (EFF-2)"))
    return messages


def review_detail(outcome: outcomes.PatientOutcome, today: dt.date) -> str:
    started = outcome.maintenance_started
    weeks = (today - started).days // 7
    flag = rules.efficacy_flag(started, today, outcome.responder)
    verdict = flag.text if flag is not None else f"a responder after {weeks} weeks on the maintenance dose (EFF-2)"
    since = f"{weeks} weeks on the maintenance dose since {started.isoformat()} (EFF-1)"
    return f"{since}. Pain: {outcome.summary}. {verdict}."


def raise_efficacy_reviews() -> int:
    """Raise the EFF-1 review for every active patient 12 weeks or more into their current run on the
    maintenance dose. Returns how many tasks it created. A fixed number of queries for the outcomes
    (read in bulk for the patients who are due), plus one per task."""
    plans = TitrationPlan.objects.filter(
        status=PlanStatus.ACTIVE, patient__status=PatientStatus.ACTIVE, patient__deleted_at__isnull=True
    ).select_related("patient")
    patients = {plan.patient_id: plan.patient for plan in plans}
    dates = content.treatment_dates_for(list(patients))
    due = [
        p for pk, p in patients.items() if rules.efficacy_review_due(dates[pk]["maintenance_started"], patient_today(p))
    ]
    created = 0
    for patient_id, (outcome, today) in outcomes.outcomes_on_own_dates(due, dates=dates).items():
        patient, started = patients[patient_id], outcome.maintenance_started
        with transaction.atomic():
            _, new = ClinicianTask.objects.get_or_create(
                key=f"eff1:{patient_id}:{started.isoformat()}",
                defaults={
                    "clinic_id": patient.clinic_id,
                    "patient": patient,
                    "kind": TaskKind.EFFICACY_REVIEW,
                    "title": f"Efficacy review: 12 weeks on the maintenance dose since {started} (EFF-1)",
                    "detail": review_detail(outcome, today),
                    "due_on": started + dt.timedelta(days=rules.EFFICACY_REVIEW_DAYS),
                },
            )
        created += new
    return created
