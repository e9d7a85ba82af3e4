"""The reports app: CSV exports for a clinic's staff (check-ins, patients and titration, safety).

Per export: its columns and a row for a known patient; clinic isolation for each export and role;
who is refused; the date filter; the response headers; bounded queries; the audit log line.
"""

import csv
import datetime as dt
import io
import logging
import zoneinfo
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from patients.models import Role
from reports import csvfile, selectors
from reports.exports import EXPORTS
from tests import factories as f
from titration import content

UTC = dt.UTC
ROLES = ["prescriber", "nurse", "clinic_admin"]
KEYS = list(EXPORTS)


def url(key: str, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return reverse("reports:export", args=[key]) + (f"?{query}" if query else "")


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def table(response) -> list[list[str]]:
    raw = body(response)
    assert raw.startswith(b"\xef\xbb\xbf"), raw[:10]  # UTF-8 byte-order mark, for Excel
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def download(client, key: str, **params) -> list[list[str]]:
    response = client.get(url(key, **params))
    assert response.status_code == 200, response.status_code
    return table(response)


def by_mrn(rows: list[list[str]]) -> dict[str, list[str]]:
    return {row[1]: row for row in rows[1:]}


# --- Columns and a known row ---------------------------------------------------------------------


def test_checkins_export_has_its_columns_and_the_patients_row(login, prescriber, patient):
    checkin = f.CheckInFactory(
        patient=patient,
        recorded_at=dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        pain=6,
        fatigue=5,
        sleep_quality=4,
        mood=7,
        took_dose_as_prescribed=False,
        nights_missed=2,
        opioid_use="unsure",
        notes="Slept badly, then better",
    )
    f.SideEffectFactory(checkin=checkin, effect="headache", severity=2)
    f.SideEffectFactory(checkin=checkin, effect="other", severity=1, description="jaw ache")
    rows = download(login(prescriber), "checkins")
    assert rows[0] == [
        "Clinic",
        "MRN",
        "Patient",
        "Recorded on (patient's time zone)",
        "Pain (0-10)",
        "Fatigue (0-10)",
        "Sleep quality (0-10)",
        "Mood (0-10)",
        "Took dose as prescribed",
        "Nights missed",
        "Opioid use since last check-in",
        "Side effects",
        "Notes",
    ]
    assert rows[1:] == [
        [
            "clinic-a",
            "A-001",
            "Alice Ashdown",
            "2026-03-01",
            "6",
            "5",
            "4",
            "7",
            "no",
            "2",
            "Not sure",
            "Headache: moderate; Other (jaw ache): mild",
            "Slept badly, then better",
        ]
    ]


def test_checkin_date_is_the_patients_local_date_and_the_filter_uses_it(login, prescriber, clinic):
    kiwi = f.PatientFactory(clinic=clinic, mrn="A-NZ", time_zone="Pacific/Auckland")
    f.CheckInFactory(patient=kiwi, recorded_at=dt.datetime(2026, 3, 1, 23, 30, tzinfo=UTC))  # 2 March in Auckland
    client = login(prescriber)
    assert download(client, "checkins")[1][3] == "2026-03-02"
    assert len(download(client, "checkins", **{"from": "2026-03-02", "to": "2026-03-02"})) == 2
    assert len(download(client, "checkins", **{"from": "2026-03-01", "to": "2026-03-01"})) == 1  # header only
    assert len(download(client, "checkins", **{"from": "2026-03-03"})) == 1
    assert len(download(client, "checkins", to="2026-03-02")) == 2


def test_checkins_filter_includes_both_end_days_and_nothing_outside(login, prescriber, patient):
    for day in (1, 2, 3, 4):
        f.CheckInFactory(patient=patient, recorded_at=dt.datetime(2026, 6, day, 12, 0, tzinfo=UTC), pain=day)
    rows = download(login(prescriber), "checkins", **{"from": "2026-06-02", "to": "2026-06-03"})
    assert [r[3] for r in rows[1:]] == ["2026-06-02", "2026-06-03"]


def titrating_patient(patient):
    """Alice: active, two conditions, plan active with 3.0 mg held for a headache, one open flag."""
    patient.status = "active"
    patient.save()
    f.PatientConditionFactory(patient=patient, condition="long_covid")
    f.PatientConditionFactory(patient=patient, condition="fibromyalgia")
    f.PlanFactory(patient=patient, status="cancelled", start_date=dt.date(2025, 6, 1))
    plan = f.PlanFactory(patient=patient, status="active", start_date=dt.date(2026, 1, 10))
    f.StepFactory(plan=plan, sequence=1, dose_mg=Decimal("1.5"), actual_start=dt.date(2026, 1, 10), status="done")
    f.StepFactory(
        plan=plan,
        sequence=2,
        dose_mg=Decimal("3.0"),
        planned_start=dt.date(2026, 1, 17),
        actual_start=dt.date(2026, 1, 17),
        status="held",
        note="Moderate headache (SE-2)",
    )
    f.StepFactory(plan=plan, sequence=3, dose_mg=Decimal("4.5"), planned_start=dt.date(2026, 1, 24))
    f.ConflictFlagFactory(patient=patient)  # open: counted
    f.ConflictFlagFactory(  # resolved: not counted
        patient=patient,
        medication=f.MedicationFactory(patient=patient, name="Sertraline 50 mg"),
        kind="caution",
        severity="medium",
        status="resolved",
        resolved_reason="not taken any more",
    )
    return plan


def test_patients_export_has_its_columns_and_the_patients_row(login, prescriber, patient, sibling_patient):
    plan = titrating_patient(patient)
    rows = download(login(prescriber), "patients")
    assert rows[0] == [
        "Clinic",
        "MRN",
        "Patient",
        "Status",
        "Conditions",
        "Current dose (mg)",
        "Plan status",
        "Held",
        "Hold reason",
        "Open opioid flags",
    ]
    mine = by_mrn(rows)
    assert mine["A-001"] == [
        "clinic-a",
        "A-001",
        "Alice Ashdown",
        "Active",
        "Fibromyalgia; Long COVID",
        "3",
        "Active",
        "yes",
        "Moderate headache (SE-2)",
        "1",
    ]
    assert content.current_step(plan).dose_mg == Decimal("3.0")  # the same step titration's reminders use
    assert mine["A-002"] == ["clinic-a", "A-002", "Carol Crane", "Screening", "", "", "", "no", "", "0"]


def test_patients_export_current_step_matches_titration_content(patient):
    plan = titrating_patient(patient)
    prefetched = next(p for p in selectors.patient_titration_list(user=_member(patient.clinic)) if p.pk == patient.pk)
    assert selectors.current_step(selectors.current_plan(prefetched)) == content.current_step(plan)


def _member(clinic, role=Role.PRESCRIBER):
    return f.MembershipFactory(clinic=clinic, role=role).user


def test_safety_export_lists_open_flags_and_open_tasks_only(login, nurse, patient):
    flag = f.ConflictFlagFactory(patient=patient)
    f.ClinicianTaskFactory(patient=patient, kind="side_effect", title="Severe nausea", due_on=dt.date(2026, 2, 3))
    f.ClinicianTaskFactory(patient=patient, title="Done already", status="done")
    rows = download(login(nurse), "safety")
    assert rows[0] == [
        "Clinic",
        "Record",
        "MRN",
        "Patient",
        "Kind",
        "Severity",
        "Title / medication",
        "Opened at (patient's time zone)",
        "Due on",
        "Status",
    ]
    opened = flag.created_at.astimezone(patient.zone).strftime("%Y-%m-%d %H:%M")
    flag_row = ["clinic-a", "Opioid flag", "A-001", "Alice Ashdown", "Opioid conflict", "High", "Norco 5/325"]
    assert rows[1] == [*flag_row, opened, "", "Open"]
    titles = [r[6] for r in rows[1:] if r[1] == "Clinician task"]
    assert "Severe nausea" in titles
    assert "Done already" not in titles
    nausea = next(r for r in rows[1:] if r[6] == "Severe nausea")
    assert nausea[4:] == ["Severe side effect review (SE-4)", "", "Severe nausea", nausea[7], "2026-02-03", "Open"]


# --- Who sees what ---------------------------------------------------------------------------------


@pytest.fixture
def both_clinics(patient, other_patient, sibling_patient):
    """A check-in, an open flag and an open task for a patient of each clinic, and an archived patient
    of clinic A (and an archived check-in of Alice) that no export may show."""
    for p in (patient, other_patient, sibling_patient):
        f.CheckInFactory(patient=p, notes=f"note of {p.last_name}")
        f.ConflictFlagFactory(patient=p)
        f.ClinicianTaskFactory(patient=p, title=f"task of {p.last_name}")
    f.CheckInFactory(patient=patient, notes="archived note").delete()
    sibling_patient.delete()
    return patient, other_patient


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("key", KEYS)
def test_each_role_exports_only_its_clinic_and_never_archived_rows(key, role, request, login, both_clinics):
    raw = body(login(request.getfixturevalue(role)).get(url(key))).decode("utf-8-sig")
    assert "A-001" in raw and "Ashdown" in raw
    for absent in ("B-001", "Bramley", "clinic-b", "A-002", "Crane", "archived note"):
        assert absent not in raw


@pytest.mark.parametrize("key", KEYS)
def test_other_clinics_staff_export_only_their_own(key, login, other_prescriber, both_clinics):
    raw = body(login(other_prescriber).get(url(key))).decode("utf-8-sig")
    assert "B-001" in raw
    assert "A-001" not in raw and "Ashdown" not in raw


@pytest.mark.parametrize("key", KEYS)
def test_member_of_two_clinics_exports_both_like_visible_to(key, login, prescriber, other_clinic, both_clinics):
    f.MembershipFactory(user=prescriber, clinic=other_clinic, role=Role.NURSE)
    response = login(prescriber).get(url(key))
    rows = table(response)
    assert {r[0] for r in rows[1:]} == {"clinic-a", "clinic-b"}  # the Clinic column tells them apart
    assert "clinic-a+clinic-b" in response["Content-Disposition"]


@pytest.mark.parametrize("key", KEYS)
def test_inactive_membership_adds_nothing(key, login, prescriber, other_clinic, both_clinics):
    f.MembershipFactory(user=prescriber, clinic=other_clinic, is_active=False)
    raw = body(login(prescriber).get(url(key))).decode("utf-8-sig")
    assert "A-001" in raw and "B-001" not in raw


@pytest.mark.parametrize("key", KEYS)
def test_superuser_exports_only_clinics_it_is_a_member_of(key, login, operator, clinic, both_clinics):
    assert login(operator).get(url(key)).status_code == 403  # the operator is no clinic's staff
    f.MembershipFactory(user=operator, clinic=clinic, role=Role.CLINIC_ADMIN)
    raw = body(login(operator).get(url(key))).decode("utf-8-sig")
    assert "A-001" in raw and "B-001" not in raw


@pytest.mark.parametrize("path", [reverse("reports:index"), *(url(k) for k in KEYS)])
def test_patient_login_is_refused(path, login, patient_user, both_clinics):
    assert login(patient_user).get(path).status_code == 403


@pytest.mark.parametrize("path", [reverse("reports:index"), *(url(k) for k in KEYS)])
def test_patient_login_wrongly_marked_staff_is_still_refused(path, login, patient_user):
    patient_user.is_staff = True
    patient_user.save()
    assert login(patient_user).get(path).status_code == 403


@pytest.mark.parametrize("path", [reverse("reports:index"), *(url(k) for k in KEYS)])
def test_anonymous_is_sent_to_the_login_page(path, client):
    response = client.get(path)
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login") + "?next=/reports/")


def test_staff_login_without_membership_is_refused(login, patient):
    staff = f.StaffFactory(username="no-clinic")
    assert login(staff).get(url("patients")).status_code == 403


def test_unknown_export_is_not_found_and_post_is_refused(login, prescriber):
    client = login(prescriber)
    assert client.get(url("everything")).status_code == 404
    assert client.post(url("patients")).status_code == 405


# --- The index page and the admin link ---------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_index_lists_the_exports_for_each_role(role, request, login, clinic):
    page = login(request.getfixturevalue(role)).get(reverse("reports:index"))
    assert page.status_code == 200
    html = page.content.decode()
    for key in KEYS:
        assert f'action="{url(key)}"' in html or f'href="{url(key)}"' in html
    assert 'name="from"' in html and 'name="to"' in html
    assert "Clinic A" in html
    assert "no-store" in page["Cache-Control"]


def test_admin_links_to_the_reports(login, prescriber):
    html = login(prescriber).get(reverse("admin:index")).content.decode()
    assert f'href="{reverse("reports:index")}"' in html


# --- The date filter ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "2026-13-01"}, "“from” must be a date written as YYYY-MM-DD"),
        ({"to": "31/01/2026"}, "“to” must be a date written as YYYY-MM-DD"),
        ({"from": "yesterday"}, "got “yesterday”"),
        ({"from": "2026-02-30"}, "“from” must be a date"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "“from” (2026-03-02) is after “to” (2026-03-01)"),
    ],
)
def test_bad_dates_get_a_400_page_that_says_why(params, message, login, prescriber, caplog):
    caplog.set_level(logging.INFO, logger="ldnclinic.audit")
    response = login(prescriber).get(url("checkins", **params))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not [r for r in caplog.records if r.name == "ldnclinic.audit"]  # nothing was exported


