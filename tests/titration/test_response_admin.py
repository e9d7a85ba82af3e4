"""Response to LDN on the titration plan admin: the read-only panel on the change page (BASE-1, RESP-1..RESP-7
with EFF-1/EFF-2 wired from titration.rules) and the "response" column of the plan list, read in bulk."""

import datetime as dt
import re
import zoneinfo
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from patients.today import zone_today
from symptoms import outcomes
from titration import content
from titration.models import TitrationPlan

from .. import factories as f

pytestmark = pytest.mark.django_db

D = Decimal
MINUS = "\u2212"
CHANGELIST_MAX_QUERIES = 17  # the page's own 12, plus 5 for the column: plans, steps, check-ins, scores, conditions


def ago(days: int) -> dt.date:
    """``days`` before today for the test patients: their own date (factory zone), not the server's UTC one."""
    return zone_today(f.ZONE) - dt.timedelta(days=days)


def at(when: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(when, dt.time(hour), tzinfo=dt.UTC)


def started_plan(patient, maintenance: dt.date, *, first_dose: dt.date | None = None):
    """First dose 14 days before ``maintenance``, 4.5 mg (the target) from ``maintenance``."""
    first_dose = first_dose or maintenance - dt.timedelta(days=14)
    plan = f.PlanFactory(patient=patient, target_dose_mg=D("4.5"), start_date=first_dose)
    f.StepFactory(
        plan=plan, sequence=1, dose_mg=D("1.5"), planned_start=first_dose, actual_start=first_dose, status="done"
    )
    f.StepFactory(
        plan=plan, sequence=2, dose_mg=D("4.5"), planned_start=maintenance, actual_start=maintenance, status="active"
    )
    return plan


def checkins(patient, first_dose: dt.date, baseline: list[int], last_two: list[int], *, fatigue=(8, 5)):
    """Daily pre-start check-ins in the 14 days before ``first_dose``, then the last two weekly ones (a week
    apart, the later one today)."""
    for offset, pain in zip(range(len(baseline), 0, -1), baseline, strict=True):
        f.CheckInFactory(
            patient=patient,
            recorded_at=at(first_dose - dt.timedelta(days=offset * 3)),
            pain=pain,
            fatigue=fatigue[0],
            sleep_quality=3,
            mood=5,
        )
    for weeks_ago, pain in zip((1, 0), last_two, strict=True):
        f.CheckInFactory(
            patient=patient, recorded_at=at(ago(7 * weeks_ago)), pain=pain, fatigue=fatigue[1], sleep_quality=3, mood=5
        )


def text_of(html: str) -> str:
    """The page as read: tags dropped, white space collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split()).replace(" )", ")").replace("( ", "(")


def change_page(client, plan):
    return client.get(reverse("admin:titration_titrationplan_change", args=[plan.pk]))


def changelist(client):
    return client.get(reverse("admin:titration_titrationplan_changelist"))


def fibromyalgia_responder(patient, maintenance_days_ago: int):
    f.PatientConditionFactory(patient=patient, condition="fibromyalgia")
    plan = started_plan(patient, ago(maintenance_days_ago))
    checkins(patient, plan.start_date, [7, 7, 8, 6], [4, 5])  # baseline 7, current 4.5
    return plan


# --- the panel --------------------------------------------------------------------------------------------


def test_panel_shows_baseline_current_change_and_grade_RESP1_RESP2_RESP3(login, prescriber, patient):
    plan = fibromyalgia_responder(patient, maintenance_days_ago=90)
    response = change_page(login(prescriber), plan)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Response to LDN" in html
    assert "7.0 (4 entries)" in text_of(html)  # BASE-1: (7 + 7 + 8 + 6) / 4
    assert "<td>4.5</td>" in html  # RESP-1: mean of the last two, 4 and 5
    assert f"{MINUS}35.7% ({MINUS}2.5 points)" in html  # RESP-3
    assert "<td>moderate</td>" in html  # RESP-2
    assert "responder</strong>" not in html
    assert "Responder status: responder (evaluated" in text_of(html)
    assert "composite responder: pain and fatigue improved &gt;= 30% (RESP-4)" in html


def test_panel_warns_of_a_weak_baseline_BASE1(login, prescriber, patient):
    plan = started_plan(patient, ago(30))
    checkins(patient, plan.start_date, [6], [4, 4])
    html = change_page(login(prescriber), plan).content.decode()
    assert "Pain: weak baseline, a single value before the first dose (BASE-1)" in html
    assert "6.0 (1 entry) weak" in text_of(html)


def test_panel_says_plainly_when_there_is_no_baseline_BASE1(login, prescriber, patient):
    plan = started_plan(patient, ago(30))
    checkins(patient, plan.start_date, [], [4, 4])
    html = change_page(login(prescriber), plan).content.decode()
    first_dose = plan.start_date.isoformat()
    assert f"no baseline: no check-in in the 14 days before the first dose ({first_dose}), or earlier" in html


def test_panel_sets_aside_partial_hbi_from_the_patient_form_PRO2_RESP5(login, prescriber, patient):
    f.PatientConditionFactory(patient=patient, condition="crohns")
    plan = started_plan(patient, ago(30))
    today = f.CheckInFactory(patient=patient, recorded_at=at(ago(0)))
    f.InstrumentScoreFactory(patient=patient, checkin=today, instrument="HBI", total=D(3), partial=True, answers={})
    html = change_page(login(prescriber), plan).content.decode()
    assert "HBI from the patient form is partial (no abdominal mass): not compared with HBI thresholds (PRO-2)" in html


def test_EFF2_message_for_a_non_responder_after_12_weeks_on_maintenance_EFF2(login, prescriber, patient):
    plan = started_plan(patient, ago(90))
    checkins(patient, plan.start_date, [7, 7], [6, 6], fatigue=(8, 8))  # 14.2% better: minimal, not a responder
    client = login(prescriber)
    html = change_page(client, plan).content.decode()
    assert (
        "not a responder after 12 weeks on the maintenance dose: consider discontinuation or an alternative dose "
        "(EFF-2)" in html
    )
    assert f"efficacy review due since {ago(6).isoformat()} (EFF-1)" in html  # 84 days after maintenance began
    assert f"minimal ({MINUS}14.2%), EFF-2: review" in changelist(client).content.decode()


def test_unknown_responder_status_at_12_weeks_is_flagged_for_review_EFF2(login, prescriber, patient):
    plan = started_plan(patient, ago(90))  # no check-ins at all
    html = change_page(login(prescriber), plan).content.decode()
    assert "responder status unknown after 12 weeks on the maintenance dose: review (EFF-2)" in html


def test_a_responder_after_12_weeks_is_not_flagged_EFF2(login, prescriber, patient):
    plan = fibromyalgia_responder(patient, maintenance_days_ago=90)
    client = login(prescriber)
    html = change_page(client, plan).content.decode()
    assert "a responder after 12 weeks on the maintenance dose (EFF-2)" in html
    assert "consider discontinuation" not in html
    assert "EFF-2: review" not in changelist(client).content.decode()


def test_before_12_weeks_the_review_date_is_shown_and_nothing_is_flagged_EFF1(login, prescriber, patient):
    plan = started_plan(patient, ago(30))
    checkins(patient, plan.start_date, [7, 7], [7, 7])  # no change, but too early to say
    html = change_page(login(prescriber), plan).content.decode()
    assert f"efficacy review due on {ago(30 - 84).isoformat()} (EFF-1)" in html
    assert "consider discontinuation" not in html
    assert "(provisional: read at week 12 on the maintenance dose" in html


def test_nurse_with_read_only_access_sees_the_panel_RESP1(login, nurse, patient):
    plan = fibromyalgia_responder(patient, maintenance_days_ago=30)
    response = change_page(login(nurse), plan)
    assert response.status_code == 200
    assert "Response to LDN" in response.content.decode()


def test_staff_of_another_clinic_never_see_the_response_RESP1(login, other_prescriber, patient):
    plan = fibromyalgia_responder(patient, maintenance_days_ago=30)
    client = login(other_prescriber)
    assert change_page(client, plan).status_code in (302, 404)
    assert "35.7%" not in changelist(client).content.decode()


def test_there_is_no_add_page_and_the_read_only_change_page_saves_nothing(login, prescriber, patient, admin_change):
    # Plans are read-only in the admin (issue 10): made and changed from the clinic pages, through the services.
    add = login(prescriber).get(reverse("admin:titration_titrationplan_add"))
    assert add.status_code == 403 and "Response to LDN" not in add.content.decode()
    plan = fibromyalgia_responder(patient, maintenance_days_ago=30)
    response = admin_change(prescriber, plan, notes="reviewed with the patient")  # the panel shows; a POST is refused
    assert response.status_code == 403
    plan.refresh_from_db()
    assert plan.notes == ""


# --- the list column ------------------------------------------------------------------------------------


def test_changelist_response_column_provisional_before_week_12_RESP1_RESP2(login, prescriber, patient, sibling_patient):
    fibromyalgia_responder(patient, maintenance_days_ago=30)
    started_plan(sibling_patient, ago(30))  # no check-ins: nothing to say
    html = changelist(login(prescriber)).content.decode()
    assert f"moderate ({MINUS}35.7%) provisional" in html
    assert '<td class="field-ldn_response">—</td>' in html


def _plans(clinic, other_clinic, rows: int) -> None:
    for n in range(rows):
        for owner in (clinic, other_clinic):
            patient = f.PatientFactory(clinic=owner)
            f.PatientConditionFactory(
                patient=patient, condition=("fibromyalgia", "crohns", "multiple_sclerosis")[n % 3]
            )
            plan = started_plan(patient, ago(30 + n))
            checkins(patient, plan.start_date, [7, 6], [4, 5])
            latest = patient.checkins.order_by("-recorded_at").first()  # PGIC answered in today's check-in
            f.InstrumentScoreFactory(
                patient=patient, checkin=latest, instrument="PGIC", total=D(2), answers={"pgic": 2}
            )


@pytest.mark.parametrize("rows", [5, 50])
def test_changelist_query_count_does_not_grow_with_plans_RESP1(
    rows, login, prescriber, clinic, other_clinic, django_assert_max_num_queries
):
    _plans(clinic, other_clinic, rows)
    client = login(prescriber)
    with django_assert_max_num_queries(CHANGELIST_MAX_QUERIES):
        response = changelist(client)
    plans = response.context["cl"].result_list
    assert len(plans) == rows
    assert all(plan.patient.clinic_id == clinic.pk for plan in plans)
    assert response.content.decode().count(f"moderate ({MINUS}30.7%) provisional") == rows  # 6.5 -> 4.5


# --- treatment dates for a page of patients, in two queries ------------------------------------------------------


def _step(plan, seq, mg, start, status="done"):
    return f.StepFactory(plan=plan, sequence=seq, dose_mg=D(mg), planned_start=start, actual_start=start, status=status)


def test_treatment_dates_for_a_page_of_patients_RESP1_EFF1(clinic, django_assert_max_num_queries):
    day = dt.date(2026, 3, 1)
    people = [f.PatientFactory(clinic=clinic) for _ in range(6)]
    a, b, c, d, e, g = people
    plan = f.PlanFactory(patient=a)  # up to target, then maintenance
    _step(plan, 1, "1.5", day)
    _step(plan, 2, "4.5", day + dt.timedelta(days=7), status="active")
    plan = f.PlanFactory(patient=b)  # a step back below target restarts the maintenance clock
    _step(plan, 1, "4.5", day, status="stepped_back")
    _step(plan, 2, "3.0", day + dt.timedelta(days=10))
    _step(plan, 3, "4.5", day + dt.timedelta(days=24), status="active")
    _step(f.PlanFactory(patient=c), 1, "1.5", day, status="active")  # below target
    f.StepFactory(plan=f.PlanFactory(patient=d), sequence=1, planned_start=day)  # never started
    old = f.PlanFactory(patient=e, status="completed", target_dose_mg=D("3.0"))  # two plans
    _step(old, 1, "3.0", day - dt.timedelta(days=60))
    _step(f.PlanFactory(patient=e), 1, "4.5", day, status="active")
    draft = f.PlanFactory(patient=g, status="draft")  # a draft plan's steps do not count
    _step(draft, 1, "4.5", day)
    archived = _step(f.PlanFactory(patient=g, status="completed"), 1, "1.5", day - dt.timedelta(days=5))
    archived.delete()
    with django_assert_max_num_queries(2):
        bulk = content.treatment_dates_for(p.pk for p in people)
    none = {"first_dose": None, "maintenance_started": None}
    assert bulk == {
        a.pk: {"first_dose": day, "maintenance_started": day + dt.timedelta(days=7)},
        b.pk: {"first_dose": day, "maintenance_started": day + dt.timedelta(days=24)},
        c.pk: {"first_dose": day, "maintenance_started": None},
        d.pk: none,
        e.pk: {"first_dose": day - dt.timedelta(days=60), "maintenance_started": day - dt.timedelta(days=60)},
        g.pk: none,
    }
    assert content.treatment_dates(d) is None and content.treatment_dates(b) == bulk[b.pk]
    assert TitrationPlan.objects.filter(patient=e).count() == 2


def _zone_not_on_utcs_date() -> tuple[str, dt.date]:
    """A real time zone whose date differs from UTC's right now (UTC+14 after 10:00 UTC, UTC-11 before)."""
    now = timezone.now()
    zone = "Pacific/Kiritimati" if now.hour >= 10 else "Pacific/Pago_Pago"
    local = now.astimezone(zoneinfo.ZoneInfo(zone)).date()
    assert local != now.date()
    return zone, local


def test_the_panel_and_column_read_today_in_the_patients_own_time_zone_EFF1(login, prescriber, patient, monkeypatch):
    zone, local_today = _zone_not_on_utcs_date()
    type(patient).objects.filter(pk=patient.pk).update(time_zone=zone)
    plan = started_plan(patient, ago(30))
    seen = []
    real = outcomes.patient_outcomes

    def spy(patients, *, today, dates=None):
        seen.append(today)
        return real(patients, today=today, dates=dates)

    monkeypatch.setattr(outcomes, "patient_outcomes", spy)
    client = login(prescriber)
    assert change_page(client, plan).status_code == 200
    assert changelist(client).status_code == 200
    assert seen and set(seen) == {local_today}
