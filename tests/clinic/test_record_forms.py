"""The patient record pages (clinic/views_record.py), driven as a browser would: each form's happy
path writes through its service (who and why on the history row), each error is shown beside its
field with what was typed kept and nothing written, the opioid check answers as you type, and
another clinic's staff, patients and the wrong roles get nothing."""

import datetime as dt
import re
from html import unescape

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from clinic.views_record import chart_url
from patients import services
from patients.flag_models import ClinicianTask, ConflictFlag, FlagStatus
from patients.models import LabResult, MedicationStatement, Patient, PatientCondition
from patients.services import patient_today
from patients.today import zone_today
from tests import factories as f

pytestmark = pytest.mark.django_db

NEW_PATIENT = {
    "mrn": "A-100",
    "first_name": "Dora",
    "last_name": "Dunmore",
    "date_of_birth": "1975-03-14",
    "sex": "female",
    "email": "dora@example.test",
    "mobile": "",
    "time_zone": "Europe/London",
    "dose_time": "bedtime",
    "conditions": ["fibromyalgia", "long_covid"],
    "medications-TOTAL_FORMS": "1",
    "medications-INITIAL_FORMS": "0",
    "medications-MIN_NUM_FORMS": "0",
    "medications-MAX_NUM_FORMS": "30",
}
ROW = {"name": "", "dose": "", "route": "oral", "release": "unknown", "start_date": "", "last_dose_date": ""}
ROW |= {"source": "clinician", "notes": ""}
MEDICATION = {**ROW, "name": "Norco 5/325", "release": "IR", "source": "patient"}


def row(i: int, **values) -> dict:
    return {f"medications-{i}-{k}": v for k, v in {**ROW, **values}.items()}


def html(response) -> str:
    return response.content.decode()


def text(response) -> str:
    """The page as read (entities decoded): for sentences with an apostrophe."""
    return unescape(html(response))


def error_beside(response, field_id: str) -> str:
    """The error list Django renders for ``field_id``, checked to sit just before that input, which is
    marked invalid and described by it."""
    page = html(response)
    found = re.search(rf'<ul class="errorlist" id="{field_id}_error">(.*?)</ul>', page, re.S)
    assert found, f"no error beside #{field_id}"
    widget = re.search(rf'<(input|select|textarea)[^>]*id="{field_id}"[^>]*>', page)
    assert widget, f"no #{field_id}"
    assert 0 < widget.start() - found.end() < 800, "the error is not beside its field"
    assert 'aria-invalid="true"' in widget.group(0)
    assert f"{field_id}_error" in widget.group(0)  # aria-describedby
    return found.group(1)


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def last_history(obj):
    return obj.history.order_by("-history_id").first()


@pytest.fixture
def norco(patient):
    last = patient_today(patient) - dt.timedelta(days=2)
    return f.MedicationFactory(patient=patient, name="Norco 5/325", last_dose_date=last)


@pytest.fixture
def conflict(norco):
    return ConflictFlag.objects.get(medication=norco, kind="conflict")


# --- New patient ----------------------------------------------------------------------------------


def test_new_patient_form_offers_conditions_and_a_medication_row(login, prescriber):
    page = login(prescriber).get(reverse("clinic:patient-new"))
    assert page.status_code == 200
    content = html(page)
    assert 'type="checkbox" name="conditions" value="fibromyalgia"' in content
    assert 'name="medications-0-name"' in content
    assert 'name="add_medication"' in content and 'hx-post="/clinic/patients/new/"' in content


def test_new_patient_with_conditions_and_an_opioid_is_saved_and_flagged(login, nurse):
    two_days_ago = zone_today(NEW_PATIENT["time_zone"]) - dt.timedelta(days=2)  # still in the washout, any day
    data = {**NEW_PATIENT, **row(0, **{**MEDICATION, "last_dose_date": two_days_ago.isoformat()})}
    response = login(nurse).post(reverse("clinic:patient-new"), data)
    patient = Patient.objects.get(mrn="A-100")
    assert response.status_code == 302
    assert response.url == chart_url(patient)
    assert sorted(PatientCondition.objects.filter(patient=patient).values_list("condition", flat=True)) == [
        "fibromyalgia",
        "long_covid",
    ]
    medication = MedicationStatement.objects.get(patient=patient)
    for obj in (patient, medication):
        history = last_history(obj)
        assert (history.history_user, history.history_change_reason) == (nurse, "new patient")
    shown = messages_of(response)
    assert any("OPIOID CONFLICT: Norco 5/325" in m and "hydrocodone" in m for m in shown), shown


