"""The opioid check from the command line and the API (issue: interfaces)."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

KEYS = {"name", "class", "ingredients", "washout_days", "release", "evidence"}


def test_check_opioid_json_prints_one_object_per_line():
    out = StringIO()
    call_command("check_opioid", "--json", "norco 10/325", "oxybutynin", stdout=out)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["class"] for r in rows] == ["conflict", "none"]
    assert set(rows[0]) >= KEYS
    assert rows[0]["ingredients"] == ["acetaminophen", "hydrocodone"]
    assert rows[0]["washout_days"] == 10


def test_check_opioid_reads_a_file_of_names(tmp_path):
    names = tmp_path / "meds.txt"
    names.write_text("Suboxone 8-2 film\n\nbutrans 10 mcg/hr\nRelistor\n")
    out = StringIO()
    call_command("check_opioid", "--json", "--file", str(names), stdout=out)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["name"], r["class"], r["release"]) for r in rows] == [
        ("Suboxone 8-2 film", "conflict", None),
        ("butrans 10 mcg/hr", "conflict", "patch"),
        ("Relistor", "opioid_context", None),
    ]


def test_check_opioid_without_names_is_an_error():
    with pytest.raises(CommandError):
        call_command("check_opioid")


def test_check_opioid_plain_output_says_conflict_and_washout():
    out = StringIO()
    call_command("check_opioid", "Methadone 10 mg", stdout=out)
    assert "CONFLICT" in out.getvalue()
    assert "14 days" in out.getvalue()


def test_api_check_returns_the_same_object_as_the_command(client, prescriber):
    client.force_login(prescriber)
    response = client.post(
        "/api/v1/medications/check/", {"name": "Tylenol w/ Codeine #3"}, content_type="application/json"
    )
    assert response.status_code == 200
    body = response.json()
    out = StringIO()
    call_command("check_opioid", "--json", "Tylenol w/ Codeine #3", stdout=out)
    assert body == json.loads(out.getvalue())


def test_api_check_refuses_an_empty_name(client, nurse):
    client.force_login(nurse)
    response = client.post("/api/v1/medications/check/", {"name": "  "}, content_type="application/json")
    assert response.status_code == 400
    assert "name" in response.json()


@pytest.mark.django_db
def test_api_check_is_for_authenticated_staff_only(client, patient_user):
    assert client.post("/api/v1/medications/check/", {"name": "norco"}).status_code in {401, 403}
    client.force_login(patient_user)
    assert client.post("/api/v1/medications/check/", {"name": "norco"}).status_code == 403
