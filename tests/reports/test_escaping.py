"""Hostile names and notes, everywhere they appear: CSV exports, the admin, the patient's own pages and
reminder emails.

Already covered elsewhere, not repeated here: check-in notes ``<script>`` on the check-in's admin change
page (tests/symptoms/test_checkin_pages.py::test_notes_are_escaped_on_the_clinicians_page).
"""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse

from ldnclinic import messaging
from patients.models import Patient
from patients.today import patient_today
from reports.csvfile import FORMULA_STARTS
from reports.exports import EXPORTS
from symptoms.models import SymptomCheckIn
from tests import factories as f
from tests.symptoms.test_checkin_pages import answers
from tests.titration.test_reminders import active_patient, send_due, titrating
from titration.models import Reminder

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
HYPERLINK = '=HYPERLINK("http://evil")'
CALC = "=cmd|' /C calc'!A0"
MULTILINE = "line one, with a comma\nline \"two\" said 'she'\r\n=not a formula in the middle"
RAW_HTML = (SCRIPT, IMG)


@pytest.fixture
def hostile(clinic):
    """Three patients whose names, MRNs, notes, tasks, medications and hold reasons try to inject."""
    scripted = f.PatientFactory(clinic=clinic, first_name=SCRIPT, last_name="Scripter", mrn="@A-1", status="active")
    hyper = f.PatientFactory(clinic=clinic, first_name=HYPERLINK, last_name="Hyper", mrn="-A-2")
    quoted = f.PatientFactory(clinic=clinic, first_name='Ann "Quote",', last_name="O'Brien", mrn="+A-3")
    for patient, notes in ((scripted, IMG), (hyper, CALC), (quoted, MULTILINE)):
        checkin = f.CheckInFactory(patient=patient, notes=notes, recorded_at=dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC))
        f.SideEffectFactory(checkin=checkin, effect="other", severity=1, description="=1+2")
        f.ClinicianTaskFactory(patient=patient, title=HYPERLINK)
    f.MedicationFactory(patient=hyper, name=f"{CALC} Norco 5/325 {IMG}")  # the opioid engine flags it
    plan = f.PlanFactory(patient=scripted)
    f.StepFactory(plan=plan, sequence=1, dose_mg=Decimal("1.5"), status="held", note=f"@SUM(1+1) {IMG}")
    return scripted, hyper, quoted


# --- (a) CSV exports ---------------------------------------------------------------------------------


def export(client, key: str) -> list[list[str]]:
    response = client.get(reverse("reports:export", args=[key]))
    assert response.status_code == 200
    raw = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(raw, newline="")))


@pytest.mark.parametrize("key", list(EXPORTS))
def test_no_csv_cell_starts_with_a_formula_character(key, login, prescriber, hostile):
    rows = export(login(prescriber), key)
    cells = [c for row in rows for c in row]
    assert [c for c in cells if c.startswith(FORMULA_STARTS)] == []
    assert "'@A-1" in cells and "'-A-2" in cells and "'+A-3" in cells  # MRNs are text
    assert f"'{HYPERLINK} Hyper" in cells
    # CSV is data, not HTML: the text is kept as typed (a spreadsheet does not run tags).
    assert f"{SCRIPT} Scripter" in cells
    assert 'Ann "Quote", O\'Brien' in cells


def test_checkin_notes_round_trip_and_formulas_are_neutralised(login, prescriber, hostile):
    rows = export(login(prescriber), "checkins")
    notes = {row[1]: row[12] for row in rows[1:]}
    assert notes == {"'@A-1": IMG, "'-A-2": f"'{CALC}", "'+A-3": MULTILINE}
    assert {row[11] for row in rows[1:]} == {"Other (=1+2): mild"}  # not at the start: left alone


def test_safety_and_patient_exports_neutralise_titles_medications_and_hold_reasons(login, prescriber, hostile):
    client = login(prescriber)
    safety = export(client, "safety")
    assert f"'{HYPERLINK}" in [row[6] for row in safety if row[1] == "Clinician task"]
    assert f"'{CALC} Norco 5/325 {IMG}" in [row[6] for row in safety if row[1] == "Opioid flag"]
    patients = {row[1]: row for row in export(client, "patients")[1:]}
    assert patients["'@A-1"][7:9] == ["yes", f"'@SUM(1+1) {IMG}"]


# --- (b) The admin -----------------------------------------------------------------------------------


def admin_pages(hostile) -> list[str]:
    scripted, hyper, quoted = hostile
    checkins = SymptomCheckIn.objects.order_by("pk")
    pages = [
        reverse("admin:patients_patient_changelist"),
        reverse("admin:patients_patient_changelist") + "?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        reverse("admin:symptoms_symptomcheckin_changelist"),
        reverse("admin:patients_conflictflag_changelist"),
        reverse("admin:patients_cliniciantask_changelist"),
    ]
    for patient in hostile:
        pages += [
            reverse("admin:patients_patient_change", args=[patient.pk]),
            reverse("admin:patients_patient_history", args=[patient.pk]),
        ]
    pages += [reverse("admin:symptoms_symptomcheckin_change", args=[c.pk]) for c in checkins]
    return pages


@pytest.mark.parametrize("role", ["prescriber", "nurse", "clinic_admin"])
def test_admin_pages_escape_names_notes_and_medications(role, request, login, hostile):
    client = login(request.getfixturevalue(role))
    for page in admin_pages(hostile):
        response = client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        for raw in RAW_HTML:
            assert raw not in html, (page, raw)