def test_new_patient_duplicate_mrn_is_shown_beside_the_mrn_and_keeps_what_was_typed(login, nurse, patient):
    data = {**NEW_PATIENT, "mrn": patient.mrn, **row(0, **MEDICATION)}
    response = login(nurse).post(reverse("clinic:patient-new"), data)
    assert response.status_code == 200
    assert "already has this MRN" in error_beside(response, "id_mrn")
    content = html(response)
    assert 'value="Dora"' in content and 'value="Norco 5/325"' in content
    assert 'value="long_covid" id="id_conditions_5" checked' in content or 'value="long_covid"' in content
    assert Patient.objects.count() == 1 and not MedicationStatement.objects.exists()


def test_new_patient_date_of_birth_in_the_future_is_an_error_beside_it(login, nurse):
    future = (timezone.now().date() + dt.timedelta(days=3)).isoformat()
    response = login(nurse).post(reverse("clinic:patient-new"), {**NEW_PATIENT, **row(0), "date_of_birth": future})
    assert "cannot be in the future" in error_beside(response, "id_date_of_birth")
    assert not Patient.objects.exists()


def test_a_medication_row_error_is_shown_beside_that_row(login, nurse):
    bad = row(1, **{**MEDICATION, "start_date": "2026-02-01", "last_dose_date": "2026-01-01"})
    data = {**NEW_PATIENT, "medications-TOTAL_FORMS": "2", **row(0), **bad}
    response = login(nurse).post(reverse("clinic:patient-new"), data)
    assert "before the start date" in error_beside(response, "id_medications-1-last_dose_date")
    assert 'id="id_medications-0-name_error"' not in html(response)  # the empty row is skipped, not required
    assert not Patient.objects.exists()


def test_add_another_medication_keeps_every_typed_value_and_saves_nothing(login, nurse):
    data = {**NEW_PATIENT, "first_name": "", **row(0, **MEDICATION), "add_medication": "1"}
    response = login(nurse).post(reverse("clinic:patient-new"), data)
    assert response.status_code == 200
    content = html(response)
    assert 'name="medications-TOTAL_FORMS" value="2"' in content
    assert 'name="medications-1-name"' in content and 'value="Norco 5/325"' in content
    assert 'value="Dunmore"' in content
    assert "Opioid conflict" in content and "hydrocodone" in content  # the row's check is shown again
    assert "errorlist" not in content  # not a submission: no "this field is required" yet
    assert not Patient.objects.exists()


def test_add_another_medication_with_htmx_returns_only_the_medications(login, nurse):
    data = {**NEW_PATIENT, **row(0, **MEDICATION), "add_medication": "1"}
    response = login(nurse).post(reverse("clinic:patient-new"), data, headers={"HX-Request": "true"})
    content = html(response)
    assert content.lstrip().startswith('<fieldset id="medications"')
    assert "<html" not in content
    assert 'name="medications-1-name"' in content and "autofocus" in content


def test_new_patient_refused_to_a_clinic_admin_with_the_reason(login, clinic_admin):
    response = login(clinic_admin).get(reverse("clinic:patient-new"))
    assert response.status_code == 403
    assert "Only a nurse or prescriber" in html(response)


# --- Details and conditions -----------------------------------------------------------------------


def test_edit_details_saves_through_the_service(login, nurse, patient):
    data = {k: v for k, v in NEW_PATIENT.items() if k in ("sex", "time_zone", "dose_time", "email", "mobile")}
    data |= {"mrn": patient.mrn, "first_name": "Alicia", "last_name": patient.last_name, "date_of_birth": "1980-05-17"}
    response = login(nurse).post(reverse("clinic:patient-edit", args=[patient.pk]), data)
    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.first_name == "Alicia"
    history = last_history(patient)
    assert history.history_user == nurse and history.history_change_reason.startswith("details changed (")


def test_edit_details_error_is_beside_the_field_and_nothing_changes(login, nurse, patient):
    data = {"mrn": patient.mrn, "first_name": "Alicia", "last_name": "A", "date_of_birth": "1850-01-01"}
    data |= {"sex": "female", "time_zone": "Europe/London", "dose_time": "bedtime"}
    response = login(nurse).post(reverse("clinic:patient-edit", args=[patient.pk]), data)
    assert "1900" in error_beside(response, "id_date_of_birth")
    assert 'value="Alicia"' in html(response)
    patient.refresh_from_db()
    assert patient.first_name == "Alice"


