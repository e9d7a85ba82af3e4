"""The clinic report (/reports/summary/): exact counts on a hand-built cohort, section by section; another
clinic's rows and archived rows never counted; the period's edges, in each patient's time zone.

Access, bad dates, the small-denominator rule, the query bound and the demo: tests/reports/test_summary_page.py.
"""

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from patients.models import Patient
from reports import summary
from tests import factories as f

pytestmark = pytest.mark.django_db

D = Decimal
MARCH = {"from": "2026-03-01", "to": "2026-03-31"}
OUTSIDE = [dt.date(2026, 2, 28), dt.date(2026, 4, 1)]  # one day either side of MARCH
EDGES = [dt.date(2026, 3, 1), dt.date(2026, 3, 31)]


def today() -> dt.date:
    """The report's today: the clinic's (Europe/London)."""
    return timezone.localdate(timezone=zoneinfo.ZoneInfo("Europe/London"))


def ago(days: int) -> dt.date:
    return today() - dt.timedelta(days=days)


def noon(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def page(client, **params):
    response = client.get(reverse("reports:summary"), params)
    assert response.status_code == 200, response.status_code
    return response


def report_of(client, clinic, **params) -> summary.ClinicReport:
    (found,) = [r for r in page(client, **params).context["reports"] if r.clinic.pk == clinic.pk]
    return found


def tables(client, **params) -> list:
    """Every table of every clinic section, as the page shows them."""
    sections = page(client, **params).context["sections"]
    return [(s["clinic"].slug, s["cohort"], s["outcomes"], s["safety"]) for s in sections]


# --- Builders: each takes the clinic, so the same rows can be made in another clinic -------------------


def plan_with_steps(patient, *steps, status="active", target="4.5"):
    """steps: (dose, actual_start or None, status)."""
    first = next((start for _, start, _ in steps if start), dt.date(2026, 1, 10))
    plan = f.PlanFactory(patient=patient, status=status, target_dose_mg=D(target), start_date=first)
    for seq, (dose, start, step_status) in enumerate(steps, start=1):
        f.StepFactory(
            plan=plan,
            sequence=seq,
            dose_mg=D(dose),
            planned_start=start or first,
            actual_start=start,
            status=step_status,
        )
    return plan


def discontinue(patient, reason: str, when: dt.datetime) -> None:
    """Discontinue through a save (the history keeps the change) and date the change ``when``."""
    history = Patient.history.model.objects.filter(id=patient.pk)
    history.update(history_date=when - dt.timedelta(days=60))  # the earlier records come before it
    patient.status, patient.discontinued_reason = "discontinued", reason
    patient.save()
    history.filter(history_id=history.order_by("-history_id").first().history_id).update(history_date=when)


def gate_event(patient, outcome: str, when: dt.datetime) -> None:
    reason = "Prescriber's judgement: last dose 3 weeks ago" if outcome == "overridden" else ""
    event = f.SafetyGateEventFactory(patient=patient, outcome=outcome, reason=reason)
    type(event).objects.filter(pk=event.pk).update(created_at=when)


def severe(patient, effect: str, when: dt.datetime, severity: int = 3):
    return f.SideEffectFactory(
        checkin=f.CheckInFactory(patient=patient, recorded_at=when), effect=effect, severity=severity
    )


def failed(patient, kind: str, day: dt.date, status: str = "failed", **extra):
    return f.ReminderFactory(
        patient=patient, kind=kind, local_date=day, status=status, last_error="permanent: bad address", **extra
    )


def cohort(clinic) -> dict:
    """Seven live patients at every stage, dated rows inside March 2026 (the period of most tests)."""
    p = {}
    p["screening"] = f.PatientFactory(clinic=clinic, status="screening")
    f.PatientConditionFactory(patient=p["screening"], condition="fibromyalgia")
    p["titrating"] = f.PatientFactory(clinic=clinic, status="active")
    f.PatientConditionFactory(patient=p["titrating"], condition="fibromyalgia")
    f.PatientConditionFactory(patient=p["titrating"], condition="chronic_pain")
    plan_with_steps(p["titrating"], ("1.5", EDGES[0], "done"), ("3.0", dt.date(2026, 3, 8), "active"))
    p["held"] = f.PatientFactory(clinic=clinic, status="active")
    f.PatientConditionFactory(patient=p["held"], condition="crohns")
    plan_with_steps(p["held"], ("1.5", EDGES[1], "held"))
    p["target"] = f.PatientFactory(clinic=clinic, status="active")
    f.PatientConditionFactory(patient=p["target"], condition="multiple_sclerosis")
    plan_with_steps(p["target"], ("1.5", OUTSIDE[0], "done"), ("4.5", dt.date(2026, 3, 10), "active"))
    p["not_started"] = f.PatientFactory(clinic=clinic, status="active")
    plan_with_steps(p["not_started"], ("1.5", None, "planned"))
    p["paused"] = f.PatientFactory(clinic=clinic, status="paused")
    plan_with_steps(p["paused"], ("1.5", OUTSIDE[1], "active"), status="paused")
    p["stopped"] = f.PatientFactory(clinic=clinic, status="active")
    plan_with_steps(p["stopped"], ("1.5", dt.date(2026, 3, 15), "done"), status="cancelled")
    discontinue(p["stopped"], "No benefit at 12 weeks (EFF-2)", noon(dt.date(2026, 3, 20)))
    # Safety: flags on the screening patient (no plan), gate events, tasks, side effects, reminders.
    f.ConflictFlagFactory(patient=p["screening"])  # open conflict (Norco)
    f.ConflictFlagFactory(
        patient=p["screening"], medication=f.MedicationFactory(patient=p["screening"]), kind="caution"
    )
    f.ConflictFlagFactory(
        patient=p["paused"],
        medication=f.MedicationFactory(patient=p["paused"]),
        kind="caution",
        status="resolved",
        resolved_reason="not an opioid",
    )
    gate_event(p["screening"], "blocked", noon(EDGES[0]))
    gate_event(p["screening"], "blocked", noon(dt.date(2026, 3, 12)))
    gate_event(p["screening"], "overridden", noon(EDGES[1]))
    for kind in ("lab_alert", "lab_review", "missed_checkins", "side_effect", "side_effect"):
        f.ClinicianTaskFactory(patient=p["held"], kind=kind, title=kind)
    f.ClinicianTaskFactory(patient=p["held"], kind="side_effect", title="done", status="done")
    severe(p["held"], "vomiting", noon(dt.date(2026, 3, 5)))
    severe(p["held"], "vomiting", noon(dt.date(2026, 3, 12)))
    severe(p["titrating"], "headache", noon(dt.date(2026, 3, 9)))
    severe(p["titrating"], "headache", noon(dt.date(2026, 3, 16)), severity=2)  # moderate: not counted
    failed(p["titrating"], "checkin_due", dt.date(2026, 3, 3))
    failed(p["held"], "checkin_due", dt.date(2026, 3, 4))
    failed(p["held"], "step_up", dt.date(2026, 3, 5))
    failed(p["held"], "step_up", dt.date(2026, 3, 6), status="sent", sent_at=noon(dt.date(2026, 3, 6)))
    failed(p["held"], "step_up", OUTSIDE[1])
    return p


def test_cohort_counts_status_condition_stage_starts_and_stops(login, clinic_admin, clinic):
    cohort(clinic)
    report = report_of(login(clinic_admin), clinic, **MARCH)
    assert dict(report.statuses) == {"screening": 1, "active": 4, "paused": 1, "discontinued": 1}
    assert report.live == 7
    assert dict(report.conditions) == {"fibromyalgia": 2, "chronic_pain": 1, "crohns": 1, "multiple_sclerosis": 1}
    assert dict(report.stages) == {"titrating": 2, "held": 1, "maintenance": 1, "no_plan": 3}
    assert report.started == 3  # titrating (1 March), held (31 March), stopped (15 March, plan cancelled since)
    assert dict(report.discontinued) == {"No benefit at 12 weeks (EFF-2)": 1}


def test_cohort_tables_show_every_choice_with_its_count(login, clinic_admin, clinic):
    cohort(clinic)
    sections = page(login(clinic_admin), **MARCH).context["sections"]
    status, conditions, stages, starts, reasons = sections[0]["cohort"]
    assert status.rows == (("Screening", 1), ("Active", 4), ("Paused", 1), ("Discontinued", 1))
    assert status.total == ("All live patients", 7)
    assert ("Long COVID", 0) in conditions.rows and ("Crohn's disease", 1) in conditions.rows
    assert [n for _, n in stages.rows] == [2, 1, 1, 3] and stages.total[1] == 7
    assert starts.rows == (("Started LDN: first dose taken in the period", 3), ("Discontinued in the period", 1))
    assert reasons.rows == (("No benefit at 12 weeks (EFF-2)", 1),)


def test_discontinuation_reasons_are_counted_and_only_changes_in_the_period(login, clinic_admin, clinic):
    for reason, day in [
        ("Moved abroad.", dt.date(2026, 3, 2)),
        ("  Moved   abroad. ", dt.date(2026, 3, 30)),  # the same reason, typed with other spaces
        ("Side effects (SE-2)", dt.date(2026, 3, 10)),
        ("Before the period", OUTSIDE[0]),
    ]:
        discontinue(f.PatientFactory(clinic=clinic, status="active"), reason, noon(day))
    report = report_of(login(clinic_admin), clinic, **MARCH)
    assert dict(report.discontinued) == {"Moved abroad.": 2, "Side effects (SE-2)": 1}
    reasons = page(login(clinic_admin), **MARCH).context["sections"][0]["cohort"][4]
    assert reasons.rows == (("Moved abroad.", 2), ("Side effects (SE-2)", 1))


def test_a_later_edit_of_the_reason_is_not_a_second_discontinuation(login, clinic_admin, clinic):
    patient = f.PatientFactory(clinic=clinic, status="active")
    discontinue(patient, "Moved", noon(dt.date(2026, 3, 2)))
    patient.discontinued_reason = "Moved abroad; care transferred"
    patient.save()
    report = report_of(login(clinic_admin), clinic, **{"from": "2026-03-01"})
    assert dict(report.discontinued) == {"Moved abroad; care transferred": 1}


# --- Outcomes ----------------------------------------------------------------------------------------------


def on_maintenance(patient, days: int):
    """First dose 14 days before 4.5 mg (the target), reached ``days`` ago."""
    maintenance = ago(days)
    first = maintenance - dt.timedelta(days=14)
    plan_with_steps(patient, ("1.5", first, "done"), ("4.5", maintenance, "active"))
    return first


def pain_course(patient, first: dt.date | None, baseline: int | None, last_two, fatigue=(8, 8)):
    if baseline is not None:
        for before in (6, 3):
            f.CheckInFactory(
                patient=patient, recorded_at=noon(first - dt.timedelta(days=before)), pain=baseline, fatigue=fatigue[0]
            )
    for days, pain in zip((8, 1), last_two, strict=True):
        f.CheckInFactory(patient=patient, recorded_at=noon(ago(days)), pain=pain, fatigue=fatigue[1])


def outcome_cohort(clinic) -> dict:
    """Five patients at week 12 on the maintenance dose and one before it."""
    p = {
        name: f.PatientFactory(clinic=clinic, status="active")
        for name in ("subst", "moder", "minim", "none", "undef", "early")
    }
    f.PatientConditionFactory(patient=p["subst"], condition="fibromyalgia")
    pain_course(p["subst"], on_maintenance(p["subst"], 100), 8, (3, 3), fatigue=(8, 5))  # -62.5%, fatigue -37.5%
    pain_course(p["moder"], on_maintenance(p["moder"], 90), 8, (5, 5))  # -37.5%
    f.PatientConditionFactory(patient=p["minim"], condition="fibromyalgia")
    pain_course(p["minim"], on_maintenance(p["minim"], 120), 8, (7, 6))  # -18.75%: minimal, RESP-4 not met
    first = on_maintenance(p["none"], 85)
    pain_course(p["none"], first, 8, (8, 8))
    score = f.CheckInFactory(patient=p["none"], recorded_at=noon(ago(10)), pain=None)  # not one of the last two
    f.InstrumentScoreFactory(patient=p["none"], checkin=score, instrument="PGIC", total=D(2), answers={})  # RESP-7
    pain_course(p["undef"], on_maintenance(p["undef"], 84), None, (6, 6))  # no baseline: undefined
    pain_course(p["early"], on_maintenance(p["early"], 30), 8, (2, 2))  # before week 12: provisional
    return p


def test_week_12_pain_response_and_grades_RESP1_RESP2(login, clinic_admin, clinic):
    outcome_cohort(clinic)
    report = report_of(login(clinic_admin), clinic)
    assert report.evaluated == 5
    assert report.evaluable == 4 and report.pain_undefined == 1
    assert report.pain_responders == 2
    assert dict(report.grades) == {"substantial": 1, "moderate": 1, "minimal": 1, "none": 1}


def test_condition_responders_where_they_apply_RESP4_RESP7(login, clinic_admin, clinic):
    outcome_cohort(clinic)
    report = report_of(login(clinic_admin), clinic)
    assert dict(report.condition_results["RESP-4"]) == {"applies": 2, "defined": 2, "yes": 1}
    assert dict(report.condition_results["RESP-7"]) == {"applies": 1, "defined": 1, "yes": 1}
    assert not report.condition_results["RESP-5"]["applies"] and not report.condition_results["RESP-6"]["applies"]
    table = page(login(clinic_admin)).context["sections"][0]["outcomes"][2]
    assert [row[0].split(":")[0] for row in table.rows] == ["Fibromyalgia composite", "Global impression"]
    assert table.rows[0][1:] == (2, 2, 1, "n < 5")


def test_eff1_review_due_and_eff2_flag_EFF1_EFF2(login, clinic_admin, clinic):
    outcome_cohort(clinic)
    report = report_of(login(clinic_admin), clinic)
    assert report.review_due == 5  # the five at 12 weeks on the maintenance dose; not the early one
    assert report.eff2 == 2  # minimal (not a responder) and undefined (unknown); PGIC 2 saves "none"
    assert report.any_responder == 3


def test_outcomes_are_read_on_the_last_day_of_the_period_RESP1(login, clinic_admin, clinic):
    outcome_cohort(clinic)
    report = report_of(login(clinic_admin), clinic, to=ago(20).isoformat())
    assert report.evaluated == 1  # only "minimal" (120 days on maintenance today) had 12 weeks 20 days ago
    assert report.review_due == 1
    assert report.evaluable == 0  # its last two check-ins came after that day: no current value then


# --- Safety ------------------------------------------------------------------------------------------------


def test_safety_counts_flags_gate_events_tasks_side_effects_reminders_LAB2_REM3_SE4(login, clinic_admin, clinic):
    cohort(clinic)
    report = report_of(login(clinic_admin), clinic, **MARCH)
    assert dict(report.flags) == {"conflict": 1, "caution": 1}
    assert dict(report.gates) == {"blocked": 2, "overridden": 1}
    assert dict(report.tasks) == {"lab_alert": 1, "lab_review": 1, "missed_checkins": 1, "side_effect": 2}
    assert dict(report.severe) == {"vomiting": 2, "headache": 1} and len(report.severe_patients) == 2
    assert dict(report.failed) == {"checkin_due": 2, "step_up": 1}


def test_safety_tables_label_the_rules_LAB2_REM3_SE4(login, clinic_admin, clinic):
    cohort(clinic)
    flags, gates, tasks, side_effects, reminders = page(login(clinic_admin), **MARCH).context["sections"][0]["safety"]
    assert ("Opioid conflict", 1) in flags.rows and flags.total == ("All open flags", 2)
    assert gates.rows == (("Blocked", 2), ("Overridden by a prescriber", 1))
    assert ("Liver tests above 3× ULN (LAB-2)", 1) in tasks.rows
    assert ("Liver review: step-ups blocked (LAB-2)", 1) in tasks.rows
    assert ("Missed check-ins (REM-3)", 1) in tasks.rows
    assert ("Severe side effect review (SE-4)", 2) in tasks.rows
    assert side_effects.rows == (("Headache", 1), ("Vomiting", 2)) and side_effects.total[1] == 3
    assert side_effects.note == "Patients with a severe side effect: 2."
    assert reminders.total == ("All failed reminders", 3)


# --- Privacy: another clinic, archived rows ---------------------------------------------------------------


def test_another_clinics_rows_are_never_counted(login, clinic_admin, clinic, other_clinic):
    cohort(clinic)
    outcome_cohort(clinic)
    client = login(clinic_admin)
    before = tables(client, **MARCH), tables(client)
    cohort(other_clinic)
    outcome_cohort(other_clinic)
    assert (tables(client, **MARCH), tables(client)) == before
    assert [slug for slug, *_ in before[0]] == ["clinic-a"]


def test_archived_patients_and_rows_are_never_counted(login, clinic_admin, clinic):
    p = cohort(clinic)
    outcome_cohort(clinic)
    client = login(clinic_admin)
    before = tables(client, **MARCH), tables(client)
    gone = cohort(clinic)  # every kind of row again, then the patients archived
    gone.update(outcome_cohort(clinic))
    for patient in gone.values():
        patient.delete()
    # Archived rows of live patients: a condition, a check-in with a severe side effect, a plan, a step.
    f.PatientConditionFactory(patient=p["screening"], condition="long_covid").delete()
    severe(p["screening"], "nausea", noon(dt.date(2026, 3, 10))).checkin.delete()
    plan_with_steps(p["screening"], ("1.5", dt.date(2026, 3, 10), "active")).delete()
    archived_step = plan_with_steps(p["not_started"], ("1.5", None, "done"), status="completed").steps.get()
    archived_step.actual_start = dt.date(2026, 3, 11)
    archived_step.save()
    archived_step.delete()
    assert (tables(client, **MARCH), tables(client)) == before


# --- The period's edges ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("day", "counted"), [(EDGES[0], 1), (EDGES[1], 1), (OUTSIDE[0], 0), (OUTSIDE[1], 0)])
def test_period_includes_its_first_and_last_day_only(day, counted, login, clinic_admin, clinic):
    patient = f.PatientFactory(clinic=clinic, status="active")
    plan_with_steps(patient, ("1.5", day, "active"))
    discontinue(f.PatientFactory(clinic=clinic, status="active"), "Moved", noon(day))
    gate_event(patient, "blocked", noon(day))
    severe(patient, "vomiting", noon(day))
    failed(patient, "nightly_dose", day)
    report = report_of(login(clinic_admin), clinic, **MARCH)
    assert report.started == counted
    assert sum(report.discontinued.values()) == counted
    assert sum(report.gates.values()) == counted
    assert sum(report.severe.values()) == counted
    assert sum(report.failed.values()) == counted


def test_period_days_are_the_patients_local_days(login, clinic_admin, clinic):
    kiwi = f.PatientFactory(clinic=clinic, status="active", time_zone="Pacific/Auckland")
    late = dt.datetime(2026, 2, 28, 23, 30, tzinfo=dt.UTC)  # 1 March, 12:30, in Auckland
    gate_event(kiwi, "blocked", late)
    severe(kiwi, "vomiting", late)
    discontinue(f.PatientFactory(clinic=clinic, status="active", time_zone="Pacific/Auckland"), "Moved", late)
    london = f.PatientFactory(clinic=clinic, status="active")
    gate_event(london, "blocked", late)  # 28 February in London: outside
    report = report_of(login(clinic_admin), clinic, **MARCH)
    assert dict(report.gates) == {"blocked": 1}
    assert dict(report.severe) == {"vomiting": 1}
    assert sum(report.discontinued.values()) == 1


def test_default_period_is_the_last_90_days(login, clinic_admin, clinic):
    patient = f.PatientFactory(clinic=clinic, status="active")
    for days in (0, 89, 90):
        failed(patient, "checkin_due", ago(days))
    response = page(login(clinic_admin))
    assert (response.context["start"], response.context["end"]) == (ago(89), today())
    assert sum(response.context["reports"][0].failed.values()) == 2


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (None, None, (dt.date(2026, 1, 1), dt.date(2026, 3, 31))),
        (dt.date(2026, 3, 1), None, (dt.date(2026, 3, 1), dt.date(2026, 3, 31))),
        (None, dt.date(2026, 2, 1), (None, dt.date(2026, 2, 1))),
        (dt.date(2026, 5, 1), None, (dt.date(2026, 5, 1), dt.date(2026, 5, 1))),
    ],
)
def test_report_period_defaults(start, end, expected):
    assert summary.report_period(start, end, dt.date(2026, 3, 31)) == expected
