"""The worklist (issue 10, section 2): what a clinician must do today, in their clinics, one row per
thing to do, each leaving the list when it is done.

The clock is frozen at an ordinary London afternoon; each patient's own date is the one that counts.
"""

import datetime as dt
import re
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from clinic import worklist
from patients import services as patient_services
from patients import task_services
from patients.flag_models import AcknowledgeReason, ClinicianTask, ConflictFlag, FlagStatus, TaskKind
from patients.models import Role
from symptoms import services as symptom_services
from symptoms.models import SideEffectReview
from tests import factories as f

D = Decimal
NOW = dt.datetime(2026, 6, 10, 13, 0, tzinfo=dt.UTC)  # 14:00 in London (BST)
TODAY = dt.date(2026, 6, 10)
URL = "/clinic/"
# Session, user, memberships, roles, clinics, then a fixed number per kind (see clinic/worklist.py):
# measured 25 at 5 and at 50 rows of every kind (plans: three stored-outlook queries, three to read the rows shown).
WORKLIST_MAX_QUERIES = 25

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


def on_plan(clinic, prescriber, *, doses=("1.5", "2.0"), started=TODAY - dt.timedelta(days=7), strength="1.5", **rx):
    """An active patient on step 1 of a plan since ``started``, step 2 planned 7 days later."""
    patient = f.PatientFactory(clinic=clinic, status="active", **rx.pop("patient", {}))
    start_on = rx.pop("start_on", started)
    prescription = f.PrescriptionFactory(
        patient=patient,
        prescriber=prescriber,
        strength_value=D(strength),
        written_on=min(start_on, started) - days(3),
        start_on=start_on,
        **{"quantity": D("90"), "refills": 0, **rx},
    )
    plan = f.PlanFactory(patient=patient, start_date=started, prescription=prescription)
    for n, dose in enumerate(doses, 1):
        first = n == 1
        f.StepFactory(
            plan=plan,
            sequence=n,
            dose_mg=D(dose),
            planned_start=started + days(7 * (n - 1)),
            actual_start=started if first else None,
            status="active" if first else "planned",
        )
    return patient, plan


def everything(clinic, prescriber, name="Ashdown"):
    """One patient with a row of every kind: a current opioid while on LDN, a step due today that the
    dispensed 1.5 mg capsules cannot make (2.0 mg), a moderate headache at their last check-in 10 days
    ago, supply running out, a liver review, an efficacy review, a failed reminder and another task."""
    patient, plan = on_plan(
        clinic, prescriber, patient={"last_name": name}, quantity=D("10"), start_on=TODAY - days(20)
    )
    f.MedicationFactory(patient=patient, name="Norco 5/325", start_date=TODAY - days(30))  # OPI-W3 task
    checkin = f.CheckInFactory(patient=patient, recorded_at=NOW - days(10))
    f.SideEffectFactory(checkin=checkin, effect="headache", severity=2)
    for kind, title in [
        ("lab_review", "ALT 6.2x ULN: step-ups blocked pending review (LAB-2)"),
        ("efficacy_review", "Efficacy review: 12 weeks on the maintenance dose (EFF-1)"),
        ("other", "Call the patient about their pharmacy"),
    ]:
        f.ClinicianTaskFactory(patient=patient, kind=kind, title=title, detail=title, due_on=TODAY)
    f.ReminderFactory(
        patient=patient,
        status="failed",
        kind="checkin_due",
        local_date=TODAY - days(1),
        last_error="permanent: 550 mailbox unavailable",
    )
    return patient


def section(response, key) -> list[worklist.Item]:
    return next(s for s in response.context["worklist"].sections if s.key == key).items


def text(item: worklist.Item) -> str:
    return " | ".join([item.title, *item.reasons, item.when, item.badge])


def counts(response) -> dict[str, int]:
    return {key: n for key, _, n in response.context["worklist"].counts}


# --- Each kind of row ------------------------------------------------------------------------------