def test_condition_add_and_archive_from_the_edit_page(login, nurse, patient):
    client = login(nurse)
    response = client.post(reverse("clinic:condition-add", args=[patient.pk]), {"condition": "crohns"})
    assert response.status_code == 302
    condition = PatientCondition.objects.get(patient=patient, condition="crohns")
    response = client.post(reverse("clinic:condition-add", args=[patient.pk]), {"condition": "crohns"})
    assert "already on the record" in error_beside(response, "id_condition")
    response = client.post(reverse("clinic:condition-archive", args=[condition.pk]), {"reason": ""})
    assert "required" in error_beside(response, "id_reason")
    response = client.post(reverse("clinic:condition-archive", args=[condition.pk]), {"reason": "revised"})
    assert response.status_code == 302
    assert last_history(PatientCondition.all_objects.get(pk=condition.pk)).history_change_reason == "archived: revised"


# --- Medications and the opioid check -------------------------------------------------------------


def test_medication_page_checks_as_you_type_with_htmx(login, nurse, patient):
    content = html(login(nurse).get(reverse("clinic:medication-add", args=[patient.pk])))
    name_input = re.search(r'<input[^>]*name="name"[^>]*>', content).group(0)
    assert f'hx-get="{reverse("clinic:medication-check")}"' in name_input
    assert 'hx-trigger="input changed delay:300ms"' in name_input
    assert 'hx-target="#med-check"' in name_input
    assert 'id="med-check" aria-live="polite"' in content


def check(client, **params):
    response = client.get(reverse("clinic:medication-check"), params)
    assert response.status_code == 200
    assert "<html" not in html(response)  # a partial
    return html(response)


def test_live_check_says_conflict_for_norco_with_hydrocodone_and_its_washout_OPI_W1(login, nurse, patient):
    client = login(nurse)
    content = check(client, name="Norco 5/325", route="oral", release="IR")
    assert "Opioid conflict" in content and "hydrocodone" in content
    assert "Washout 10 days" in content
    assert "Add the last dose date" in content
    last = patient_today(patient) - dt.timedelta(days=2)
    content = check(client, name="Norco 5/325", last_dose_date=last.isoformat(), patient=patient.pk)
    assert f"Earliest safe LDN start <strong>{last + dt.timedelta(days=10):%-d %b %Y}</strong>" in content


def test_live_check_says_caution_for_an_opioid_looking_fragment_OPI_2(login, nurse):
    content = check(login(nurse), name="opiate pills from abroad")
    assert "Possible opioid: verify" in content and "med-check-caution" in content


def test_live_check_says_none_for_metformin(login, nurse):
    content = check(login(nurse), name="metformin")
    assert "No opioid found" in content and "med-check-none" in content
    assert check(login(nurse), name="  ").strip() == ""


def test_live_check_for_a_patient_on_LDN_gives_no_date_OPI_W3(login, nurse, patient):
    Patient.objects.filter(pk=patient.pk).update(status="active")
    content = check(login(nurse), name="Norco", last_dose_date="2026-11-01", patient=patient.pk)
    assert "opioid plan (OPI-W3)" in content and "Earliest safe" not in content


def test_live_check_reads_a_formset_row_by_its_prefix(login, nurse):
    content = check(login(nurse), prefix="medications-3", **{"medications-3-name": "Butrans 10 mcg/hr"})
    assert "buprenorphine" in content and "Washout 14 days" in content


def test_live_check_writes_nothing(login, nurse, patient, django_assert_max_num_queries):
    client = login(nurse)
    with django_assert_max_num_queries(6):
        check(client, name="Norco 5/325", patient=patient.pk)
    assert not MedicationStatement.all_objects.exists() and not ConflictFlag.objects.exists()


def test_medication_add_saves_and_shows_the_flag_from_the_same_request(login, nurse, patient):
    last = (patient_today(patient) - dt.timedelta(days=1)).isoformat()
    response = login(nurse).post(
        reverse("clinic:medication-add", args=[patient.pk]), {**MEDICATION, "last_dose_date": last}
    )
    assert response.status_code == 302 and response.url == chart_url(patient)
    medication = MedicationStatement.objects.get(patient=patient)
    history = last_history(medication)
    assert (history.history_user, history.history_change_reason) == (nurse, "medication added")
    flag = ConflictFlag.objects.get(medication=medication)
    shown = messages_of(response)
    assert any(
        "OPIOID CONFLICT" in m and "10-day washout" in m and reverse("clinic:flag", args=[flag.pk]) in m for m in shown
    ), shown


def test_medication_add_error_beside_the_field_keeps_typed_data_and_saves_nothing(login, nurse, patient):
    data = {**MEDICATION, "start_date": "2026-03-01", "last_dose_date": "2026-02-01"}
    response = login(nurse).post(reverse("clinic:medication-add", args=[patient.pk]), data)
    assert response.status_code == 200
    assert "before the start date" in error_beside(response, "id_last_dose_date")
    assert 'value="Norco 5/325"' in html(response)
    assert "Opioid conflict" in html(response)  # the check is shown again with the form
    assert not MedicationStatement.objects.filter(patient=patient).exists()


