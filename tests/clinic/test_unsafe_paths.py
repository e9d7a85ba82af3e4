"""The unsafe paths found when the clinicians worked in the admin (issue 10, the list at the top), taken
through the clinic pages as a browser would (GET the page, POST its form) and shown not to happen.
The admin side of each is in tests/test_admin_readonly.py."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from patients import services as patient_services
from patients.flag_models import FlagStatus
from tests import factories as f
from titration import rules, services
from titration.models import PrescriptionStatus, Reminder

D = Decimal
TODAY = dt.date(2026, 6, 10)
STD = [rules.StepSpec(D("1.5"), 7), rules.StepSpec(D("3.0"), 7), rules.StepSpec(D("4.5"), 7)]
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(dt.datetime(2026, 6, 10, 13, 0, tzinfo=dt.UTC), tick=False):
        yield


@pytest.fixture
def desk(login, prescriber):
    return login(prescriber)


def _rx(patient, prescriber, **kw):
    values = {"written_on": dt.date(2026, 5, 1), "start_on": dt.date(2026, 5, 1), **kw}
    return f.PrescriptionFactory(patient=patient, prescriber=prescriber, strength_value=D("1.5"), **values)


def _plan(patient, prescriber, start, rx=None):
    rx = rx or _rx(patient, prescriber)
    plan = services.plan_create(actor=prescriber, patient=patient, custom_steps=STD, start=start, prescription=rx)
    services.plan_start(actor=prescriber, plan=plan, start=start)
    return plan


def _post(desk, plan, action, **fields):
    data = {f"{action}-{name}": value for name, value in fields.items()}
    return desk.post(reverse("clinic:plan-action", args=[plan.pk, action]), data, follow=True)


def test_hold_from_the_plan_page_cancels_tonights_step_up_and_says_stay(desk, prescriber, patient):
    plan = _plan(patient, prescriber, TODAY - dt.timedelta(days=7))
    step_up = Reminder.objects.get(patient=patient, kind="step_up", status="pending", local_date=TODAY)
    page = _post(desk, plan, "hold", reason="patient unwell with a cold").content.decode()
    step_up.refresh_from_db()
    assert step_up.status == "cancelled"
    assert Reminder.objects.filter(patient=patient, kind="stay_dose", status="pending", local_date=TODAY).exists()
    assert "(tonight): LDN: stay on your dose tonight" in page


def test_step_back_from_the_plan_page_plans_the_retry_never_a_higher_dose(desk, prescriber, patient):
    plan = _plan(patient, prescriber, TODAY - dt.timedelta(days=10))
    services.plan_advance(actor=prescriber, plan=plan, on=TODAY - dt.timedelta(days=3))
    _post(desk, plan, "step_back", on=TODAY.isoformat(), reason="moderate headache")
    step_up = Reminder.objects.get(patient=patient, kind="step_up", status="pending")
    assert step_up.step.dose_mg == D("3.0") and step_up.local_date == TODAY + dt.timedelta(days=14)


def test_a_custom_dose_raise_on_day_one_from_the_plan_page_is_refused_with_the_rule(desk, prescriber, patient):
    plan = _plan(patient, prescriber, TODAY)
    page = _post(desk, plan, "custom_dose", dose_mg="4.5", on=TODAY.isoformat(), reason="faster").content.decode()
    assert "1.3.1" in page and "only 0 of 7 days" in page
    assert plan.steps.get(sequence=1).status == "active" and plan.steps.count() == 3


def test_a_plan_without_an_active_prescription_cannot_be_started_from_the_page(desk, prescriber, patient):
    rx = _rx(patient, prescriber, status=PrescriptionStatus.DRAFT)
    plan = services.plan_create(actor=prescriber, patient=patient, custom_steps=STD, start=TODAY, prescription=rx)
    page = _post(desk, plan, "start", start=TODAY.isoformat()).content.decode()
    assert "Activate an LDN prescription" in page
    plan.refresh_from_db()
    assert plan.status == "draft"


@pytest.fixture
def norco(patient):
    medication = f.MedicationFactory(patient=patient, name="Norco 5/325", last_dose_date=TODAY - dt.timedelta(days=2))
    patient_services.medication_evaluate(medication=medication)
    return medication.conflict_flags.get(kind="conflict")


def test_washout_confirmed_two_days_after_norco_is_refused_from_the_flag_page(desk, norco):
    response = desk.post(
        reverse("clinic:flag", args=[norco.pk]), {"action": "acknowledge", "ack-reason": "washout_confirmed"}
    )
    assert response.status_code == 200
    assert "The washout is not complete" in response.content.decode()
    norco.refresh_from_db()
    assert norco.status == FlagStatus.OPEN


def test_an_acknowledged_norco_still_blocks_activating_a_prescription_that_starts_too_early(
    desk, prescriber, patient, norco
):
    patient_services.flag_acknowledge(actor=prescriber, flag=norco, reason="not_taking")
    rx = _rx(patient, prescriber, status=PrescriptionStatus.DRAFT, written_on=TODAY, start_on=TODAY)
    page = desk.post(reverse("clinic:prescription", args=[rx.pk]), {"action": "activate"}, follow=True)
    assert "before the earliest safe start" in page.content.decode()
    rx.refresh_from_db()
    assert rx.status == PrescriptionStatus.DRAFT