def test_every_kind_of_row_shows_with_its_text(login, prescriber, clinic):
    everything(clinic, prescriber)
    response = login(prescriber).get(URL)
    assert response.status_code == 200
    assert counts(response) == {
        "conflicts": 1,
        "steps": 1,
        "side_effects": 1,
        "missed_checkins": 1,
        "supply": 2,
        "labs": 1,
        "reminders": 1,
        "efficacy": 1,
        "tasks": 2,  # OPI-W3's opioid plan, and the other task
    }
    (conflict,) = section(response, "conflicts")
    assert "Opioid conflict: Norco 5/325" in text(conflict)
    assert "on LDN: hold LDN and make an opioid plan (OPI-W3)" in text(conflict)  # why there is no date
    assert conflict.badge == "High"
    (step,) = section(response, "steps")
    assert step.title == "Step 2: 1.5 → 2.0 mg" and step.badge == "Held"
    assert "Due 10 Jun 2026" in step.when
    assert any("open opioid conflict" in r for r in step.reasons)  # 1.3.2
    assert any("no active prescription covers 2.0 mg" in r for r in step.reasons)  # RX-2
    assert any("LAB-2" in r or "ALT" in r for r in step.reasons)  # the liver review blocks step-ups
    (side,) = section(response, "side_effects")
    assert "31 May 2026: Headache (moderate)" in text(side)
    assert [p.label for p in side.posts] == ["Mark reviewed"]
    (missed,) = section(response, "missed_checkins")
    assert missed.title == "No check-in since 31 May 2026" and "10 days without a check-in" in text(missed)
    supply = {i.badge: i for i in section(response, "supply")}
    rx3, runout = supply["RX-3"], supply["Supply"]
    assert rx3.title == "New prescription needed by 5 Jun 2026"  # step date minus the 5-day lead time
    assert "the next step 2.0 mg cannot be made from 1.5 mg capsules" in text(rx3)
    assert "Needed now (overdue)" in rx3.when
    assert runout.title == "Prescription runs out 12 Jun 2026"  # 15 mg: 7 x 1.5 mg, then 2.0 mg a day
    assert "2 days left (RX-3: under 7 days)" in text(runout)
    assert [i.title for i in section(response, "labs")] == ["ALT 6.2x ULN: step-ups blocked pending review (LAB-2)"]
    (failed,) = section(response, "reminders")
    assert failed.title == "1 email reminder failed" and "550 mailbox unavailable" in text(failed)
    assert [i.title for i in section(response, "efficacy")] == [
        "Efficacy review: 12 weeks on the maintenance dose (EFF-1)"
    ]
    assert sorted(i.title for i in section(response, "tasks")) == [
        "Call the patient about their pharmacy",
        "Opioid while on LDN: Norco 5/325",
    ]
    page = response.content.decode()
    assert "Ashdown" in page and "Needed now (overdue)" in page and "Mark reviewed" in page


def test_conflict_before_ldn_shows_its_earliest_safe_start_OPI_W1(login, prescriber, clinic):
    patient = f.PatientFactory(clinic=clinic, status="screening")
    f.MedicationFactory(patient=patient, name="Norco 5/325", last_dose_date=TODAY - days(2))
    f.MedicationFactory(patient=patient, name="Tylenol w/ Codeine #3")  # no last dose: no date, and why
    items = section(login(prescriber).get(URL), "conflicts")
    by_drug = {i.title: i for i in items}
    norco = by_drug["Opioid conflict: Norco 5/325"]
    assert norco.when == "Earliest safe LDN start 18 Jun 2026"  # last dose + 10 days
    assert "10-day washout after the last dose (OPI-W1)" in norco.reasons
    codeine = by_drug["Opioid conflict: Tylenol w/ Codeine #3"]
    assert codeine.when == "No earliest start date"
    assert any("last dose date unknown" in r for r in codeine.reasons)


def test_caution_flags_show_with_their_severity_after_conflicts(login, prescriber, clinic):
    patient = f.PatientFactory(clinic=clinic, status="screening")
    f.MedicationFactory(patient=patient, name="Imodium (loperamide) 2 mg")
    f.MedicationFactory(patient=patient, name="Norco 5/325", last_dose_date=TODAY - days(1))
    items = section(login(prescriber).get(URL), "conflicts")
    assert [i.badge for i in items] == ["High", "Medium"]
    assert items[1].title.startswith("Possible opioid: verify")