def test_medication_check_button_works_without_javascript_and_saves_nothing(login, nurse, patient):
    response = login(nurse).post(reverse("clinic:medication-add", args=[patient.pk]), {**MEDICATION, "check": "1"})
    assert response.status_code == 200 and "hydrocodone" in html(response)
    assert not MedicationStatement.objects.exists()


def test_a_clinic_admin_cannot_add_a_medication_and_is_told_why(login, clinic_admin, patient):
    client = login(clinic_admin)
    for response in (
        client.get(reverse("clinic:medication-add", args=[patient.pk])),
        client.post(reverse("clinic:medication-add", args=[patient.pk]), MEDICATION),
    ):
        assert response.status_code == 403
        assert "Only a nurse or prescriber of the patient's clinic can add or change" in text(response)
    assert not MedicationStatement.objects.exists()


def test_a_medication_name_with_a_script_tag_is_escaped_everywhere(login, prescriber, patient):
    name = "<script>alert(1)</script> codeine"
    client = login(prescriber)
    response = client.post(reverse("clinic:medication-add", args=[patient.pk]), {**MEDICATION, "name": name})
    assert response.status_code == 302
    shown = messages_of(response)
    assert shown and all("<script>" not in m for m in shown)
    medication = MedicationStatement.objects.get(patient=patient)
    flag = ConflictFlag.objects.get(medication=medication)
    for url in (
        reverse("clinic:patient-edit", args=[patient.pk]),
        reverse("clinic:medication-edit", args=[medication.pk]),
        reverse("clinic:flag", args=[flag.pk]),
    ):
        content = html(client.get(url))
        assert "<script>alert(1)" not in content and "&lt;script&gt;alert(1)" in content, url
    live = check(client, name=name)
    assert "<script>alert" not in live


def test_medication_edit_records_the_last_dose(login, nurse, norco):
    last = (patient_today(norco.patient) - dt.timedelta(days=5)).isoformat()
    data = {**MEDICATION, "release": norco.release, "source": norco.source, "last_dose_date": last}
    response = login(nurse).post(reverse("clinic:medication-edit", args=[norco.pk]), data)
    assert response.status_code == 302
    norco.refresh_from_db()
    assert norco.last_dose_date.isoformat() == last
    assert last_history(norco).history_change_reason == "medication changed (last_dose_date)"


def test_archive_a_medication_with_a_reason_resolves_its_flag(login, prescriber, conflict):
    url = reverse("clinic:medication-archive", args=[conflict.medication_id])
    client = login(prescriber)
    assert client.get(url).status_code == 405
    response = client.post(url, {"reason": ""})
    assert "required" in error_beside(response, "id_reason")
    assert ConflictFlag.objects.get(pk=conflict.pk).status == FlagStatus.OPEN
    response = client.post(url, {"reason": "stopped in 2024"})
    assert response.status_code == 302
    conflict.refresh_from_db()
    assert conflict.status == FlagStatus.RESOLVED
    history = last_history(MedicationStatement.all_objects.get(pk=conflict.medication_id))
    assert (history.history_user, history.history_change_reason) == (prescriber, "archived: stopped in 2024")


def test_a_nurse_archiving_an_opioid_conflict_gets_the_refusal_page(login, nurse, conflict):
    response = login(nurse).post(reverse("clinic:medication-archive", args=[conflict.medication_id]), {"reason": "x"})
    assert response.status_code == 403 and "Only a prescriber" in html(response)
    assert ConflictFlag.objects.get(pk=conflict.pk).status == FlagStatus.OPEN


# --- Labs -----------------------------------------------------------------------------------------

LAB = {"test": "ALT", "test_name": "", "value": "250", "unit": "U/L", "result": "", "ref_low": "7", "ref_high": "40"}
LAB |= {"collected_at": "2026-07-01T09:00", "lab_source": "City Lab"}
# A collection time in the future is refused: the tests that save LAB run on a clock the day after it.
AFTER_LAB = time_machine.travel(dt.datetime(2026, 7, 2, 12, 0, tzinfo=dt.UTC), tick=False)


