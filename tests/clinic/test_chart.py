"""The patient chart (issue 10, section 2): banner, scores chart and table, timeline, medications, labs,
response to LDN, tasks, the wallet card; privacy and a query count flat in the amount of history."""

import datetime as dt
import html
import json
import re
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from clinic import chart as chart_selectors
from ldnclinic import stamps
from patients.models import PatientStatus
from tests import factories as f
from titration import rules, services

pytestmark = pytest.mark.django_db
D = Decimal
NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)  # a Monday; Europe/London is on GMT
TODAY = dt.date(2026, 3, 2)
STD_1_5 = [rules.StepSpec(D("1.5"), 7), rules.StepSpec(D("3.0"), 7), rules.StepSpec(D("4.5"), 7)]


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def named_prescriber(prescriber):
    prescriber.first_name, prescriber.last_name = "Priya", "Shah"
    prescriber.save()
    return prescriber


@pytest.fixture
def on_ldn(patient, named_prescriber):
    """Alice, 45, fibromyalgia, started on STD_1_5 ten days ago from 1.5 mg capsules."""
    patient.clinic.phone = "020 7946 0123"
    patient.clinic.save()
    f.PatientConditionFactory(patient=patient, condition="fibromyalgia")
    rx = f.PrescriptionFactory(
        patient=patient,
        prescriber=named_prescriber,
        written_on=dt.date(2026, 1, 1),
        start_on=dt.date(2026, 1, 1),
        quantity=D("90"),
        days_supply=60,
    )
    start = TODAY - dt.timedelta(days=10)
    plan = services.plan_create(
        actor=named_prescriber, patient=patient, custom_steps=STD_1_5, start=start, prescription=rx
    )
    services.plan_start(actor=named_prescriber, plan=plan, start=start)
    patient.refresh_from_db()
    assert patient.status == PatientStatus.ACTIVE  # plan_start makes the patient active
    return plan


def chart_url(patient):
    return reverse("clinic:patient", args=[patient.pk])