def test_step_due_this_week_is_allowed_when_the_rule_allows_it_1_3(login, prescriber, clinic):
    on_plan(clinic, prescriber, doses=("1.5", "3.0"), started=TODAY - days(4))  # due in 3 days
    on_plan(clinic, prescriber, doses=("1.5", "3.0"), started=TODAY)  # due in 7 days: next week
    (step,) = section(login(prescriber).get(URL), "steps")
    assert step.title == "Step 2: 1.5 → 3.0 mg"
    assert (step.badge, step.reasons, step.when) == ("Allowed", (), "Due 13 Jun 2026")


def test_step_held_past_its_evening_is_asked_again_weekly_REM_1(login, prescriber, clinic):
    patient, plan = on_plan(clinic, prescriber, doses=("1.5", "3.0"), started=TODAY - days(10))
    checkin = f.CheckInFactory(patient=patient, recorded_at=NOW - days(1))
    f.SideEffectFactory(checkin=checkin, effect="nausea", severity=1)
    (step,) = section(login(prescriber).get(URL), "steps")
    assert step.when == "Due 14 Jun 2026 (first due 7 Jun 2026)"
    assert step.badge == "Held"
    assert any("mild nausea" in r and "(SE-1)" in r for r in step.reasons)


def test_step_with_an_open_severe_side_effect_review_is_held_SE_4(login, prescriber, clinic):
    patient, plan = on_plan(clinic, prescriber, doses=("1.5", "3.0"))
    current = plan.steps.get(sequence=1)
    f.ClinicianTaskFactory(patient=patient, kind=TaskKind.SIDE_EFFECT, key=f"side-effect:{current.pk}", title="x")
    (step,) = section(login(prescriber).get(URL), "steps")
    assert step.badge == "Held" and "(SE-4)" in step.reasons[0]


def test_rx3_not_shown_when_another_active_prescription_makes_the_next_step(login, prescriber, clinic):
    patient, _ = on_plan(clinic, prescriber)
    f.PrescriptionFactory(
        patient=patient, prescriber=prescriber, strength_value=D("1.0"), written_on=TODAY, start_on=TODAY
    )
    assert [i.badge for i in section(login(prescriber).get(URL), "supply")] == []


def test_rx3_without_any_active_prescription(login, prescriber, clinic):
    patient, plan = on_plan(clinic, prescriber, doses=("1.5", "3.0"), started=TODAY - days(1))
    plan.prescription.status = "completed"
    plan.prescription.save()
    (item,) = section(login(prescriber).get(URL), "supply")
    assert item.title == "New prescription needed by 11 Jun 2026"  # step on 16 Jun, 5 days' lead time
    assert "no active LDN prescription" in item.reasons[0]


def test_supply_counts_refills_and_shows_from_a_week_before_the_reorder_day(login, prescriber, clinic):
    # 30 capsules of 1.5 mg and 2 refills from 20 May: 90 days of 1.5 mg, out on 18 Aug.
    on_plan(clinic, prescriber, doses=("1.5",), started=TODAY - days(21), quantity=D("30"), refills=2)
    assert section(login(prescriber).get(URL), "supply") == []
    # 10 capsules, no refill: out on 30 May, already ran out.
    on_plan(clinic, prescriber, doses=("1.5",), started=TODAY - days(21), quantity=D("10"), refills=0)
    (item,) = section(login(prescriber).get(URL), "supply")
    assert item.title == "Prescription ran out 30 May 2026"
    assert "ran out 11 days ago" in item.reasons[0]
    assert item.when == "New prescription by 25 May 2026 (overdue)"


def test_missed_checkin_counts_the_patients_own_days_REM_3(login, prescriber, clinic):
    seven, eight, never = (f.PatientFactory(clinic=clinic, status="active") for _ in range(3))
    f.CheckInFactory(patient=seven, recorded_at=NOW - days(7))
    f.CheckInFactory(patient=eight, recorded_at=NOW - days(8))
    _, plan = on_plan(clinic, prescriber, doses=("1.5",), started=TODAY - days(9))
    items = section(login(prescriber).get(URL), "missed_checkins")
    by_patient = {i.patient.pk: i for i in items}
    assert seven.pk not in by_patient and never.pk not in by_patient  # a record made today
    assert by_patient[eight.pk].when == "Last check-in 2 Jun 2026"
    assert by_patient[plan.patient_id].title == "No check-in yet"
    assert "9 days since the plan started" in by_patient[plan.patient_id].reasons