@AFTER_LAB
def test_lab_add_saves_in_the_patients_time_and_shows_LAB_2_findings(login, nurse, patient):
    response = login(nurse).post(reverse("clinic:lab-add", args=[patient.pk]), LAB)
    assert response.status_code == 302
    result = LabResult.objects.get(patient=patient)
    assert result.collected_at == dt.datetime(2026, 7, 1, 8, 0, tzinfo=dt.UTC)  # 09:00 in London, summer time
    history = last_history(result)
    assert (history.history_user, history.history_change_reason) == (nurse, "lab result added")
    task = ClinicianTask.objects.get(key=f"lab2-review:{result.pk}")
    shown = messages_of(response)
    assert any(
        "step-ups blocked pending review (LAB-2)" in m and reverse("clinic:task", args=[task.pk]) in m for m in shown
    )
    assert any("No AST on file" in m for m in shown)


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"value": "-5"}, "id_value", "cannot be negative"),
        ({"ref_low": "50"}, "id_ref_high", "below the lower limit"),
        ({"collected_at": "1899-01-01T09:00"}, "id_collected_at", "1900"),
        ({"collected_at": "2099-01-01T09:00"}, "id_collected_at", "future"),
        ({"test": "UDS", "unit": "", "ref_low": "", "ref_high": ""}, "id_value", "has a result, not a value"),
        ({"unit": ""}, "id_unit", "Enter the unit"),
    ],
)
def test_lab_add_errors_are_beside_the_field_and_nothing_is_written(login, nurse, patient, changes, field, words):
    response = login(nurse).post(reverse("clinic:lab-add", args=[patient.pk]), {**LAB, **changes})
    assert response.status_code == 200
    assert words in error_beside(response, field)
    assert 'value="City Lab"' in html(response)
    assert not LabResult.all_objects.exists() and not ClinicianTask.objects.exists()


@AFTER_LAB
def test_a_positive_urine_screen_shows_its_conflict(login, nurse, patient):
    data = {**LAB, "test": "UDS", "value": "", "unit": "", "result": "positive", "ref_low": "", "ref_high": ""}
    response = login(nurse).post(reverse("clinic:lab-add", args=[patient.pk]), data)
    assert response.status_code == 302
    assert any("OPIOID CONFLICT: Opioid on urine drug screen" in m for m in messages_of(response))


# --- Reminder preferences (clinic and portal) -----------------------------------------------------

PREFS = {"reminders_by_email": "on", "nightly_dose_reminders": "on", "dose_time": "bedtime", "reminder_time": "20:30"}
PREFS |= {"quiet_hours_start": "23:00", "quiet_hours_end": "07:00"}


def test_clinic_sets_reminder_preferences_through_the_service(login, nurse, patient):
    response = login(nurse).post(reverse("clinic:reminder-preferences", args=[patient.pk]), PREFS)
    assert response.status_code == 302
    patient.refresh_from_db()
    assert (patient.nightly_dose_reminders, patient.reminder_time) == (True, dt.time(20, 30))
    history = last_history(patient)
    assert history.history_user == nurse and "by the clinic" in history.history_change_reason


def test_clinic_reminder_error_is_beside_the_channel(login, nurse, patient):
    response = login(nurse).post(
        reverse("clinic:reminder-preferences", args=[patient.pk]), {**PREFS, "reminders_by_sms": "on"}
    )
    assert "no mobile number" in error_beside(response, "id_reminders_by_sms")
    patient.refresh_from_db()
    assert patient.nightly_dose_reminders is False


def test_the_patient_sets_their_own_reminders_in_the_portal(client, patient_user, patient, sibling_patient):
    client.force_login(patient_user)
    assert client.get(reverse("portal-reminders")).status_code == 200
    response = client.post(reverse("portal-reminders"), {**PREFS, "patient": sibling_patient.pk})
    assert response.status_code == 302
    patient.refresh_from_db()
    sibling_patient.refresh_from_db()
    assert patient.nightly_dose_reminders is True
    assert sibling_patient.nightly_dose_reminders is False  # no id is read from the request
    history = last_history(patient)
    assert history.history_user == patient_user and "by the patient" in history.history_change_reason
    page = client.get(reverse("portal-reminders"))
    assert "Reminder preferences saved." in html(page)


def test_portal_reminder_error_is_beside_the_field(client, patient_user, patient):
    client.force_login(patient_user)
    response = client.post(reverse("portal-reminders"), {**PREFS, "quiet_hours_start": "late"})
    assert response.status_code == 200
    assert 'id="id_quiet_hours_start_error"' in html(response) and 'value="20:30"' in html(response)


def test_staff_have_no_portal_reminders_page_and_patients_no_clinic_one(client, prescriber, patient_user, patient):
    client.force_login(prescriber)
    assert client.get(reverse("portal-reminders")).status_code == 404
    client.force_login(patient_user)
    response = client.post(reverse("clinic:reminder-preferences", args=[patient.pk]), PREFS)
    assert response.status_code == 302 and reverse("clinic:login") in response.url
    patient.refresh_from_db()
    assert patient.nightly_dose_reminders is False


# --- Status, flags, tasks -------------------------------------------------------------------------