def page(client, user, patient):
    client.force_login(user)
    response = client.get(chart_url(patient))
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def text_of(content: str) -> str:
    """The page as a reader sees it: tags out, whitespace collapsed, entities decoded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", content)).split())


def banner_of(content: str) -> str:
    return text_of(content.split('aria-label="Patient summary"')[1].split("</header>")[0])


def timeline_entries(content: str) -> list[str]:
    timeline = content.split('id="timeline"')[1].split("</ol>")[0]
    return [text_of('<li class="tl' + part) for part in timeline.split('<li class="tl')[1:]]


def checkin(patient, days_ago, **values):
    at = NOW - dt.timedelta(days=days_ago)
    return f.CheckInFactory(patient=patient, recorded_at=at, **values)


# --- banner ----------------------------------------------------------------------------------------------------


def test_banner_shows_who_the_patient_is_and_tonights_dose_in_mg_and_capsules(client, named_prescriber, on_ldn):
    patient = on_ldn.patient
    content = page(client, named_prescriber, patient)
    banner = banner_of(content)
    assert "Alice Ashdown" in banner
    assert "Age 45 (born 1980-05-17)" in banner  # born 1980-05-17
    assert "MRN A-001" in banner
    assert "Fibromyalgia" in banner
    assert "Status Active" in banner
    assert "Tonight 1.5 mg (1 capsule of 1.5 mg)" in banner
    # The next step: 3.0 mg (2 capsules) on the first day allowed, day 7 of step 1 (already past): today.
    assert "Next step 3.0 mg (2 capsules of 1.5 mg) on Mon 2 Mar 2026" in banner


def test_banner_wallet_card_text_names_the_patient_dose_and_clinic_phone(client, named_prescriber, on_ldn):
    content = text_of(page(client, named_prescriber, on_ldn.patient))
    assert "I take low-dose naltrexone (LDN), an opioid antagonist." in content
    assert "Opioid pain relief will be blocked or reduced while I take it." in content
    assert "tell the anaesthetist or emergency team that I take LDN" in content
    assert "LDN dose: 1.5 mg (1 capsule of 1.5 mg), once daily at bedtime" in content
    assert "Clinic: Clinic A, 020 7946 0123" in content


def test_conflict_banner_gives_the_earliest_safe_start_OPI_W1(client, prescriber, patient):
    f.MedicationFactory(patient=patient, name="Norco 5/325", last_dose_date=TODAY - dt.timedelta(days=3))
    content = page(client, prescriber, patient)
    assert 'class="banner banner-red"' in content
    assert 'class="conflicts conflicts-red"' in content
    conflicts = text_of(content.split('class="conflicts')[1].split("</section>")[0])
    # Hydrocodone: short-acting, 10-day washout after the last dose (27 Feb) -> 9 Mar.
    assert "Opioid conflict: Norco 5/325" in conflicts
    assert "earliest safe LDN start Mon 9 Mar 2026" in conflicts
    assert "10-day washout after the last dose (OPI-W1)" in conflicts


def test_conflict_banner_says_why_there_is_no_date(client, prescriber, patient):
    f.MedicationFactory(patient=patient, name="Norco 5/325")  # taking it: no last dose
    conflicts = text_of(page(client, prescriber, patient).split('class="conflicts')[1].split("</section>")[0])
    assert "no earliest start: last dose date unknown" in conflicts


def test_held_patient_shows_the_hold_reason(client, named_prescriber, on_ldn):
    services.plan_hold(actor=named_prescriber, plan=on_ldn, reason="mild headache at 1.5 mg (SE-1)")
    banner = banner_of(page(client, named_prescriber, on_ldn.patient))
    assert "Step-ups held: mild headache at 1.5 mg (SE-1) (by a prescriber, until resumed)" in banner
    assert "Next step" not in banner
    assert "Tonight 1.5 mg" in banner  # a hold keeps the dose


def test_patient_not_on_ldn_says_so(client, prescriber, patient):
    banner = banner_of(page(client, prescriber, patient))
    assert "not taking LDN now" in banner
    assert "not started yet: ask my clinic" in banner


# --- scores chart and its table --------------------------------------------------------------------------------


def chart_json(content: str) -> dict:
    found = re.search(r'<script id="score-data" type="application/json">(.*?)</script>', content, re.S)
    assert found, "no score-data json_script"
    return json.loads(found.group(1))


def test_chart_data_has_the_scores_the_stepped_dose_and_the_holds(client, named_prescriber, on_ldn):
    patient = on_ldn.patient
    checkin(patient, 12, pain=7, fatigue=6, sleep_quality=3, mood=4)  # before the first dose
    checkin(patient, 3, pain=5, fatigue=5, sleep_quality=5, mood=6)
    services.plan_advance(actor=named_prescriber, plan=on_ldn, on=TODAY - dt.timedelta(days=2))
    services.plan_hold(actor=named_prescriber, plan=on_ldn, reason="vivid dreams")
    content = page(client, named_prescriber, patient)
    data = chart_json(content)
    assert [(p["date"], p["pain"], p["fatigue"], p["sleep"], p["mood"]) for p in data["scores"]] == [
        ("2026-02-18", 7, 6, 3, 4),
        ("2026-02-27", 5, 5, 5, 6),
    ]
    # 1.5 mg from 20 Feb to 28 Feb, then 3.0 mg to today: each dose from its first to its last day.
    assert [(p["date"], p["mg"]) for p in data["dose"]] == [
        ("2026-02-20", 1.5),
        ("2026-02-28", 1.5),
        ("2026-02-28", 3.0),
        ("2026-03-02", 3.0),
    ]
    assert [(h["from"], h["to"], h["mg"]) for h in data["holds"]] == [("2026-03-02", "2026-03-02", 3.0)]
    assert data["end"] == (TODAY - dt.date(1970, 1, 1)).days
    assert "vendor/chart-4.6.1.umd.min.js" in content and "js/clinic-chart.js" in content
    assert "<script>" not in content.split("<body")[1]  # no inline script (CSP)


def test_chart_has_a_data_table_for_screen_readers(client, named_prescriber, on_ldn):
    patient = on_ldn.patient
    checkin(patient, 3, pain=5, fatigue=4, sleep_quality=6, mood=7)
    content = page(client, named_prescriber, patient)
    table = content.split('class="scores-table"')[1].split("</table>")[0]
    assert "<caption" in table and "Check-ins and dose changes since" in table
    rows = [text_of(r) for r in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)]
    assert rows[0] == "Date Pain Fatigue Sleep Mood mg Note"
    assert "27 Feb 2026 5 4 6 7 1.5" in rows
    assert "20 Feb 2026 1.5 dose change" in rows


def test_no_chart_script_when_there_is_nothing_to_draw(client, prescriber, patient):
    content = page(client, prescriber, patient)
    assert 'id="score-data"' not in content
    assert "No check-ins or LDN doses since" in content


# --- timeline --------------------------------------------------------------------------------------------------


def test_timeline_shows_who_when_and_why_of_a_hold(client, named_prescriber, on_ldn):
    with time_machine.travel(NOW + dt.timedelta(minutes=30), tick=False):
        services.plan_hold(actor=named_prescriber, plan=on_ldn, reason="patient travelling, stay on dose")
        content = page(client, named_prescriber, on_ldn.patient)
    entries = timeline_entries(content)
    held = entries[0]
    assert held.startswith("2 Mar 2026 12:30 Step Step 1: 1.5 mg changed Status: Active → Held")
    assert "by Priya Shah · why: held: patient travelling, stay on dose" in held
    started = next(e for e in entries if "Status: Draft → Active" in e)
    assert "Plan to 4.5 mg from 2026-02-20" in started and "why: plan started" in started


def test_timeline_lists_check_ins_with_side_effects_and_reminders(client, prescriber, patient):
    c = checkin(patient, 1, pain=4)
    f.SideEffectFactory(checkin=c, effect="headache", severity=2, started_on=TODAY - dt.timedelta(days=2))
    f.ReminderFactory(patient=patient, status="failed", last_error="mailbox unavailable", attempts=3)
    f.ReminderFactory(patient=patient, status="cancelled", cancelled_reason="plan held")
    f.ReminderFactory(patient=patient, status="pending")  # not yet an event
    content = text_of(page(client, prescriber, patient).split('id="timeline"')[1].split("</ol>")[0])
    assert "Side effect: Headache: moderate, since 2026-02-28" in content
    failed = "Check-in due (REM-3) by email for 2026-01-17 failed after 3 attempts"
    assert f"{failed} by system · why: mailbox unavailable" in content
    assert "cancelled by system · why: plan held" in content
    assert content.count("Check-in due (REM-3)") == 2


def test_timeline_leaves_out_saves_that_changed_nothing(client, prescriber, patient):
    med = f.MedicationFactory(patient=patient, name="Norco 5/325")
    flag = med.conflict_flags.get()
    for _ in range(3):  # the nightly sweep re-saves the open flag
        flag.save()
    content = text_of(page(client, prescriber, patient).split('id="timeline"')[1].split("</ol>")[0])
    assert content.count("Flag Opioid conflict: Norco 5/325") == 1  # the flag's creation only


def test_timeline_shows_older_windows_through_htmx(client, prescriber, patient):
    checkin(patient, 120, pain=8)
    content = page(client, prescriber, patient)
    more = reverse("clinic:patient-timeline", args=[patient.pk]) + "?before=2025-12-03"
    assert f'hx-get="{more}"' in content
    assert "pain 8" not in content
    partial = client.get(more, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and "pain 8" in partial
    assert "Start of the record." in partial
    full = client.get(more).content.decode()
    assert "<html" in full and "pain 8" in full


def test_timeline_says_when_a_window_has_more_rows_than_it_shows(client, prescriber, patient, monkeypatch):
    from clinic import chart_timeline

    monkeypatch.setattr(chart_timeline, "PER_SOURCE", 3)
    for days in range(5):
        checkin(patient, days, pain=days)
    content = page(client, prescriber, patient)
    assert sum("Weekly check-in" in e for e in timeline_entries(content)) == 3  # the newest three
    assert "More than 3 rows of check-in in these 90 days: the newest are shown." in text_of(content)


# --- medications, labs, response, tasks ------------------------------------------------------------------------


def test_medication_list_gives_opioid_class_and_washout(client, prescriber, patient):
    f.MedicationFactory(patient=patient, name="Norco 5/325", last_dose_date=TODAY - dt.timedelta(days=3))
    f.MedicationFactory(patient=patient, name="Sertraline 50 mg")
    meds = content_meds = page(client, prescriber, patient).split('id="meds-h"')[1].split("</table>")[0]
    rows = [text_of(r) for r in re.findall(r"<tr[^>]*>(.*?)</tr>", content_meds, re.S)]
    norco = next(r for r in rows if r.startswith("Norco"))
    assert "acetaminophen, hydrocodone" in norco
    assert "opioid: conflict" in norco and "flag open" in norco
    assert "10 days (OPI-W1); earliest LDN start 2026-03-09" in norco
    sertraline = next(r for r in rows if r.startswith("Sertraline"))
    assert "not an opioid" in sertraline
    assert 'class="row-danger"' in meds


def test_a_medication_name_is_escaped(client, prescriber, patient):
    f.MedicationFactory(patient=patient, name="<script>alert(1)</script>")
    content = page(client, prescriber, patient)
    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content


def test_abnormal_lab_is_marked_with_LAB_2_task(client, prescriber, patient):
    f.LabResultFactory(patient=patient, test="ALT", value=D("150"), unit="U/L", ref_low=D("7"), ref_high=D("40"))
    f.LabResultFactory(patient=patient, test="AST", value=D("30"), unit="U/L", ref_low=D("8"), ref_high=D("40"))
    f.LabResultFactory(patient=patient, test="ESR", value=D("1"), unit="mm/h", ref_low=D("2"), ref_high=D("20"))
    labs = page(client, prescriber, patient).split('id="labs-h"')[1].split('class="lab1"')[0]
    rows = [text_of(r) for r in re.findall(r"<tr[^>]*>(.*?)</tr>", labs, re.S)]
    assert next(r for r in rows if r.startswith("ALT")).startswith("ALT 150 U/L ▲ high 7–40")
    assert next(r for r in rows if r.startswith("ESR")).startswith("ESR 1 mm/h ▼ low 2–20")
    assert "high" not in next(r for r in rows if r.startswith("AST"))
    assert labs.count('class="row-abnormal"') == 2
    # LAB-2: 150 U/L is above 3x the ULN of 40: an alert task, shown with the labs.
    assert "Liver tests above 3× ULN (LAB-2)" in text_of(labs)


def test_labs_show_LAB_1_baseline_esr_next_to_pain_response(client, named_prescriber, on_ldn):
    patient = on_ldn.patient
    f.LabResultFactory(patient=patient, test="ESR", value=D("32"), collected_at=NOW - dt.timedelta(days=15))
    lab1 = text_of(page(client, named_prescriber, patient).split('class="lab1"')[1].split("</div>")[0])
    assert "Pain response and baseline ESR (LAB-1)" in lab1
    assert "Baseline ESR 32 mm/h (2026-02-15), 5 days before the first dose (2026-02-20)" in lab1


def test_response_card_reads_BASE_1_and_EFF_1(client, named_prescriber, on_ldn):
    patient = on_ldn.patient
    checkin(patient, 13, pain=8)
    checkin(patient, 11, pain=6)
    response = text_of(page(client, named_prescriber, patient).split('id="response-h"')[1].split("</section>")[0])
    assert "Responder status:" in response and "provisional" in response
    assert "Pain 7.0 (2 entries)" in response  # BASE-1: mean of the two before the first dose
    assert "Not on the maintenance dose yet: the efficacy review comes at 12 weeks on it (EFF-1)" in response


def test_open_tasks_are_listed(client, prescriber, patient):
    f.ClinicianTaskFactory(patient=patient, title="Call about missed check-ins", kind="missed_checkins")
    f.ClinicianTaskFactory(patient=patient, title="Closed one", status="done")
    tasks = text_of(page(client, prescriber, patient).split('id="tasks-h"')[1].split("</section>")[0])
    assert "Call about missed check-ins" in tasks and "Closed one" not in tasks
    assert "Open tasks 1 " in tasks


# --- actions by role -------------------------------------------------------------------------------------------


def test_action_links_follow_the_role_and_only_existing_routes(client, nurse, prescriber, patient, monkeypatch):
    existing = {"clinic:prescription-new", "clinic:lab-add", "clinic:plan-new"}
    monkeypatch.setattr(
        chart_selectors, "url_or_none", lambda name, *args: f"/x/{name}/{args[0]}/" if name in existing else None
    )
    as_nurse = page(client, nurse, patient)
    assert "Add lab result" in as_nurse
    assert "New prescription" not in as_nurse and "New plan" not in as_nurse  # prescribers only
    as_prescriber = page(client, prescriber, patient)
    assert f'href="/x/clinic:prescription-new/{patient.pk}/"' in as_prescriber
    assert "Reminder preferences" not in as_prescriber  # no such route yet


def test_the_record_areas_pages_are_linked_for_the_roles_that_may_use_them(client, prescriber, clinic_admin, patient):
    med = f.MedicationFactory(patient=patient, name="Norco 5/325")
    flag = med.conflict_flags.get()
    task = f.ClinicianTaskFactory(patient=patient, title="Call the patient")
    as_prescriber = page(client, prescriber, patient)
    for name, pk in (
        ("clinic:medication-add", patient.pk),
        ("clinic:lab-add", patient.pk),
        ("clinic:medication-edit", med.pk),
        ("clinic:flag", flag.pk),
        ("clinic:task", task.pk),
    ):
        assert f'href="{reverse(name, args=[pk])}"' in as_prescriber, name
    as_admin = page(client, clinic_admin, patient)  # a clinic admin sees the chart, changes nothing clinical
    for name, pk in (("clinic:medication-add", patient.pk), ("clinic:flag", flag.pk), ("clinic:task", task.pk)):
        assert f'href="{reverse(name, args=[pk])}"' not in as_admin, name


def test_missing_routes_are_left_out_not_an_error(client, prescriber, patient):
    assert chart_selectors.url_or_none("clinic:no-such-page", 1) is None
    page(client, prescriber, patient)


# --- wallet card -----------------------------------------------------------------------------------------------


def test_wallet_card_page_prints_the_card(client, named_prescriber, on_ldn):
    patient = on_ldn.patient
    client.force_login(named_prescriber)
    response = client.get(reverse("clinic:wallet-card", args=[patient.pk]))
    assert response.status_code == 200
    content = response.content.decode()
    card = text_of(content.split('class="wallet-card"')[1])
    assert "Medical alert: low-dose naltrexone" in card
    assert "I take low-dose naltrexone (LDN), an opioid antagonist." in card
    assert "Name: Alice Ashdown" in card
    assert "LDN dose: 1.5 mg (1 capsule of 1.5 mg), once daily at bedtime" in card
    assert "Clinic A, 020 7946 0123" in card
    assert "data-print" in content and "css/clinic-chart.css" in content
    assert response["Cache-Control"].startswith("max-age=0") or "no-store" in response["Cache-Control"]


# --- privacy ---------------------------------------------------------------------------------------------------

PAGES = ("clinic:patient", "clinic:patient-timeline", "clinic:wallet-card")


@pytest.mark.parametrize("name", PAGES)
def test_another_clinics_prescriber_gets_404(client, other_prescriber, patient, name):
    client.force_login(other_prescriber)
    response = client.get(reverse(name, args=[patient.pk]))
    assert response.status_code == 404
    assert b"Ashdown" not in response.content


@pytest.mark.parametrize("name", PAGES)
def test_a_patient_login_is_refused(client, patient_user, patient, name):
    client.force_login(patient_user)
    response = client.get(reverse(name, args=[patient.pk]))
    assert response.status_code == 302 and reverse("clinic:login") in response["Location"]


@pytest.mark.parametrize("name", PAGES)
def test_every_staff_role_of_the_clinic_may_read(client, nurse, clinic_admin, patient, name):
    for user in (nurse, clinic_admin):
        client.force_login(user)
        assert client.get(reverse(name, args=[patient.pk])).status_code == 200


# --- query counts ----------------------------------------------------------------------------------------------


def history(patient, plan, prescriber, n):
    """``n`` check-ins with side effects, reminders, labs, medications and step changes."""
    for i in range(n):
        c = checkin(patient, i % 80, pain=i % 11)
        f.SideEffectFactory(checkin=c, effect="headache", severity=1)
        f.ReminderFactory(patient=patient, status="sent", sent_at=NOW - dt.timedelta(days=i % 80), subject="LDN")
        f.LabResultFactory(patient=patient, test="ALT", value=D(20 + i), unit="U/L", ref_high=D("40"))
        f.MedicationFactory(patient=patient, name=f"Medicine {i}")
        f.ClinicianTaskFactory(patient=patient, kind="other", title=f"Task {i}")
    for i in range(n // 5):
        services.plan_hold(actor=prescriber, plan=plan, reason=f"hold {i}")
        services.plan_resume(actor=prescriber, plan=plan, reason=f"resumed {i}")


@pytest.mark.parametrize("n", [5, 50])
def test_chart_query_count_is_flat_in_history(client, named_prescriber, on_ldn, django_assert_max_num_queries, n):
    history(on_ldn.patient, on_ldn, named_prescriber, n)
    client.force_login(named_prescriber)
    url = chart_url(on_ldn.patient)
    client.get(url)  # warm the session and the opioid catalog
    stamps.bump([on_ldn.clinic_id])  # as a write would: the chart is drawn again, not read back
    with django_assert_max_num_queries(17):
        response = client.get(url)
    assert response.status_code == 200
    assert response.content.decode().count('class="tl') > n


def test_a_kept_chart_is_read_back_until_its_clinic_is_written(client, named_prescriber, on_ldn):
    client.force_login(named_prescriber)
    url = chart_url(on_ldn.patient)

    def main(response) -> str:  # the page around it holds a fresh form token each time
        page = response.content.decode()
        return page[page.index("<main") : page.index("</main>")]

    first = main(client.get(url))
    with CaptureQueriesContext(connection) as kept:
        again = main(client.get(url))
    assert again == first
    assert len(kept) <= 6  # session, user, memberships, the patient: the chart itself is kept
    f.CheckInFactory(patient=on_ldn.patient, recorded_at=NOW - dt.timedelta(hours=1), pain=9, notes="flare")
    assert main(client.get(url)) != first  # a check-in is on the chart at once


@pytest.mark.parametrize("n", [5, 50])
def test_timeline_query_count_is_flat_in_history(client, named_prescriber, on_ldn, django_assert_max_num_queries, n):
    history(on_ldn.patient, on_ldn, named_prescriber, n)
    client.force_login(named_prescriber)
    url = reverse("clinic:patient-timeline", args=[on_ldn.patient.pk])
    client.get(url)
    with django_assert_max_num_queries(7):
        assert client.get(url, HTTP_HX_REQUEST="true").status_code == 200


def test_wallet_card_query_count(client, named_prescriber, on_ldn, django_assert_max_num_queries):
    client.force_login(named_prescriber)
    url = reverse("clinic:wallet-card", args=[on_ldn.patient.pk])
    client.get(url)
    with django_assert_max_num_queries(10):
        assert client.get(url).status_code == 200
