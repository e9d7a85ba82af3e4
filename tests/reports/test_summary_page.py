"""The clinic report page: who may open it, bad dates, the small-denominator rule, what the page says and how
(captions, headed rows, escaping), the log line, a fixed number of queries, and the demo clinic."""

import logging
import re

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Min
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from patients.flag_models import ClinicianTask, ConflictFlag
from patients.models import Clinic, Patient, PatientCondition, Role, User
from reports import summary_tables
from reports.summary_tables import Rate
from tests import factories as f
from titration.models import StepStatus, TitrationStep

from .test_summary import (
    ago,
    discontinue,
    failed,
    gate_event,
    noon,
    on_maintenance,
    outcome_cohort,
    pain_course,
    report_of,
    severe,
    today,
)

pytestmark = pytest.mark.django_db
URL = reverse("reports:summary")


# --- Who may open it ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["prescriber", "nurse", "clinic_admin"])
def test_each_staff_role_opens_the_report_of_its_clinic(role, request, login, clinic):
    response = login(request.getfixturevalue(role)).get(URL)
    assert response.status_code == 200
    assert [r.clinic for r in response.context["reports"]] == [clinic]
    assert "no-store" in response["Cache-Control"]


def test_patient_login_is_refused(login, patient_user):
    assert login(patient_user).get(URL).status_code == 403


def test_anonymous_is_sent_to_the_login_page(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login") + "?next=/reports/summary/")


def test_staff_without_membership_and_superuser_without_one_are_refused(login, clinic, operator):
    assert login(f.StaffFactory(username="no-clinic")).get(URL).status_code == 403
    assert login(operator).get(URL).status_code == 403


def test_post_is_refused(login, clinic_admin):
    assert login(clinic_admin).post(URL).status_code == 405


def test_staff_of_two_clinics_get_one_section_each_and_nothing_mixed(login, prescriber, clinic, other_clinic):
    f.MembershipFactory(user=prescriber, clinic=other_clinic, role=Role.NURSE)
    for n, where in ((2, clinic), (3, other_clinic)):
        for _ in range(n):
            f.PatientFactory(clinic=where, status="active")
    response = login(prescriber).get(URL)
    assert {r.clinic.slug: r.live for r in response.context["reports"]} == {"clinic-a": 2, "clinic-b": 3}
    html = response.content.decode()
    assert html.index("Clinic A</h2>") < html.index("Clinic B</h2>")


def test_inactive_membership_adds_no_section(login, prescriber, other_clinic):
    f.MembershipFactory(user=prescriber, clinic=other_clinic, is_active=False)
    f.PatientFactory(clinic=other_clinic)
    assert [r.clinic.slug for r in login(prescriber).get(URL).context["reports"]] == ["clinic-a"]


# --- Bad dates -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "2026-13-01"}, "“from” must be a date written as YYYY-MM-DD"),
        ({"to": "31/01/2026"}, "“to” must be a date written as YYYY-MM-DD"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "“from” (2026-03-02) is after “to” (2026-03-01)"),
    ],
)
def test_bad_dates_get_the_400_page_of_the_exports(params, message, login, clinic_admin):
    response = login(clinic_admin).get(URL, params)
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert f'href="{URL}"' in html and "Back to the clinic report" in html


def test_bad_date_is_escaped(login, clinic_admin):
    html = login(clinic_admin).get(URL, {"from": "<script>alert(1)</script>"}).content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_extreme_dates_do_not_crash(login, clinic_admin, patient):
    gate_event(patient, "blocked", noon(ago(1)))
    response = login(clinic_admin).get(URL, {"from": "0001-01-01", "to": "9999-12-31"})
    assert response.status_code == 200
    assert dict(response.context["reports"][0].gates) == {"blocked": 1}


# --- Small denominators ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "of", "share"),
    [(0, 0, "n < 5"), (0, 4, "n < 5"), (4, 4, "n < 5"), (0, 5, "0%"), (2, 5, "40%"), (1, 6, "16.7%"), (5, 5, "100%")],
)
def test_a_share_needs_5_patients_and_never_divides_by_zero(n, of, share):
    assert Rate(n, of).share == share


def test_pain_responder_share_shows_n_under_5_until_5_are_evaluable_RESP1(login, clinic_admin, clinic):
    outcome_cohort(clinic)  # 4 evaluable, 2 responders
    client = login(clinic_admin)
    pain = client.get(URL).context["sections"][0]["outcomes"][1]
    assert pain.rows[0][1:] == (2, "n < 5")
    assert "n &lt; 5" in client.get(URL).content.decode()
    patient = f.PatientFactory(clinic=clinic, status="active")
    pain_course(patient, on_maintenance(patient, 95), 6, (3, 3))  # a fifth: a responder
    pain = client.get(URL).context["sections"][0]["outcomes"][1]
    assert pain.caption.startswith("Pain response of the 5 patients")
    assert pain.rows[0][1:] == (3, "60%")


def test_an_empty_clinic_reads_plainly(login, clinic_admin):
    response = login(clinic_admin).get(URL)
    assert response.status_code == 200
    pain = response.context["sections"][0]["outcomes"][1]
    assert pain.rows[0][1:] == (0, "n < 5")
    assert "No discontinuations in the period." in response.content.decode()


# --- The page ----------------------------------------------------------------------------------------------


def test_reports_index_links_to_the_clinic_report(login, nurse):
    assert f'href="{URL}"' in login(nurse).get(reverse("reports:index")).content.decode()