def test_flag_page_shows_the_finding(login, nurse, conflict):
    content = text(login(nurse).get(reverse("clinic:flag", args=[conflict.pk])))
    assert "Norco 5/325" in content and "hydrocodone" in content and "10 days" in content
    assert f"{conflict.earliest_safe_start:%-d %b %Y}" in content
    # a nurse sees no form for a conflict, only why
    assert 'name="action"' not in content
    assert (
        "Only a prescriber of the patient's clinic can acknowledge, override or resolve an opioid conflict" in content
    )


def test_prescriber_acknowledges_a_flag_with_a_reason_and_expiry(login, prescriber, conflict):
    data = {"action": "acknowledge", "ack-reason": "not_taking", "ack-note": "", "ack-expires_at": "2027-01-10T09:00"}
    data |= {"ack-uds_result": "negative", "ack-naloxone_challenge": ""}
    response = login(prescriber).post(reverse("clinic:flag", args=[conflict.pk]), data)
    assert response.status_code == 302
    conflict.refresh_from_db()
    assert (conflict.status, conflict.acknowledged_by, conflict.acknowledged_reason) == (
        "acknowledged",
        prescriber,
        "not_taking",
    )
    assert conflict.expires_at == dt.datetime(2027, 1, 10, 9, 0, tzinfo=dt.UTC)  # London in winter: UTC
    assert conflict.uds_result == "negative"  # OPI-W2: the test result is a field of the flag, not a note
    assert last_history(conflict).history_user == prescriber


def test_acknowledge_other_without_a_note_is_an_error_beside_the_note(login, prescriber, conflict):
    data = {"action": "acknowledge", "ack-reason": "other", "ack-note": ""}
    response = login(prescriber).post(reverse("clinic:flag", args=[conflict.pk]), data)
    assert response.status_code == 200
    assert "Explain the reason" in error_beside(response, "id_ack-note")
    assert ConflictFlag.objects.get(pk=conflict.pk).status == FlagStatus.OPEN


def test_shortening_a_washout_below_seven_days_is_refused_beside_it_OPI_W2(login, prescriber, conflict):
    data = {"action": "acknowledge", "ack-reason": "clinical_judgement", "ack-note": "n"}
    data |= {"ack-shortened_washout_days": "5", "ack-shortened_reason": "urgent"}
    response = login(prescriber).post(reverse("clinic:flag", args=[conflict.pk]), data)
    assert "7 days" in error_beside(response, "id_ack-shortened_washout_days")
    conflict.refresh_from_db()
    assert (conflict.status, conflict.shortened_washout_days) == ("open", None)


def test_a_nurse_posting_an_acknowledgement_of_a_conflict_gets_the_refusal_page(login, nurse, conflict):
    data = {"action": "acknowledge", "ack-reason": "not_taking"}
    response = login(nurse).post(reverse("clinic:flag", args=[conflict.pk]), data)
    assert response.status_code == 403 and "Only a prescriber" in html(response)
    assert ConflictFlag.objects.get(pk=conflict.pk).status == FlagStatus.OPEN


def test_a_service_refusal_on_a_flag_is_shown_beside_the_field_or_as_the_refusal_page(
    login, prescriber, conflict, monkeypatch
):
    def refuse(**kw):
        raise ValidationError({"note": "Say why you override."})

    monkeypatch.setattr(services, "flag_override", refuse, raising=False)
    client = login(prescriber)
    url = reverse("clinic:flag", args=[conflict.pk])
    response = client.post(url, {"action": "override", "ovr-note": "  x"})
    assert "Say why you override." in error_beside(response, "id_ovr-note")

    def deny(**kw):
        raise PermissionDenied("Only a prescriber can resolve an opioid conflict.")

    monkeypatch.setattr(services, "flag_resolve", deny, raising=False)
    response = client.post(url, {"action": "resolve", "res-reason": "entered_in_error"})
    assert response.status_code == 403 and "Only a prescriber can resolve" in html(response)


def test_a_nurse_cannot_close_a_liver_review(login, nurse, patient, monkeypatch):
    task = f.ClinicianTaskFactory(patient=patient, kind="lab_review", title="Liver review")
    monkeypatch.setattr(services, "task_close", lambda **kw: pytest.fail("called"), raising=False)
    client = login(nurse)
    assert "Only a prescriber" in html(client.get(reverse("clinic:task", args=[task.pk])))
    response = client.post(reverse("clinic:task", args=[task.pk]), {"status": "done", "note": "ok"})
    assert response.status_code == 403


def test_a_resolved_flag_cannot_be_acknowledged_again(login, prescriber, conflict):
    ConflictFlag.objects.filter(pk=conflict.pk).update(status="resolved", resolved_reason="washout complete")
    response = login(prescriber).post(
        reverse("clinic:flag", args=[conflict.pk]), {"action": "acknowledge", "ack-reason": "not_taking"}
    )
    assert response.status_code == 302
    assert ConflictFlag.objects.get(pk=conflict.pk).status == FlagStatus.RESOLVED
    assert "This flag is resolved." in messages_of(response)