def test_failed_reminder_leaves_when_a_later_one_gets_through(login, prescriber, clinic, patient):
    failed = f.ReminderFactory(patient=patient, status="failed", local_date=TODAY - days(2), last_error="bounced")
    client = login(prescriber)
    assert len(section(client.get(URL), "reminders")) == 1
    with time_machine.travel(NOW + dt.timedelta(minutes=5), tick=False):
        f.ReminderFactory(patient=patient, status="sent", sent_at=dt.datetime.now(tz=dt.UTC), channel=failed.channel)
    assert section(client.get(URL), "reminders") == []


def test_closed_tasks_and_acknowledged_flags_leave_the_list(login, prescriber, clinic):
    patient = everything(clinic, prescriber)
    client = login(prescriber)
    for task in ClinicianTask.objects.filter(patient=patient):
        patient_services.task_close(actor=prescriber, task=task, note="reviewed with the patient")
    flag = ConflictFlag.objects.get(patient=patient, status=FlagStatus.OPEN)
    patient_services.flag_resolve(actor=prescriber, flag=flag, reason=AcknowledgeReason.ENTERED_IN_ERROR)
    found = counts(client.get(URL))
    assert found["labs"] == found["efficacy"] == found["tasks"] == found["conflicts"] == 0


def test_each_row_links_to_the_chart_and_its_actions_page_once_those_routes_exist(
    login, prescriber, clinic, monkeypatch
):
    """The chart and the action pages belong to other areas; until their routes exist a row shows no
    link to them, and once they do every row links there with the right id."""
    patient = everything(clinic, prescriber)

    def fake(name, *args):
        return f"/clinic/{name}/{args[0]}/"

    from clinic import worklist_rows

    monkeypatch.setattr(worklist_rows, "url", fake)
    monkeypatch.setattr(worklist, "url", fake)
    response = login(prescriber).get(URL)
    flag = ConflictFlag.objects.get(patient=patient)
    plan = patient.titration_plans.get()
    first_links = {
        key: [(link.label, link.url) for link in section(response, key)[0].links] for key in ("conflicts", "steps")
    }
    assert first_links["conflicts"] == [("Acknowledge or override", f"/clinic/flag/{flag.pk}/")]
    assert first_links["steps"] == [("Review plan", f"/clinic/plan/{plan.pk}/")]
    lab = section(response, "labs")[0]
    assert lab.links[0].label == "Review and close" and lab.links[0].url == f"/clinic/task/{lab.task.pk}/"
    assert {i.links[0].url for i in section(response, "supply")} == {f"/clinic/prescription-new/{patient.pk}/"}
    assert section(response, "reminders")[0].links[0].url == f"/clinic/reminder-preferences/{patient.pk}/"
    page = response.content.decode()
    assert f'<a href="/clinic/patient/{patient.pk}/">Ashdown, ' in page


# --- Side effects reviewed --------------------------------------------------------------------------


def test_marked_reviewed_side_effects_leave_and_a_newer_check_in_brings_a_row_back(login, nurse, clinic, patient):
    checkin = f.CheckInFactory(patient=patient, recorded_at=NOW - days(2))
    f.SideEffectFactory(checkin=checkin, effect="insomnia", severity=1)
    client = login(nurse)
    (item,) = section(client.get(URL), "side_effects")
    post = item.posts[0]
    response = client.post(post.url, {**dict(post.fields), "next": "/clinic/?kind=side_effects"})
    assert response.status_code == 302 and response["Location"] == "/clinic/?kind=side_effects"
    review = SideEffectReview.objects.get(patient=patient)
    assert (review.reviewed_by, review.up_to) == (nurse, checkin.recorded_at)
    assert review.history.first().history_user == nurse
    assert section(client.get(URL), "side_effects") == []
    newer = f.CheckInFactory(patient=patient, recorded_at=NOW - dt.timedelta(hours=1))
    f.SideEffectFactory(checkin=newer, effect="headache", severity=2)
    (item,) = section(client.get(URL), "side_effects")
    assert item.reasons == ("10 Jun 2026: Headache (moderate)",)  # only what came after the mark


