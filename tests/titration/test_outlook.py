"""The stored plan outlook (titration/outlook.py): what the worklist counts by follows every change to a
plan, its steps, the patient's prescriptions and the pharmacy, in the change's own transaction."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from tests import factories as f
from titration import outlook, rules, services, supply
from titration.models import PlanOutlook, TitrationPlan, TitrationStep
from titration.tasks import outlook_rebuild

pytestmark = pytest.mark.django_db
D = Decimal
NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
TODAY = dt.date(2026, 3, 2)
STEPS = [rules.StepSpec(D("1.5"), 7), rules.StepSpec(D("3.0"), 7), rules.StepSpec(D("4.5"), 7)]


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def started(patient, prescriber):
    """A plan started today from 90 capsules of 1.5 mg (one refill), pharmacy lead time 5 days."""
    rx = f.PrescriptionFactory(
        patient=patient, prescriber=prescriber, written_on=TODAY, start_on=TODAY, quantity=D("90"), refills=1
    )
    rx.pharmacy.lead_time_days = 5
    rx.pharmacy.save()
    plan = services.plan_create(actor=prescriber, patient=patient, custom_steps=STEPS, start=TODAY, prescription=rx)
    services.plan_start(actor=prescriber, plan=plan, start=TODAY)
    return plan


def stored(plan) -> PlanOutlook | None:
    return PlanOutlook.objects.filter(plan=plan).first()


def test_a_started_plan_has_its_outlook_with_the_next_step_and_the_supply(started):
    row = stored(started)
    assert row.step_on == TODAY + dt.timedelta(days=7) and row.step_day == row.step_on.toordinal()
    # 3.0 mg is two 1.5 mg capsules: the next step can be made, so no RX-3 new prescription.
    assert row.new_rx_by is None
    # 180 capsules (90 and a refill) at 1, 2, then 3 a night: 7 + 14 = 21 in two weeks, 159 left at 3 a night.
    assert row.runs_out == TODAY + dt.timedelta(days=14 + 53)
    assert row.reorder_by == supply.reorder_by(row.runs_out, 5)


def test_a_draft_plan_has_none_and_a_stopped_plan_loses_it(patient, prescriber, started):
    draft = services.plan_create(
        actor=prescriber, patient=f.PatientFactory(clinic=patient.clinic), custom_steps=STEPS, start=TODAY
    )
    assert stored(draft) is None
    services.plan_discontinue(actor=prescriber, plan=started, reason="patient stopped LDN")
    assert stored(started) is None


def test_a_step_up_moves_the_next_step(started, prescriber):
    services.plan_advance(actor=prescriber, plan=started, on=TODAY + dt.timedelta(days=7))
    assert stored(started).step_on == TODAY + dt.timedelta(days=14)


def test_a_cancelled_prescription_leaves_the_next_step_needing_a_new_one_RX3(started, prescriber):
    services.prescription_cancel(actor=prescriber, prescription=started.prescription, reason="written in error")
    row = stored(started)
    assert row.runs_out is None and row.reorder_by is None
    # No prescription at all: the default lead time before the step's evening.
    assert row.new_rx_by == supply.reorder_by(TODAY + dt.timedelta(days=7), supply.DEFAULT_LEAD_TIME_DAYS)


def test_a_pharmacys_new_lead_time_moves_the_reorder_date(started):
    pharmacy = started.prescription.pharmacy
    before = stored(started).reorder_by
    pharmacy.lead_time_days = 9
    pharmacy.save()
    assert stored(started).reorder_by == before - dt.timedelta(days=4)


def test_rebuild_mends_plans_written_in_bulk_and_rows_left_behind(started, patient):
    """bulk_create sends no signal: the nightly rebuild (and migrate) writes what the changes did not."""
    other = f.PatientFactory(clinic=patient.clinic, status="active")
    (plan,) = TitrationPlan.objects.bulk_create(
        [TitrationPlan(clinic=other.clinic, patient=other, target_dose_mg=D("4.5"), start_date=TODAY, status="active")]
    )
    TitrationStep.objects.bulk_create(
        [
            TitrationStep(
                clinic=other.clinic, plan=plan, sequence=1, dose_mg=D("1.5"), planned_start=TODAY, status="active"
            ),
            TitrationStep(
                clinic=other.clinic, plan=plan, sequence=2, dose_mg=D("3.0"), planned_start=TODAY + dt.timedelta(days=7)
            ),
        ]
    )
    TitrationPlan.objects.filter(pk=started.pk).update(status="completed")  # an UPDATE: no signal either
    assert stored(plan) is None and stored(started) is not None
    assert outlook_rebuild() == 1
    assert stored(plan).new_rx_by is not None  # no prescription for step 2 (RX-3)
    assert stored(started) is None


def test_read_says_the_same_as_the_stored_row(started):
    (facts,) = outlook.read([started.pk])
    row = stored(started)
    assert (facts.step_day, facts.runout.runs_out, facts.new_rx_by) == (row.step_on, row.runs_out, row.new_rx_by)
    assert facts.due_day(TODAY + dt.timedelta(days=9)) == TODAY + dt.timedelta(days=14)  # REM-1: weekly re-ask
