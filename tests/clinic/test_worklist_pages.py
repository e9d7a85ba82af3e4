"""A big worklist (issue 10, section 4): each kind shows its most urgent rows under its exact count, with
a link to the kind's own page, which shows all of them a page at a time, in the same number of queries."""

import datetime as dt
import re

import pytest
import time_machine

from clinic import worklist
from tests import factories as f
from tests.clinic.test_worklist import NOW, TODAY, URL, WORKLIST_MAX_QUERIES, counts, days, on_plan, section

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr(worklist, "SHOWN", 3)
    monkeypatch.setattr(worklist, "PAGE_SIZE", 4)


def flags(clinic, n):
    for i in range(n):
        patient = f.PatientFactory(clinic=clinic, status="screening", last_name=f"Flagged{i:02d}")
        f.MedicationFactory(patient=patient, name="Norco 5/325", last_dose_date=TODAY - days(i))


def test_each_kind_shows_its_most_urgent_rows_under_the_exact_count(login, prescriber, clinic, small_pages):
    flags(clinic, 7)
    for n in range(5):  # steps due in n days: the soonest first
        on_plan(clinic, prescriber, doses=("1.5", "3.0"), started=TODAY - days(7 - n))
    response = login(prescriber).get(URL)
    assert counts(response)["conflicts"] == 7 and counts(response)["steps"] == 5
    conflicts = section(response, "conflicts")
    # The latest earliest safe start is the most recent last dose: all High, the soonest start first.
    assert [i.when for i in conflicts] == [f"Earliest safe LDN start {d} Jun 2026" for d in (14, 15, 16)]
    steps = section(response, "steps")
    assert [i.when for i in steps] == ["Due 10 Jun 2026", "Due 11 Jun 2026", "Due 12 Jun 2026"]
    page = response.content.decode()
    assert 'href="/clinic/?kind=conflicts&amp;assignee=everyone">Show all 7' in page
    assert "The 3 most urgent of 5." in page


def test_a_kinds_own_page_shows_all_of_it_a_page_at_a_time(login, prescriber, clinic, small_pages):
    flags(clinic, 7)
    client = login(prescriber)
    first = client.get(URL, {"kind": "conflicts"})
    second = client.get(URL, {"kind": "conflicts", "page": 2})
    names = [i.patient.last_name for i in section(first, "conflicts") + section(second, "conflicts")]
    assert len(section(first, "conflicts")) == 4 and len(section(second, "conflicts")) == 3
    assert sorted(names) == [f"Flagged{i:02d}" for i in range(7)]  # each row once
    page = second.content.decode()
    assert "Page 2 of 2" in page and 'rel="prev"' in page and 'rel="next"' not in page
    assert "Show all" not in page
    past = client.get(URL, {"kind": "conflicts", "page": 9})
    assert section(past, "conflicts") == [] and "Back to the first page" in past.content.decode()
    assert client.get(URL, {"kind": "conflicts", "page": "two"}).status_code == 200  # read as page 1


def test_side_effects_merge_review_tasks_and_reports_across_pages(login, nurse, clinic, small_pages):
    for i in range(3):
        patient = f.PatientFactory(clinic=clinic, status="active")
        f.ClinicianTaskFactory(patient=patient, kind="side_effect", title=f"Severe side effect {i}")
    for i in range(3):
        patient = f.PatientFactory(clinic=clinic, status="active")
        checkin = f.CheckInFactory(patient=patient, recorded_at=NOW - dt.timedelta(hours=i + 1))
        f.SideEffectFactory(checkin=checkin, effect="headache", severity=1 + i % 2)
    client = login(nurse)
    assert counts(client.get(URL))["side_effects"] == 6
    first = section(client.get(URL, {"kind": "side_effects"}), "side_effects")
    second = section(client.get(URL, {"kind": "side_effects", "page": 2}), "side_effects")
    titles = [i.title for i in first + second]
    assert len(titles) == 6 and titles[:3] == ["Severe side effect 0", "Severe side effect 1", "Severe side effect 2"]
    # Then the reports, the worst first (moderate), then the newest.
    assert first[3].badge == "Moderate" and [i.badge for i in second] == ["Mild", "Mild"]
    assert second[0].when == "Latest 10 Jun 2026" and second[0].sort < second[1].sort


@pytest.mark.parametrize("rows", [5, 50])
def test_a_kinds_page_takes_as_many_queries_at_5_rows_as_at_50(
    rows, login, prescriber, clinic, django_assert_max_num_queries
):
    for n in range(rows):
        on_plan(clinic, prescriber, doses=("1.5", "3.0"), started=TODAY - days(7 - n % 7))
    client = login(prescriber)
    with django_assert_max_num_queries(WORKLIST_MAX_QUERIES):
        response = client.get(URL, {"kind": "steps", "page": 1})
    assert counts(response)["steps"] == rows and len(section(response, "steps")) == min(rows, worklist.PAGE_SIZE)
    assert re.search(r"page 1 of \d+", response.content.decode())