def test_page_has_captions_and_headed_rows_in_the_admin_look(login, clinic_admin):
    html = login(clinic_admin).get(URL).content.decode()
    assert 'id="site-name"' in html  # admin/base_site.html
    tables = re.findall(r"<table>.*?</table>", html[html.index('id="ldn-report"') :], flags=re.S)
    assert len(tables) == 14
    for table in tables:
        assert "<caption>" in table and '<th scope="col">' in table
        assert '<th scope="row">' in table or 'class="ldn-empty"' in table  # a row per count, or "None ..."
    assert 'name="from"' in html and 'name="to"' in html and 'for="summary-from"' in html


def test_page_shows_counts_only_and_escapes_what_it_shows(login, clinic_admin, clinic):
    clinic.name = "<b>Clinic</b> & co"
    clinic.save()
    patient = f.PatientFactory(clinic=clinic, first_name="Zed", last_name="Quimby", mrn="MRN-UNIQUE", status="active")
    discontinue(patient, "<script>alert(1)</script> moved", noon(ago(3)))
    html = login(clinic_admin).get(URL).content.decode()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; moved" in html
    assert "<b>Clinic</b>" not in html and "&lt;b&gt;Clinic&lt;/b&gt; &amp; co" in html
    for name in ("Zed", "Quimby", "MRN-UNIQUE"):
        assert name not in html


def test_each_report_is_logged(login, clinic_admin, caplog):
    caplog.set_level(logging.INFO, logger="ldnclinic.audit")
    login(clinic_admin).get(URL, {"from": "2026-03-01", "to": "2026-03-31"})
    (record,) = [r for r in caplog.records if r.name == "ldnclinic.audit"]
    assert record.getMessage() == (
        f"report summary by user admin-a (id {clinic_admin.pk}): clinics clinic-a, from 2026-03-01 to 2026-03-31"
    )


# --- A fixed number of queries -----------------------------------------------------------------------------


def _populate(clinic, n: int) -> None:
    """n patients with a row of every kind the report reads; every fifth discontinued."""
    for i in range(n):
        patient = f.PatientFactory(clinic=clinic, status="active")
        f.PatientConditionFactory(patient=patient, condition=["fibromyalgia", "crohns", "multiple_sclerosis"][i % 3])
        pain_course(patient, on_maintenance(patient, 90 + i % 10), 7, (4, 6))
        f.ConflictFlagFactory(patient=patient)
        f.ClinicianTaskFactory(patient=patient, kind="lab_alert")
        gate_event(patient, "blocked", noon(ago(5)))
        severe(patient, "vomiting", noon(ago(4)))
        failed(patient, "checkin_due", ago(2))
        if i % 5 == 0:
            discontinue(f.PatientFactory(clinic=clinic, status="active"), "Moved", noon(ago(6)))


MAX_QUERIES = 24  # session, user, roles, clinic ids, patient login?, clinics; 16 for the report; 2 for the admin menu


@pytest.mark.parametrize("n", [5, 40])
def test_report_queries_do_not_grow_with_patients(n, login, clinic_admin, clinic, django_assert_max_num_queries):
    _populate(clinic, n)
    client = login(clinic_admin)
    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(URL)
    report = response.context["reports"][0]
    assert report.evaluated == n and sum(report.gates.values()) == n and report.live == n + (n + 4) // 5


def test_report_query_count_is_the_same_at_5_and_40_patients(login, clinic_admin, clinic):
    client = login(clinic_admin)
    counts = []
    for n in (5, 35):
        _populate(clinic, n)
        with CaptureQueriesContext(connection) as queries:
            client.get(URL)
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


# --- The demo clinic ---------------------------------------------------------------------------------------


def test_demo_report_matches_independent_queries(client):
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115 - the command's chatter
    demo = Clinic.objects.get(slug="demo")
    client.force_login(User.objects.get(username="demo-admin"))
    report = report_of(client, demo)
    patients = Patient.objects.filter(clinic=demo)
    assert dict(report.statuses) == dict(patients.values_list("status").annotate(n=Count("pk")))
    assert report.live == patients.count() == 36
    conditions = PatientCondition.objects.filter(clinic=demo).values_list("condition").annotate(n=Count("pk"))
    assert dict(report.conditions) == dict(conditions)
    held = TitrationStep.objects.filter(clinic=demo, status=StepStatus.HELD, plan__status="active").count()
    assert report.stages["held"] == held
    # Two held by a clinician; the others by the side-effect rules after a mild effect this week (SE-1).
    by_clinician = TitrationStep.objects.filter(clinic=demo, status=StepStatus.HELD, held_by_clinician=True)
    assert by_clinician.count() == 2 < held
    flags = ConflictFlag.objects.filter(clinic=demo, status="open").values_list("kind").annotate(n=Count("pk"))
    assert dict(report.flags) == dict(flags) and sum(report.flags.values()) > 0
    tasks = ClinicianTask.objects.filter(clinic=demo, status="open").values_list("kind").annotate(n=Count("pk"))
    assert dict(report.tasks) == dict(tasks)
    assert report.tasks["lab_alert"] == 1  # LAB-2: Samuel Osei's ALT at 3.5x the upper limit
    # Discontinued on their own dates in the last 90 days: four stopped LDN, one chose not to start.
    assert sum(report.discontinued.values()) == patients.filter(status="discontinued").count() == 5
    firsts = (
        TitrationStep.objects.filter(clinic=demo, actual_start__isnull=False)
        .values("plan__patient")
        .annotate(first=Min("actual_start"))
    )
    assert report.started == sum(1 for row in firsts if ago(89) <= row["first"] <= today())
    assert report.evaluated > 0 and report.review_due == report.evaluated
    assert summary_tables.MIN_DENOMINATOR == 5
