"""The patient list (issue 10, section 2 "Lists"): search by name, MRN, date of birth, status,
condition and stage; 25 a page; sorted by allow-listed columns; the same queries at 5 rows and 50."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from clinic import patient_list
from patients.models import Role
from tests import factories as f

D = Decimal
NOW = dt.datetime(2026, 6, 10, 13, 0, tzinfo=dt.UTC)
TODAY = dt.date(2026, 6, 10)
URL = "/clinic/patients/"
PATIENT_LIST_MAX_QUERIES = 7  # session, user, memberships, patient login check, count, page, conditions

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def on_plan(patient, doses, current, *, status="active", target="4.5"):
    """``patient`` on a plan whose step ``current`` (1-based) is the current one, in ``status``."""
    plan = f.PlanFactory(patient=patient, start_date=TODAY - dt.timedelta(days=30), target_dose_mg=D(target))
    for n, dose in enumerate(doses, 1):
        f.StepFactory(
            plan=plan,
            sequence=n,
            dose_mg=D(dose),
            planned_start=TODAY - dt.timedelta(days=30 - 7 * (n - 1)),
            actual_start=TODAY - dt.timedelta(days=30 - 7 * (n - 1)) if n <= current else None,
            status=status if n == current else ("done" if n < current else "planned"),
        )
    return plan


@pytest.fixture
def cast(clinic, other_clinic):
    """One patient at every stage, with conditions and check-ins; and one in another clinic."""
    p = {}
    p["screening"] = f.PatientFactory(clinic=clinic, first_name="Sam", last_name="Screen", mrn="A-100")
    p["titrating"] = f.PatientFactory(
        clinic=clinic,
        first_name="Tara",
        last_name="Titrate",
        mrn="A-101",
        status="active",
        date_of_birth=dt.date(1990, 6, 11),
    )
    on_plan(p["titrating"], ["1.5", "3.0", "4.5"], 2)
    p["maintenance"] = f.PatientFactory(
        clinic=clinic, first_name="Mo", last_name="Maintain", mrn="A-102", status="active"
    )
    on_plan(p["maintenance"], ["1.5", "3.0", "4.5"], 3)
    p["held"] = f.PatientFactory(clinic=clinic, first_name="Hal", last_name="Held", mrn="A-103", status="active")
    on_plan(p["held"], ["1.5", "3.0", "4.5"], 2, status="held")
    p["paused"] = f.PatientFactory(clinic=clinic, first_name="Pat", last_name="Pause", mrn="A-104", status="paused")
    p["discontinued"] = f.PatientFactory(
        clinic=clinic,
        first_name="Dee",
        last_name="Stopped",
        mrn="A-105",
        status="discontinued",
        discontinued_reason="no benefit at 12 weeks",
    )
    f.PatientConditionFactory(patient=p["titrating"], condition="crohns")
    f.PatientConditionFactory(patient=p["titrating"], condition="fibromyalgia")
    f.PatientConditionFactory(patient=p["maintenance"], condition="multiple_sclerosis")
    f.CheckInFactory(patient=p["titrating"], recorded_at=NOW - dt.timedelta(days=2))
    f.CheckInFactory(patient=p["maintenance"], recorded_at=NOW - dt.timedelta(days=20))
    p["other"] = f.PatientFactory(clinic=other_clinic, first_name="Tara", last_name="Elsewhere", mrn="B-101")
    return p


def names(response) -> list[str]:
    return [row.patient.last_name for row in response.context["rows"]]


def test_each_row_shows_name_mrn_age_conditions_status_stage_dose_and_last_checkin(login, prescriber, cast):
    response = login(prescriber).get(URL)
    assert response.status_code == 200
    rows = {row.patient.last_name: row for row in response.context["rows"]}
    tara = rows["Titrate"]
    assert tara.age == 35  # 36 tomorrow, in her own calendar
    assert tara.conditions == ["Crohn's disease", "Fibromyalgia"]
    assert (tara.stage, tara.current_dose, tara.last_checkin) == ("Titrating", "3.0 mg", dt.date(2026, 6, 8))
    page = response.content.decode()
    assert "A-101" in page and "Crohn&#x27;s disease, Fibromyalgia" in page and "8 Jun 2026" in page
    assert {n: r.stage for n, r in rows.items()} == {
        "Screen": "Screening",
        "Titrate": "Titrating",
        "Maintain": "Maintenance",
        "Held": "Held",
        "Pause": "Paused",
        "Stopped": "Discontinued",
    }
    assert rows["Maintain"].current_dose == "4.5 mg" and rows["Screen"].current_dose == ""
    assert rows["Screen"].last_checkin is None and "never" in page


def test_the_name_links_to_the_chart_once_the_chart_route_exists(login, prescriber, cast, monkeypatch):
    monkeypatch.setattr(patient_list, "url", lambda name, pk: f"/clinic/{name}/{pk}/")
    page = login(prescriber).get(URL, {"q": "tara"}).content.decode()
    assert f'<a href="/clinic/patient/{cast["titrating"].pk}/">Titrate, Tara</a>' in page


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ({"q": "tara"}, ["Titrate"]),  # first name, any case; not the other clinic's Tara
        ({"q": "tara titr"}, ["Titrate"]),  # every word must match
        ({"q": "A-102"}, ["Maintain"]),  # MRN
        ({"dob": "1990-06-11"}, ["Titrate"]),
        ({"status": "active"}, ["Held", "Maintain", "Titrate"]),
        ({"condition": "multiple_sclerosis"}, ["Maintain"]),
        ({"stage": "screening"}, ["Screen"]),
        ({"stage": "titrating"}, ["Titrate"]),
        ({"stage": "maintenance"}, ["Maintain"]),
        ({"stage": "held"}, ["Held"]),
        ({"stage": "paused"}, ["Pause"]),
        ({"stage": "discontinued"}, ["Stopped"]),
        ({"status": "active", "condition": "crohns"}, ["Titrate"]),
        ({"q": "nobody"}, []),
    ],
)
def test_search_and_filters(query, found, login, prescriber, cast):
    response = login(prescriber).get(URL, query)
    assert names(response) == found
    if not found:
        assert "No patients match the search." in response.content.decode()


def test_a_bad_date_of_birth_is_shown_beside_the_field_and_the_rest_still_applies(login, prescriber, cast):
    response = login(prescriber).get(URL, {"dob": "31/02/1990", "status": "paused"})
    assert response.status_code == 200
    assert response.context["form"].errors["dob"]
    assert 'id="id_dob-error"' in response.content.decode()
    assert 'value="31/02/1990"' in response.content.decode()  # what was typed is kept
    assert names(response) == ["Pause"]


@pytest.mark.parametrize(
    ("sort", "first", "last"),
    [
        ("last_name", "Held", "Titrate"),
        ("-last_name", "Titrate", "Held"),
        ("mrn", "Screen", "Stopped"),
        ("-mrn", "Stopped", "Screen"),
        ("status", "Held", "Screen"),  # active (by name) < discontinued < paused < screening
        ("last_checkin", "Maintain", "Stopped"),  # oldest first, never-checked-in last
        ("-last_checkin", "Titrate", "Stopped"),
    ],
)
def test_sorting_by_allow_listed_columns(sort, first, last, login, prescriber, cast):
    found = names(login(prescriber).get(URL, {"sort": sort}))
    assert (found[0], found[-1]) == (first, last), found


def test_sort_by_date_of_birth(login, prescriber, clinic):
    for year in (1975, 1960, 1990):
        f.PatientFactory(clinic=clinic, last_name=f"Born{year}", date_of_birth=dt.date(year, 1, 1))
    client = login(prescriber)
    assert names(client.get(URL, {"sort": "dob"})) == ["Born1960", "Born1975", "Born1990"]
    assert names(client.get(URL, {"sort": "-dob"})) == ["Born1990", "Born1975", "Born1960"]


@pytest.mark.parametrize("sort", ["password", "-", "clinic__name", "last_name; DROP TABLE", "__class__"])
def test_unknown_sort_is_ignored_not_an_error(sort, login, prescriber, cast):
    response = login(prescriber).get(URL, {"sort": sort})
    assert response.status_code == 200
    assert names(response) == sorted(names(response))  # the default: by last name


def test_sort_links_keep_the_search_and_say_how_the_column_is_sorted(login, prescriber, cast):
    response = login(prescriber).get(URL, {"status": "active", "sort": "mrn", "page": "1"})
    page = response.content.decode()
    assert 'aria-sort="ascending"><a href="?status=active&amp;sort=-mrn">MRN</a>' in page
    assert 'href="?status=active&amp;sort=last_name"' in page


def test_pages_of_25(login, prescriber, clinic):
    for n in range(30):
        f.PatientFactory(clinic=clinic, last_name=f"Page{n:02d}")
    client = login(prescriber)
    first = client.get(URL)
    assert len(first.context["rows"]) == 25 and "page 1 of 2" in first.content.decode()
    second = client.get(URL, {"page": "2"})
    assert names(second) == [f"Page{n:02d}" for n in range(25, 30)]
    assert client.get(URL, {"page": "lots"}).status_code == 200  # a bad page number is the first page
    assert names(client.get(URL, {"page": "99"})) == names(second)  # past the end: the last page


def test_htmx_search_gets_only_the_results(login, prescriber, cast):
    response = login(prescriber).get(URL, {"q": "tara"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="patient-results"') and "<html" not in body
    assert "Titrate" in body and "Maintain" not in body


def test_another_clinics_prescriber_sees_none_of_them(login, other_prescriber, cast):
    response = login(other_prescriber).get(URL)
    assert names(response) == ["Elsewhere"]
    assert "Titrate" not in response.content.decode()


def test_patient_login_is_refused(client, patient_user):
    client.force_login(patient_user)
    response = client.get(URL)
    assert response.status_code == 302 and "/clinic/login/" in response["Location"]


def test_a_user_in_two_clinics_sees_both_with_the_clinic_named(login, prescriber, other_clinic, cast):
    f.MembershipFactory(user=prescriber, clinic=other_clinic, role=Role.NURSE)
    response = login(prescriber).get(URL, {"q": "tara"})
    assert names(response) == ["Elsewhere", "Titrate"]
    assert response.context["multi_clinic"] and "<td>Clinic B</td>" in response.content.decode()


@pytest.mark.parametrize("rows", [5, 50])
def test_patient_list_query_count_does_not_grow_with_rows(
    rows, login, prescriber, clinic, other_clinic, django_assert_max_num_queries
):
    for n in range(rows):
        for owner in (clinic, other_clinic):
            patient = f.PatientFactory(clinic=owner, status="active")
            f.PatientConditionFactory(patient=patient)
            f.CheckInFactory(patient=patient, recorded_at=NOW - dt.timedelta(days=n % 9))
            on_plan(patient, ["1.5", "3.0"], 1 + n % 2, target="3.0")  # titrating, then maintenance
    client = login(prescriber)
    with django_assert_max_num_queries(PATIENT_LIST_MAX_QUERIES):
        response = client.get(URL, {"sort": "-last_checkin", "stage": "titrating"})
    assert len(response.context["rows"]) == min(patient_list.PAGE_SIZE, (rows + 1) // 2)
    assert all(row.conditions and row.current_dose == "1.5 mg" for row in response.context["rows"])