def test_severe_side_effect_with_its_review_task_shows_as_the_task_SE_4(login, prescriber, clinic, patient):
    checkin = f.CheckInFactory(patient=patient, recorded_at=NOW - days(1))
    f.SideEffectFactory(checkin=checkin, effect="vomiting", severity=3)
    f.ClinicianTaskFactory(patient=patient, kind=TaskKind.SIDE_EFFECT, title="Severe side effect: review the LDN plan")
    (item,) = section(login(prescriber).get(URL), "side_effects")
    assert item.title == "Severe side effect: review the LDN plan" and item.task is not None


def test_mark_reviewed_is_for_clinicians_only(login, clinic_admin, nurse, patient):
    checkin = f.CheckInFactory(patient=patient, recorded_at=NOW - days(1))
    f.SideEffectFactory(checkin=checkin, severity=1)
    client = login(clinic_admin)
    (item,) = section(client.get(URL), "side_effects")
    assert item.posts == ()  # no button the role cannot press
    path = reverse("clinic:side-effects-reviewed", args=[patient.pk])
    response = client.post(path, {"up_to": checkin.recorded_at.isoformat()})
    assert response.status_code == 403 and b"prescriber or nurse" in response.content
    assert not SideEffectReview.objects.exists()


def test_mark_reviewed_with_a_bad_time_says_so_and_stores_nothing(login, nurse, patient):
    path = reverse("clinic:side-effects-reviewed", args=[patient.pk])
    client = login(nurse)
    for bad in ["", "yesterday", "2026-13-45T10:00:00+00:00", (NOW + days(1)).isoformat()]:
        response = client.post(path, {"up_to": bad}, follow=True)
        assert response.status_code == 200
        assert not SideEffectReview.objects.exists()
        assert any(m.level_tag == "error" for m in response.context["messages"])


def test_side_effects_mark_reviewed_service_never_moves_back(nurse, patient):
    first = symptom_services.side_effects_mark_reviewed(actor=nurse, patient=patient, up_to=NOW - days(1))
    again = symptom_services.side_effects_mark_reviewed(actor=nurse, patient=patient, up_to=NOW - days(3))
    assert again == first and SideEffectReview.objects.count() == 1
    with pytest.raises(ValidationError):
        symptom_services.side_effects_mark_reviewed(actor=nurse, patient=patient, up_to=NOW + days(1))


def test_side_effects_mark_reviewed_service_refuses_another_clinics_staff(other_prescriber, patient):
    with pytest.raises(PermissionDenied):
        symptom_services.side_effects_mark_reviewed(actor=other_prescriber, patient=patient, up_to=NOW)


# --- Assignee ---------------------------------------------------------------------------------------


def test_assign_to_me_then_filter_mine_and_unassigned(login, nurse, prescriber, clinic, patient):
    task = f.ClinicianTaskFactory(patient=patient, kind="other", title="Call about pharmacy")
    other = f.ClinicianTaskFactory(patient=patient, kind="other", title="Book the week-12 bloods")
    client = login(nurse)
    items = {i.title: i for i in section(client.get(URL), "tasks")}
    post = items["Call about pharmacy"].posts[0]
    assert post.label == "Assign to me"
    assert client.post(post.url, {**dict(post.fields), "next": URL}).status_code == 302
    task.refresh_from_db()
    assert task.assigned_to == nurse and task.history.first().history_user == nurse

    mine = client.get(URL, {"assignee": "mine"})
    assert [i.title for i in section(mine, "tasks")] == ["Call about pharmacy"]
    assert section(mine, "tasks")[0].posts[0].label == "Hand back"
    assert "Assigned to you" in mine.content.decode()
    unassigned = client.get(URL, {"assignee": "unassigned"})
    assert [i.title for i in section(unassigned, "tasks")] == ["Book the week-12 bloods"]
    assert sorted(i.title for i in section(client.get(URL, {"assignee": "everyone"}), "tasks")) == [
        "Book the week-12 bloods",
        "Call about pharmacy",
    ]
    # Someone else's task is neither mine nor unassigned for the prescriber.
    prescribers = login(prescriber)
    assert section(prescribers.get(URL, {"assignee": "mine"}), "tasks") == []
    assert [i.title for i in section(prescribers.get(URL, {"assignee": "unassigned"}), "tasks")] == [other.title]
    # Hand it back.
    client = login(nurse)
    client.post(reverse("clinic:task-assign", args=[task.pk]), {"to": "nobody"})
    task.refresh_from_db()
    assert task.assigned_to is None