def test_extreme_dates_do_not_crash(login, prescriber, patient):
    f.CheckInFactory(patient=patient)
    rows = download(login(prescriber), "checkins", **{"from": "0001-01-01", "to": "9999-12-31"})
    assert len(rows) == 2


def test_bad_date_page_escapes_what_was_typed(login, prescriber):
    response = login(prescriber).get(url("checkins", **{"from": "%3Cscript%3Ealert(1)%3C/script%3E"}))
    assert response.status_code == 400
    assert "<script>alert(1)</script>" not in response.content.decode()
    assert "&lt;script&gt;" in response.content.decode()


# --- The response ------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", KEYS)
def test_csv_response_is_a_private_utf8_attachment_named_after_clinic_and_date(key, login, prescriber, clinic):
    response = login(prescriber).get(url(key))
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    today = timezone.localdate(timezone=zoneinfo.ZoneInfo(clinic.time_zone))
    assert response["Content-Disposition"] == f'attachment; filename="ldn-{key}-clinic-a-{today:%Y-%m-%d}.csv"'
    cache = response["Cache-Control"]
    assert "private" in cache and "no-store" in cache
    body(response)


def test_accents_survive_for_excel(login, prescriber, clinic):
    f.PatientFactory(clinic=clinic, first_name="Zoë", last_name="Ørsted-Núñez", mrn="A-ZO")
    raw = body(login(prescriber).get(url("patients")))
    assert raw.startswith("\ufeff".encode())
    assert "Zoë Ørsted-Núñez".encode() in raw


