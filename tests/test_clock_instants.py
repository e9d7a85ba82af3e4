"""The date-sensitive paths at the instants that break a "today" taken from the server's UTC clock.

The whole suite can be run at one instant (``pytest --clock=2026-07-15T23:30:00Z``, see tests/conftest.py);
this module keeps a representative set true at all of them on every run: the reminder planner (REM-1,
REM-2), the patient's dose summary, the check-in week (PRO-2) and the response panel's EFF-1 date. Each
test is frozen at each instant, for patients in three time zones. The expected local dates are written
out, not computed, so the table is also the specification of "today for this patient".
"""

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from patients.today import patient_today
from symptoms import instruments
from tests import factories as f
from tests.titration.test_reminders import active_patient, titrating
from tests.titration.test_response_admin import change_page, started_plan
from titration.models import Reminder
from titration.rules import EFFICACY_REVIEW_DAYS

ZONES = LONDON, BERLIN, NEW_YORK = "Europe/London", "Europe/Berlin", "America/New_York"
D = dt.date

# instant (UTC) -> the calendar date of a patient in London, in Berlin and in New York at that instant
INSTANTS = {
    # 00:30 BST and 01:30 CEST on the 16th in London and Berlin; 19:30 on the 15th in New York
    "2026-07-15T23:30:00Z": (D(2026, 7, 16), D(2026, 7, 16), D(2026, 7, 15)),
    # the night UK clocks go forward (01:00 UTC): half an hour before, and half an hour after
    "2026-03-29T00:30:00Z": (D(2026, 3, 29), D(2026, 3, 29), D(2026, 3, 28)),
    "2026-03-29T01:30:00Z": (D(2026, 3, 29), D(2026, 3, 29), D(2026, 3, 28)),
    # the night they go back: 01:30 BST, then 01:30 GMT an hour later (the same local time, twice)
    "2026-10-25T00:30:00Z": (D(2026, 10, 25), D(2026, 10, 25), D(2026, 10, 24)),
    "2026-10-25T01:30:00Z": (D(2026, 10, 25), D(2026, 10, 25), D(2026, 10, 24)),
    # New Year's Eve: still 2026 in London (GMT = UTC) and New York, already 2027 in Berlin
    "2026-12-31T23:30:00Z": (D(2026, 12, 31), D(2027, 1, 1), D(2026, 12, 31)),
}


@pytest.fixture(params=list(INSTANTS))
def instant(request):
    """The clock stands still at the instant for the whole test, fixtures included."""
    with time_machine.travel(dt.datetime.fromisoformat(request.param), tick=False):
        yield request.param


@pytest.fixture(params=ZONES)
def zone(request):
    return request.param


@pytest.fixture
def today(instant, zone):
    """The patient's own date at the instant, from the table above."""
    return INSTANTS[instant][ZONES.index(zone)]


def at_local(day: dt.date, hour: int, zone: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=zoneinfo.ZoneInfo(zone))


def test_the_patients_today_is_the_date_where_they_live(clinic, instant, zone, today):
    assert patient_today(f.PatientFactory(clinic=clinic, time_zone=zone)) == today


def test_the_step_up_reminder_is_tonight_on_the_patients_own_date_REM1(clinic, instant, zone, today):
    patient = active_patient(clinic, time_zone=zone)
    titrating(patient, today)  # the next step is planned for the patient's today; saving it plans reminders
    (row,) = Reminder.objects.filter(patient=patient, kind="step_up")
    assert (row.local_date, row.status) == (today, "pending")
    assert row.due_at == at_local(today, 21, zone)


def test_nightly_reminders_are_once_a_local_day_at_the_local_time_REM2(clinic, instant, zone, today):
    patient = active_patient(clinic, time_zone=zone, nightly_dose_reminders=True)
    titrating(patient, today, next_in_days=30)
    rows = list(Reminder.objects.filter(patient=patient, kind="nightly_dose").order_by("due_at"))
    assert [r.local_date for r in rows] == [today + dt.timedelta(days=n) for n in range(15)]  # today + 14 days
    assert [r.due_at for r in rows] == [at_local(r.local_date, 21, zone) for r in rows]


def test_the_patients_page_gives_the_next_step_from_their_today_not_a_past_day(client, clinic, instant, zone, today):
    patient = active_patient(clinic, time_zone=zone)
    # 1.5 mg for 10 days; the 3.0 mg step was planned for yesterday (the patient's), so it is due from today.
    titrating(patient, today, next_in_days=-1)
    patient.user = f.UserFactory()
    patient.save()
    client.force_login(patient.user)
    html = client.get(reverse("portal-home")).content.decode()
    assert "Tonight: <strong>1.5 mg (1 capsule of 1.5 mg)</strong>" in html
    assert f"Next step: 3.0 mg (2 capsules of 1.5 mg) from {today:%A} {today.day} {today:%B}, if all is well." in html


@pytest.mark.parametrize(("days_on_ldn", "pgic"), [(27, False), (28, True)])  # the last day of week 3; week 4
def test_the_checkin_week_counts_the_patients_own_days_PRO2(client, clinic, instant, zone, today, days_on_ldn, pgic):
    patient = active_patient(clinic, time_zone=zone)
    first_dose = today - dt.timedelta(days=days_on_ldn)
    plan = f.PlanFactory(patient=patient, status="active", start_date=first_dose)
    f.StepFactory(
        plan=plan,
        sequence=1,
        dose_mg=Decimal("1.5"),
        planned_start=first_dose,
        actual_start=first_dose,
        status="active",
    )
    patient.user = f.UserFactory()
    patient.save()
    client.force_login(patient.user)
    response = client.get(reverse("checkin-start"))
    assert response.status_code == 200
    assert ('id="module-pgic"' in response.content.decode()) == pgic  # PGIC at week 4 (PRO-2), not at week 3
    assert response.context["form"].module_keys == ((instruments.PGIC,) if pgic else ())


@pytest.mark.parametrize("days_on_maintenance", [EFFICACY_REVIEW_DAYS - 1, EFFICACY_REVIEW_DAYS])
def test_the_response_panel_dates_the_efficacy_review_on_the_patients_today_EFF1(
    login, prescriber, clinic, instant, zone, today, days_on_maintenance
):
    patient = f.PatientFactory(clinic=clinic, time_zone=zone, status="active")
    maintenance = today - dt.timedelta(days=days_on_maintenance)
    plan = started_plan(patient, maintenance)
    html = change_page(login(prescriber), plan).content.decode()
    due_on = maintenance + dt.timedelta(days=EFFICACY_REVIEW_DAYS)
    if days_on_maintenance >= EFFICACY_REVIEW_DAYS:
        assert f"efficacy review due since {due_on.isoformat()} (EFF-1)" in html and due_on == today
    else:
        assert f"efficacy review due on {due_on.isoformat()} (EFF-1)" in html and due_on == today + dt.timedelta(1)