def test_the_edit_page_offers_a_nurse_no_archive_for_an_opioid_conflict(login, nurse, conflict):
    content = html(login(nurse).get(reverse("clinic:patient-edit", args=[conflict.patient_id])))
    assert reverse("clinic:medication-archive", args=[conflict.medication_id]) not in content
    assert "prescribers only" in content


def test_washout_confirmed_before_the_earliest_safe_start_is_refused_beside_the_reason_OPI_W2(
    login, prescriber, conflict
):
    data = {"action": "acknowledge", "ack-reason": "washout_confirmed", "ack-note": "patient says stopped"}
    response = login(prescriber).post(reverse("clinic:flag", args=[conflict.pk]), data)
    assert response.status_code == 200
    assert "The washout is not complete" in error_beside(response, "id_ack-reason")
    assert "patient says stopped</textarea>" in html(response)
    assert ConflictFlag.objects.get(pk=conflict.pk).status == FlagStatus.OPEN


def test_a_prescriber_overrides_a_conflict_with_a_note(login, prescriber, conflict):
    data = {"action": "override", "ovr-note": "palliative care, agreed with the patient", "ovr-expires_at": ""}
    response = login(prescriber).post(reverse("clinic:flag", args=[conflict.pk]), data)
    assert response.status_code == 302
    conflict.refresh_from_db()
    assert (conflict.status, conflict.acknowledged_reason, conflict.acknowledged_by) == (
        "acknowledged",
        "clinical_judgement",
        prescriber,
    )


def test_resolving_a_flag_entered_in_error_archives_its_medication(login, prescriber, conflict):
    response = login(prescriber).post(
        reverse("clinic:flag", args=[conflict.pk]), {"action": "resolve", "res-reason": "entered_in_error"}
    )
    assert response.status_code == 302
    conflict.refresh_from_db()
    assert conflict.status == FlagStatus.RESOLVED
    assert MedicationStatement.all_objects.get(pk=conflict.medication_id).deleted_at is not None


def test_closing_a_task_through_the_service_keeps_who_and_why(login, nurse, patient):
    task = f.ClinicianTaskFactory(patient=patient, kind="missed_checkins", title="Missed two check-ins")
    client = login(nurse)
    response = client.post(reverse("clinic:task", args=[task.pk]), {"status": "cancelled", "note": ""})
    assert "Say what you reviewed or why" in error_beside(response, "id_note")
    response = client.post(reverse("clinic:task", args=[task.pk]), {"status": "done", "note": "phoned: all well"})
    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.status, task.completed_by, task.completed_note) == ("done", nurse, "phoned: all well")
    assert last_history(task).history_change_reason == "done: phoned: all well"


def test_status_change_through_the_service_offers_no_active(login, nurse, patient):
    client = login(nurse)
    url = reverse("clinic:patient-status", args=[patient.pk])
    assert 'value="active"' not in html(client.get(url))  # on LDN only by starting a plan
    response = client.post(url, {"status": "paused", "reason": ""})
    assert "Say why" in error_beside(response, "id_reason")
    response = client.post(url, {"status": "paused", "reason": "travelling for a month"})
    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.status == "paused"
    history = last_history(patient)
    assert (history.history_user, history.history_change_reason) == (nurse, "status paused: travelling for a month")


# --- Privacy, every page and every POST -----------------------------------------------------------


@pytest.fixture
def record_urls(patient, conflict):
    condition = f.PatientConditionFactory(patient=patient)
    task = f.ClinicianTaskFactory(patient=patient)
    return [
        ("get", reverse("clinic:patient-edit", args=[patient.pk])),
        ("post", reverse("clinic:patient-edit", args=[patient.pk])),
        ("post", reverse("clinic:condition-add", args=[patient.pk])),
        ("post", reverse("clinic:condition-archive", args=[condition.pk])),
        ("get", reverse("clinic:medication-add", args=[patient.pk])),
        ("post", reverse("clinic:medication-add", args=[patient.pk])),
        ("get", reverse("clinic:medication-edit", args=[conflict.medication_id])),
        ("post", reverse("clinic:medication-edit", args=[conflict.medication_id])),
        ("post", reverse("clinic:medication-archive", args=[conflict.medication_id])),
        ("get", reverse("clinic:medication-check") + f"?name=Norco&patient={patient.pk}"),
        ("get", reverse("clinic:lab-add", args=[patient.pk])),
        ("post", reverse("clinic:lab-add", args=[patient.pk])),
        ("get", reverse("clinic:reminder-preferences", args=[patient.pk])),
        ("post", reverse("clinic:reminder-preferences", args=[patient.pk])),
        ("get", reverse("clinic:patient-status", args=[patient.pk])),
        ("post", reverse("clinic:patient-status", args=[patient.pk])),
        ("get", reverse("clinic:flag", args=[conflict.pk])),
        ("post", reverse("clinic:flag", args=[conflict.pk])),
        ("get", reverse("clinic:task", args=[task.pk])),
        ("post", reverse("clinic:task", args=[task.pk])),
    ]