# --- Cells: formula injection and numbers -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+44 20 7946 0000", "'+44 20 7946 0000"),
        ("-2", "'-2"),  # text that looks like a number is still text: it came from a person
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain = fine", "plain = fine"),
        ("", ""),
        (-2, "-2"),  # a number the code wrote stays a number
        (Decimal("-0.500"), "-0.5"),
        (Decimal("1.500"), "1.5"),
        (Decimal("3.000"), "3"),
        (-1.25, "-1.25"),
        (0, "0"),
        (None, ""),
        (True, "yes"),
        (False, "no"),
        (dt.date(2026, 1, 2), "2026-01-02"),
        (dt.datetime(2026, 1, 2, 21, 5, tzinfo=UTC), "2026-01-02 21:05"),
    ],
)
def test_cell_neutralises_formulas_in_text_only(value, written):
    assert csvfile.cell(value) == written


def test_negative_numbers_read_back_as_numbers_and_text_as_text():
    raw = b"".join(csvfile.stream(["n", "text"], [[-3, "-3"], [Decimal("-0.25"), "=2*3"]])).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(raw, newline="")))
    assert rows == [["n", "text"], ["-3", "'-3"], ["-0.25", "'=2*3"]]
    assert float(rows[1][0]) == -3


# --- Bounded queries ---------------------------------------------------------------------------------