def test_admin_shows_the_escaped_text(login, prescriber, hostile):
    scripted, hyper, quoted = hostile
    client = login(prescriber)
    changelist = client.get(reverse("admin:patients_patient_changelist")).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in changelist
    assert "Ann &quot;Quote&quot;," in changelist and "O&#x27;Brien" in changelist
    assert "=HYPERLINK(&quot;http://evil&quot;)" in changelist
    change = client.get(reverse("admin:patients_patient_change", args=[hyper.pk])).content.decode()
    # the open flag's message names the medication: escaped too
    assert "Norco 5/325 &lt;img src=x onerror=alert(1)&gt;" in change
    checkin = SymptomCheckIn.objects.get(patient=scripted)
    page = client.get(reverse("admin:symptoms_symptomcheckin_change", args=[checkin.pk])).content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # the notes
    assert "Scripter, &lt;script&gt;alert(1)&lt;/script&gt; (@A-1)" in page  # the patient's name in the form


# --- (c) The patient's own pages ---------------------------------------------------------------------


@pytest.fixture
def scripted_login(hostile):
    scripted = hostile[0]
    scripted.user = f.UserFactory(username="scripted")
    scripted.save()
    return scripted.user


def test_patient_pages_escape_their_own_name(client, scripted_login):
    client.force_login(scripted_login)
    for page in ("/me/", "/me/thanks/", "/me/checkin/"):
        html = client.get(page).content.decode()
        assert SCRIPT not in html, page
    assert "Hello, &lt;script&gt;alert(1)&lt;/script&gt;" in client.get("/me/").content.decode()
    assert "Thank you, &lt;script&gt;alert(1)&lt;/script&gt;" in client.get("/me/thanks/").content.decode()


def test_checkin_form_shown_again_escapes_what_the_patient_typed(client, scripted_login):
    client.force_login(scripted_login)
    response = client.post("/me/checkin/", answers(pain="11", notes=IMG, other_effect=SCRIPT))
    assert response.status_code == 200  # invalid: the form comes back with the answers
    html = response.content.decode()
    for raw in RAW_HTML:
        assert raw not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_checkin_notes_saved_from_the_portal_stay_escaped_everywhere(client, scripted_login, prescriber):
    client.force_login(scripted_login)
    assert client.post("/me/checkin/", answers(notes=f"{IMG}\n{CALC}")).status_code == 302
    assert IMG not in client.get("/me/").content.decode()
    client.force_login(prescriber)
    checkin = SymptomCheckIn.objects.filter(patient__user=scripted_login).latest("recorded_at")
    assert IMG not in client.get(reverse("admin:symptoms_symptomcheckin_change", args=[checkin.pk])).content.decode()
    notes = {row[12] for row in export(client, "checkins")[1:]}
    assert f"{IMG}\n{CALC}" in notes  # starts with "<": kept as typed, newline and all


# --- (d) Reminder emails -----------------------------------------------------------------------------


def test_reminder_email_is_plain_text_and_a_name_cannot_add_a_header(clinic, smtp_server):
    patient = active_patient(clinic, first_name="Eve\r\nBcc: evil@evil.test", last_name=SCRIPT)
    today = patient_today(patient)
    titrating(patient, today)
    assert send_due(today, patient) >= 1
    messages = smtp_server.recorder.messages
    assert messages
    for message in messages:
        assert message["X-Envelope-To"] == "pat@example.test"  # no other recipient at SMTP level
        assert message.get_all("Bcc") is None and message.get_all("Cc") is None
        assert message.get_content_type() == "text/plain"
        text = message.as_string()
        assert "evil" not in text and "<script" not in text and "Eve" not in text  # names are not in reminders


def test_a_header_value_with_a_line_break_is_refused_not_sent(settings):
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    for outgoing in (
        messaging.Outgoing(to="pat@example.test", subject="LDN\r\nBcc: evil@evil.test", body="b", key="k1"),
        messaging.Outgoing(to="pat@example.test\r\nBcc: evil@evil.test", subject="LDN", body="b", key="k2"),
    ):
        with pytest.raises(messaging.PermanentSendError):
            messaging.send_email(outgoing)
    assert mail.outbox == []


def test_an_address_with_a_line_break_fails_the_reminder_with_a_non_smtp_mailer(clinic, settings):
    """The console, file and locmem mailers refuse it too; the tick marks that reminder failed (shown
    to the clinic) and goes on, instead of stopping with the row left 'sending'."""
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    patient = active_patient(clinic)
    Patient.objects.filter(pk=patient.pk).update(email="pat@example.test\r\nBcc: evil@evil.test")
    patient.refresh_from_db()
    today = patient_today(patient)
    titrating(patient, today)
    send_due(today, patient)
    assert mail.outbox == []
    step_up = Reminder.objects.get(patient=patient, kind="step_up")
    assert step_up.status == "failed" and "bad address or header" in step_up.last_error


def test_an_address_with_a_line_break_fails_the_reminder_over_smtp(clinic, smtp_server):
    patient = active_patient(clinic)
    Patient.objects.filter(pk=patient.pk).update(email="pat@example.test\r\nBcc: evil@evil.test")  # unvalidated write
    patient.refresh_from_db()
    today = patient_today(patient)
    titrating(patient, today)
    send_due(today, patient)
    assert smtp_server.recorder.messages == []
    step_up = Reminder.objects.get(patient=patient, kind="step_up")
    assert step_up.status == "failed" and "bad address" in step_up.last_error
