"""The dates symptoms asks titration for (first dose; start of maintenance), through the hook."""

import datetime as dt
from decimal import Decimal

import pytest

from symptoms import hooks
from tests import factories as f

pytestmark = pytest.mark.django_db

D = dt.date(2026, 3, 1)


def _step(plan, seq, mg, start, status="done"):
    return f.StepFactory(
        plan=plan, sequence=seq, dose_mg=Decimal(mg), planned_start=start, actual_start=start, status=status
    )


def test_never_started_has_no_dates(patient):
    f.StepFactory(plan=f.PlanFactory(patient=patient), sequence=1, planned_start=D)  # planned, not started
    assert hooks.treatment_dates(patient) == {"first_dose": None, "maintenance_started": None}


def test_first_dose_and_maintenance_start(patient):
    plan = f.PlanFactory(patient=patient, target_dose_mg=Decimal("4.5"))
    _step(plan, 1, "1.5", D)
    _step(plan, 2, "3.0", D + dt.timedelta(days=7))
    _step(plan, 3, "4.5", D + dt.timedelta(days=14), status="active")
    assert hooks.treatment_dates(patient) == {"first_dose": D, "maintenance_started": D + dt.timedelta(days=14)}


def test_a_step_back_below_target_restarts_the_maintenance_clock(patient):
    plan = f.PlanFactory(patient=patient, target_dose_mg=Decimal("4.5"))
    _step(plan, 1, "4.5", D, status="stepped_back")
    _step(plan, 2, "3.0", D + dt.timedelta(days=10))
    _step(plan, 3, "4.5", D + dt.timedelta(days=24), status="active")
    assert hooks.treatment_dates(patient)["maintenance_started"] == D + dt.timedelta(days=24)


def test_below_target_has_no_maintenance_and_other_patients_do_not_leak(patient, other_patient):
    _step(f.PlanFactory(patient=patient), 1, "1.5", D, status="active")
    _step(f.PlanFactory(patient=other_patient), 1, "4.5", D - dt.timedelta(days=30), status="active")
    assert hooks.treatment_dates(patient) == {"first_dose": D, "maintenance_started": None}