def _populate(clinic, n: int) -> None:
    for i in range(n):
        patient = f.PatientFactory(clinic=clinic, status="active")
        f.PatientConditionFactory(patient=patient)
        checkin = f.CheckInFactory(patient=patient)
        f.SideEffectFactory(checkin=checkin, effect="headache", severity=1)
        f.SideEffectFactory(checkin=checkin, effect="nausea", severity=2)
        plan = f.PlanFactory(patient=patient)
        f.StepFactory(plan=plan, sequence=1, status="held", note="held", actual_start=dt.date(2026, 1, 10))
        f.ClinicianTaskFactory(patient=patient, title=f"task {i}")
        if i % 5 == 0:
            f.ConflictFlagFactory(patient=patient)


MAX_QUERIES = 10  # session, user, roles, clinic ids, clinics, then 1-4 per export


@pytest.mark.parametrize("n", [5, 50])
@pytest.mark.parametrize("key", KEYS)
def test_export_queries_do_not_grow_with_rows(key, n, login, prescriber, clinic, django_assert_max_num_queries):
    _populate(clinic, n)
    client = login(prescriber)
    with django_assert_max_num_queries(MAX_QUERIES):
        rows = table(client.get(url(key)))
    assert len(rows) >= n + 1


@pytest.mark.parametrize("key", KEYS)
def test_export_query_count_is_the_same_at_5_and_50_rows(key, login, prescriber, clinic):
    client = login(prescriber)
    counts = []
    for n in (5, 45):
        _populate(clinic, n)
        with CaptureQueriesContext(connection) as queries:
            body(client.get(url(key)))
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