def test_another_clinics_prescriber_gets_404_on_every_page_and_post(login, other_prescriber, record_urls, patient):
    history = patient.history.count()
    client = login(other_prescriber)
    data = {**MEDICATION, **PREFS, "reason": "x", "status": "paused", "action": "acknowledge", "ack-reason": "other"}
    for method, url in record_urls:
        response = getattr(client, method)(url, data if method == "post" else None)
        assert response.status_code == 404, (method, url, response.status_code)
        assert b"Ashdown" not in response.content
    patient.refresh_from_db()
    assert patient.history.count() == history
    assert MedicationStatement.all_objects.filter(patient=patient).count() == 1


def test_a_patient_login_is_sent_to_the_staff_login_from_every_clinic_page(client, patient_user, record_urls):
    client.force_login(patient_user)
    for method, url in [*record_urls, ("get", reverse("clinic:patient-new"))]:
        response = getattr(client, method)(url, {"reason": "x"} if method == "post" else None)
        assert response.status_code == 302 and reverse("clinic:login") in response.url, (method, url)


# --- Query counts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [5, 50])
def test_edit_page_queries_do_not_grow_with_the_medication_list(
    login, nurse, patient, rows, django_assert_max_num_queries
):
    for i in range(rows):
        f.MedicationFactory(patient=patient, name="Norco 5/325" if i % 2 else f"sertraline {i} mg")
        f.PatientConditionFactory(
            patient=patient, condition=["fibromyalgia", "crohns", "long_covid"][i % 3]
        ) if i < 3 else None
    client = login(nurse)
    with django_assert_max_num_queries(10):
        assert client.get(reverse("clinic:patient-edit", args=[patient.pk])).status_code == 200


def test_each_record_page_has_a_small_fixed_query_count(
    login, prescriber, patient, conflict, django_assert_max_num_queries
):
    task = f.ClinicianTaskFactory(patient=patient)
    client = login(prescriber)
    for url in (
        reverse("clinic:patient-new"),
        reverse("clinic:medication-add", args=[patient.pk]),
        reverse("clinic:medication-edit", args=[conflict.medication_id]),
        reverse("clinic:lab-add", args=[patient.pk]),
        reverse("clinic:reminder-preferences", args=[patient.pk]),
        reverse("clinic:patient-status", args=[patient.pk]),
        reverse("clinic:flag", args=[conflict.pk]),
        reverse("clinic:task", args=[task.pk]),
    ):
        with django_assert_max_num_queries(8):
            assert client.get(url).status_code == 200, url


def test_the_patients_address_is_kept_for_the_printed_prescription(login, prescriber, patient):
    page = login(prescriber).get(reverse("clinic:patient-edit", args=[patient.pk]))
    data = {name: (value or "") for name, value in page.context["form"].initial.items()}
    data["address"] = "12 Station Road\nLeeds LS1 4AB"
    response = login(prescriber).post(reverse("clinic:patient-edit", args=[patient.pk]), data)
    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.address == "12 Station Road\nLeeds LS1 4AB"
    assert "address" in patient.history.latest().history_change_reason


def test_a_nurse_invites_the_patient_to_the_portal_from_the_clinic_pages(
    login, nurse, patient, smtp_server, django_capture_on_commit_callbacks
):
    page = login(nurse).get(reverse("clinic:patient-edit", args=[patient.pk])).content.decode()
    assert "Invite to the patient portal" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = login(nurse).post(reverse("clinic:portal-invite", args=[patient.pk]), follow=True)
    assert "Invitation to the patient portal was sent to" in response.content.decode()
    patient.refresh_from_db()
    assert patient.user is not None
    assert [m["To"] for m in smtp_server.recorder.messages] == [patient.email]


def test_a_clinic_admin_or_another_clinic_cannot_invite(login, clinic_admin, other_prescriber, patient, smtp_server):
    refused = login(clinic_admin).post(reverse("clinic:portal-invite", args=[patient.pk]))
    assert refused.status_code == 403 and "nurse or prescriber" in refused.content.decode()
    assert login(other_prescriber).post(reverse("clinic:portal-invite", args=[patient.pk])).status_code == 404
    assert smtp_server.recorder.messages == []