def test_task_assign_refuses_other_clinics_and_closed_tasks(nurse, prescriber, other_prescriber, patient):
    task = f.ClinicianTaskFactory(patient=patient, kind="other")
    with pytest.raises(PermissionDenied):
        task_services.task_assign(actor=other_prescriber, task=task, assignee=other_prescriber)
    with pytest.raises(ValidationError):
        task_services.task_assign(actor=nurse, task=task, assignee=other_prescriber)
    patient_services.task_close(actor=nurse, task=task, note="done")
    with pytest.raises(ValidationError):
        task_services.task_assign(actor=nurse, task=task, assignee=nurse)


def test_clinic_admin_gets_no_assign_button_and_is_refused(login, clinic_admin, patient):
    task = f.ClinicianTaskFactory(patient=patient, kind="other")
    client = login(clinic_admin)
    assert section(client.get(URL), "tasks")[0].posts == ()
    response = client.post(reverse("clinic:task-assign", args=[task.pk]), {"to": "me"})
    assert response.status_code == 403
    task.refresh_from_db()
    assert task.assigned_to is None


# --- Filters and htmx -------------------------------------------------------------------------------


def test_filter_by_kind_shows_that_kind_and_keeps_every_count(login, prescriber, clinic):
    everything(clinic, prescriber)
    client = login(prescriber)
    response = client.get(URL, {"kind": "conflicts"})
    assert [s.key for s in response.context["worklist"].sections] == ["conflicts"]
    assert counts(response)["steps"] == 1
    page = response.content.decode()
    assert 'href="/clinic/?kind=steps&amp;assignee=everyone"' in page  # each count is a link that filters
    assert "Step 2: 1.5" not in page


def test_unknown_filter_values_are_ignored(login, prescriber, clinic):
    everything(clinic, prescriber)
    response = login(prescriber).get(URL, {"kind": "<script>", "assignee": "the-moon"})
    assert response.status_code == 200
    assert len(response.context["worklist"].sections) == len(worklist.KINDS)


def test_htmx_filter_gets_only_the_list(login, prescriber, clinic):
    everything(clinic, prescriber)
    client = login(prescriber)
    partial = client.get(URL, {"kind": "steps"}, HTTP_HX_REQUEST="true")
    body = partial.content.decode()
    assert partial.status_code == 200
    assert body.lstrip().startswith('<div id="worklist-results"') and "<html" not in body
    assert "Step 2: 1.5 → 2.0 mg" in body
    full = client.get(URL).content.decode()
    assert 'hx-get="/clinic/"' in full and 'hx-target="#worklist-results"' in full and 'hx-push-url="false"' in full
    assert re.search(r'<form method="get" action="/clinic/"', full)  # works without JavaScript too


# --- Privacy ----------------------------------------------------------------------------------------


def test_another_clinics_prescriber_sees_none_of_it(login, prescriber, other_prescriber, clinic):
    everything(clinic, prescriber)
    response = login(other_prescriber).get(URL)
    assert response.context["worklist"].total == 0
    assert "Ashdown" not in response.content.decode()


def test_other_clinics_post_actions_are_not_found(login, other_prescriber, patient):
    task = f.ClinicianTaskFactory(patient=patient, kind="other")
    client = login(other_prescriber)
    assert client.post(reverse("clinic:task-assign", args=[task.pk]), {"to": "me"}).status_code == 404
    path = reverse("clinic:side-effects-reviewed", args=[patient.pk])
    assert client.post(path, {"up_to": NOW.isoformat()}).status_code == 404
    task.refresh_from_db()
    assert task.assigned_to is None and not SideEffectReview.objects.exists()