# --- The audit log -----------------------------------------------------------------------------------


def test_every_export_is_logged_with_who_which_and_how_many_rows(login, prescriber, patient, sibling_patient, caplog):
    f.CheckInFactory(patient=patient, recorded_at=dt.datetime(2026, 3, 1, 12, tzinfo=UTC))
    f.CheckInFactory(patient=sibling_patient, recorded_at=dt.datetime(2026, 3, 2, 12, tzinfo=UTC))
    f.CheckInFactory(patient=sibling_patient, recorded_at=dt.datetime(2026, 4, 2, 12, tzinfo=UTC))
    caplog.set_level(logging.INFO, logger="ldnclinic.audit")
    client = login(prescriber)
    download(client, "checkins", **{"from": "2026-03-01", "to": "2026-03-31"})
    download(client, "patients")
    records = [r for r in caplog.records if r.name == "ldnclinic.audit"]
    assert [r.levelno for r in records] == [logging.INFO, logging.INFO]
    first, second = (r.getMessage() for r in records)
    assert first == (
        f"report export checkins by user prescriber-a (id {prescriber.pk}): clinics clinic-a, "
        "from 2026-03-01 to 2026-03-31, 2 rows"
    )
    assert second.startswith("report export patients by user prescriber-a") and second.endswith(", 2 rows")
    assert (records[0].export, records[0].user_id, records[0].rows, records[0].complete) == (
        "checkins",
        prescriber.pk,
        2,
        True,
    )


def test_an_abandoned_download_is_logged_as_incomplete(login, prescriber, patient, caplog):
    for _ in range(3):
        f.CheckInFactory(patient=patient)
    caplog.set_level(logging.INFO, logger="ldnclinic.audit")
    response = login(prescriber).get(url("checkins"))
    stream = iter(response.streaming_content)
    next(stream), next(stream)  # the header and one row, then the browser goes away
    response.close()
    (record,) = [r for r in caplog.records if r.name == "ldnclinic.audit"]
    assert record.rows == 1 and not record.complete
    assert "incomplete" in record.getMessage()


def test_a_download_stopped_after_the_header_is_still_logged(login, prescriber, patient, caplog):
    f.CheckInFactory(patient=patient)
    caplog.set_level(logging.INFO, logger="ldnclinic.audit")
    response = login(prescriber).get(url("checkins"))
    next(iter(response.streaming_content))  # the header only
    response.close()
    (record,) = [r for r in caplog.records if r.name == "ldnclinic.audit"]
    assert (record.rows, record.complete) == (0, False)
