"""EFF-1 as a clinician task, raised by the daily beat task, with EFF-2's verdict in it."""

import datetime as dt

import pytest

from patients.flag_models import ClinicianTask
from tests.titration.test_response_admin import ago, checkins, fibromyalgia_responder, started_plan
from titration import efficacy, tasks
from titration.rules import EFFICACY_REVIEW_DAYS


def reviews(patient=None):
    rows = ClinicianTask.objects.filter(kind="efficacy_review")
    return rows.filter(patient=patient) if patient else rows


@pytest.mark.parametrize(("days", "raised"), [(EFFICACY_REVIEW_DAYS - 1, False), (EFFICACY_REVIEW_DAYS, True)])
def test_the_review_task_is_raised_at_12_weeks_on_the_maintenance_dose_EFF1(patient, days, raised):
    patient.status = "active"
    patient.save()
    plan = started_plan(patient, ago(days))
    assert tasks.efficacy_reviews.apply().get() == int(raised)
    assert reviews(patient).exists() == raised
    if raised:
        (task,) = reviews(patient)
        assert task.due_on == ago(days) + dt.timedelta(days=EFFICACY_REVIEW_DAYS)
        assert task.status == "open" and task.clinic_id == plan.clinic_id
        assert "12 weeks on the maintenance dose" in task.title


def test_a_non_responder_review_says_consider_discontinuation_EFF2(patient):
    patient.status = "active"
    patient.save()
    plan = started_plan(patient, ago(100))
    checkins(patient, plan.start_date, [7, 7, 8, 6], [7, 7])  # no change in pain
    efficacy.raise_efficacy_reviews()
    (task,) = reviews(patient)
    assert "not a responder" in task.detail and "consider discontinuation or an alternative dose" in task.detail


def test_a_responder_review_says_so_and_unknown_status_asks_for_a_review_EFF2(patient, sibling_patient):
    for p in (patient, sibling_patient):
        p.status = "active"
        p.save()
    fibromyalgia_responder(patient, 90)
    started_plan(sibling_patient, ago(90))  # no check-ins: responder status unknown
    assert efficacy.raise_efficacy_reviews() == 2
    assert "a responder after 12 weeks" in reviews(patient).get().detail
    assert "responder status unknown" in reviews(sibling_patient).get().detail


def test_raising_again_changes_nothing_and_a_closed_review_stays_closed_EFF1(patient):
    patient.status = "active"
    patient.save()
    started_plan(patient, ago(90))
    assert efficacy.raise_efficacy_reviews() == 1
    task = reviews(patient).get()
    task.status, task.completed_note = "done", "reviewed with the patient: continue 4.5 mg"
    task.save()
    assert efficacy.raise_efficacy_reviews() == 0
    assert list(reviews(patient).values_list("status", flat=True)) == ["done"]


def test_no_review_for_a_discontinued_or_archived_patient_EFF1(patient, sibling_patient):
    patient.status, patient.discontinued_reason = "discontinued", "moved away"
    patient.save()
    started_plan(patient, ago(90))
    sibling_patient.status = "active"
    sibling_patient.save()
    started_plan(sibling_patient, ago(90))
    sibling_patient.delete()
    assert efficacy.raise_efficacy_reviews() == 0


def test_the_daily_run_is_scheduled_in_beat_EFF1(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["efficacy-reviews"]
    assert entry["task"] == tasks.efficacy_reviews.name


def test_the_reads_are_bulk_whatever_the_number_of_patients_due_EFF1(clinic, django_assert_max_num_queries):
    """A fixed number of queries to read plans, dates and outcomes, then each new task's own writes
    (savepoints, the insert, its history row)."""
    from tests import factories as f

    def due(n):
        for _ in range(n):
            started_plan(f.PatientFactory(clinic=clinic, status="active"), ago(90))

    def queries_for_a_run() -> int:
        ClinicianTask.objects.all().delete()
        with django_assert_max_num_queries(500) as run:
            efficacy.raise_efficacy_reviews()
        return len(run.captured_queries)

    due(3)
    few = queries_for_a_run()
    due(12)
    many = queries_for_a_run()
    per_task = (many - few) / 12
    assert per_task <= 7, per_task
    assert few - 3 * per_task <= 8  # the bulk reads
    assert reviews().count() == 15