def test_patient_login_is_refused(client, patient_user, prescriber, clinic):
    everything(clinic, prescriber)
    client.force_login(patient_user)
    for response in (client.get(URL), client.post(reverse("clinic:task-assign", args=[1]), {"to": "me"})):
        assert response.status_code == 302 and reverse("clinic:login") in response["Location"]


def test_a_user_in_two_clinics_sees_both_labelled(login, prescriber, clinic, other_clinic):
    everything(clinic, prescriber, name="Ashdown")
    f.MembershipFactory(user=prescriber, clinic=other_clinic, role=Role.NURSE)
    b_prescriber = f.MembershipFactory(clinic=other_clinic, role=Role.PRESCRIBER).user
    everything(other_clinic, b_prescriber, name="Bramley")
    response = login(prescriber).get(URL)
    assert response.context["worklist"].multi_clinic
    assert {i.patient.clinic.name for i in section(response, "conflicts")} == {"Clinic A", "Clinic B"}
    page = response.content.decode()
    assert page.count('<span class="clinic-label">Clinic B</span>') >= 9


# --- Query counts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [5, 50])
def test_worklist_query_count_does_not_grow_with_rows(rows, login, prescriber, clinic, django_assert_max_num_queries):
    for n in range(rows):
        everything(clinic, prescriber, name=f"Patient{n:02d}")
    client = login(prescriber)
    with django_assert_max_num_queries(WORKLIST_MAX_QUERIES):
        response = client.get(URL)
    assert all(n >= rows for n in counts(response).values())


# --- Kept until its clinic's data changes (ldnclinic.stamps) ------------------------------------------


def test_worklist_is_kept_until_a_row_of_its_clinic_is_written(
    login, prescriber, clinic, other_clinic, other_prescriber
):
    patient = everything(clinic, prescriber)
    client = login(prescriber)
    first = client.get(URL)
    with CaptureQueriesContext(connection) as kept:
        again = client.get(URL)
    assert counts(again) == counts(first)
    assert len(kept) <= 5  # session, user, memberships, clinics: the rows come from the cache
    # A write in another clinic leaves this one's worklist where it was.
    everything(other_clinic, other_prescriber, name="Elsewhere")
    with CaptureQueriesContext(connection) as still:
        client.get(URL)
    assert len(still) <= 5
    # A side effect reported here is on the next page at once, in the same transaction.
    checkin = f.CheckInFactory(patient=patient, recorded_at=NOW - days(1))
    f.SideEffectFactory(checkin=checkin, effect="nausea", severity=3)
    (row,) = section(client.get(URL), "side_effects")
    assert "Nausea / stomach upset (severe)" in text(row)


def test_a_reminder_the_outbox_marks_failed_shows_at_once(login, prescriber, clinic):
    """The outbox moves a reminder with an UPDATE (no signal): it renews the clinic's stamp itself."""
    from titration import reminders as outbox

    patient, _ = on_plan(clinic, prescriber)
    reminder = f.ReminderFactory(patient=patient, status="sending", kind="checkin_due", local_date=TODAY)
    client = login(prescriber)
    assert counts(client.get(URL))["reminders"] == 0
    assert outbox._finish(reminder, "failed", last_error="permanent: 550 mailbox unavailable") == 1
    assert counts(client.get(URL))["reminders"] == 1


def test_a_kept_worklist_is_drawn_for_each_user_with_their_own_buttons(client, prescriber, nurse, clinic):
    """The drawing is kept per user: a nurse never sees the prescriber's "assigned to you" or their form
    tokens, and the prescriber's kept page does not answer for the nurse."""
    patient, _ = on_plan(clinic, prescriber)
    f.ClinicianTaskFactory(patient=patient, kind="other", title="Phone the pharmacy", assigned_to=prescriber)
    client.force_login(prescriber)
    mine = client.get(URL).content.decode()
    assert "Assigned to you" in mine and "Hand back" in mine
    assert client.get(URL).content.decode().count("Assigned to you") == 1  # kept, and the same
    client.force_login(nurse)  # a new session: a new form-token secret too
    theirs = client.get(URL).content.decode()
    assert "Assigned to you" not in theirs and "Hand back" not in theirs
    assert f"Assigned to {prescriber.get_full_name() or prescriber.username}" in theirs
