"""The patient's check-in: from a reminder's link and from the portal (issue: getting in, the check-in,
what a check-in changes, bad input)."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from patients.models import ConflictFlag, MedicationStatement
from symptoms.invitations import CheckInInvitation, invitation_for
from symptoms.models import SymptomCheckIn
from tests import factories as f
from titration import rules, services

ANSWERS = {
    "pain": "6",
    "fatigue": "5",
    "sleep_quality": "4",
    "mood": "6",
    "took_dose_as_prescribed": "yes",
    "nights_missed": "0",
    "opioid_use": "no",
    "notes": "",
    "other_effect": "",
    **{
        f"effect_{e}": "0"
        for e in (
            "vivid_dreams",
            "insomnia",
            "headache",
            "nausea",
            "fatigue",
            "vomiting",
            "decreased_appetite",
            "other",
        )
    },
}


def answers(**changes):
    return {**ANSWERS, "submission_id": str(uuid.uuid4()), **changes}


@pytest.fixture
def on_ldn(patient):
    patient.status = "active"
    patient.save()
    rx = f.PrescriptionFactory(patient=patient, written_on=dt.date(2026, 1, 1), start_on=dt.date(2026, 1, 1))
    today = timezone.localdate()
    steps = [rules.StepSpec(Decimal("1.5"), 7), rules.StepSpec(Decimal("3.0"), 7)]
    plan = services.plan_create(
        actor=rx.prescriber, patient=patient, custom_steps=steps, start=today - dt.timedelta(days=3), prescription=rx
    )
    services.plan_start(actor=rx.prescriber, plan=plan, start=today - dt.timedelta(days=3))
    return plan


@pytest.fixture
def link(patient):
    _, token = invitation_for(patient, timezone.localdate())
    return f"/c/{token}/"


def test_link_opens_the_form_with_tonights_dose_and_next_step(client, on_ldn, link):
    page = client.get(link)
    assert page.status_code == 200
    html = page.content.decode()
    assert "1.5 mg (1 capsule of 1.5 mg)" in html
    assert "Next step: 3.0 mg (2 capsules of 1.5 mg)" in html
    assert 'for="id_pain_0"' in html  # every radio is labelled


def test_opening_the_link_twice_does_not_use_it_up(client, on_ldn, link):
    client.get(link)
    client.get(link)
    assert CheckInInvitation.objects.get().used_at is None


def test_submitting_stores_once_and_thanks_with_tonights_dose(client, on_ldn, link, patient):
    response = client.post(link, answers(), follow=True)
    assert "Thank you" in response.content.decode()
    assert "1.5 mg (1 capsule of 1.5 mg)" in response.content.decode()
    again = client.post(link, answers())
    assert again.status_code == 410
    assert "already been used" in again.content.decode()
    assert SymptomCheckIn.objects.filter(patient=patient).count() == 1


def test_a_used_link_shows_nothing_about_the_patient_to_anyone_else_or_once_expired(client, on_ldn, link):
    """The thank-you page (name, tonight's dose) is for the browser that sent the check-in, while the link
    is valid; another browser, or the same one after the link expired, is told only that it was used."""
    client.post(link, answers())
    assert "1.5 mg" in client.get(link).content.decode()  # the sender's own thank-you page
    stranger = Client()
    page = stranger.get(link)
    html = page.content.decode()
    assert page.status_code == 410 and "already been used" in html and "Log in to check in" in html
    assert on_ldn.patient.first_name not in html and "1.5 mg" not in html and "capsule" not in html
    CheckInInvitation.objects.update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    html = client.get(link).content.decode()
    assert "already been used" in html and on_ldn.patient.first_name not in html and "1.5 mg" not in html


def test_expired_link_gets_a_plain_page_saying_what_happened(client, patient, link):
    CheckInInvitation.objects.update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    page = client.get(link)
    assert page.status_code == 410
    assert "expired" in page.content.decode()
    assert "Log in to check in" in page.content.decode()


def test_altered_link_gets_a_plain_page_not_an_error(client, patient, link):
    page = client.get(link[:-5] + "XXXX/")
    assert page.status_code == 404
    assert "does not work" in page.content.decode()


def test_a_link_opens_nothing_else(client, patient, link):
    client.get(link)
    assert client.get("/me/").status_code == 302  # still not logged in
    assert client.get("/admin/patients/patient/").status_code == 302


@pytest.mark.parametrize(
    ("field", "value"), [("pain", "11"), ("mood", "-1"), ("nights_missed", "8"), ("opioid_use", "maybe")]
)
def test_out_of_range_answers_are_refused_beside_the_field(client, patient, link, field, value):
    page = client.post(link, answers(**{field: value}))
    assert page.status_code == 200
    assert f'id="id_{field}_errors"' in page.content.decode()
    assert not SymptomCheckIn.objects.exists()
    assert CheckInInvitation.objects.get().used_at is None


def test_notes_over_the_limit_get_a_clear_message(client, patient, link):
    page = client.post(link, answers(notes="x" * 2001))
    assert "Please keep notes under 2000 characters." in page.content.decode()
    assert not SymptomCheckIn.objects.exists()


def test_the_same_submission_twice_is_stored_once_from_the_portal(client, patient, patient_user):
    client.force_login(patient_user)
    data = answers()
    client.post("/me/checkin/", data)
    client.post("/me/checkin/", data)
    assert SymptomCheckIn.objects.filter(patient=patient).count() == 1


@pytest.mark.django_db(transaction=True)
def test_moderate_headache_holds_the_next_step_with_the_reason_SE_2(client, on_ldn, link):
    response = client.post(link, answers(effect_headache="2"), follow=True)
    html = response.content.decode()
    steps = list(on_ldn.steps.order_by("sequence"))
    assert steps[0].status in ("stepped_back", "held")
    assert "headache" in (steps[0].note + " ".join(s.note for s in steps)).lower()
    assert "Tonight" in html


def test_yes_to_the_opioid_question_puts_a_medication_to_verify_and_flags_it(client, patient, link):
    client.post(link, answers(opioid_use="yes"))
    med = MedicationStatement.objects.get(patient=patient, source="check_in")
    assert ConflictFlag.objects.get(medication=med).kind == "caution"


def test_notes_are_escaped_on_the_clinicians_page(client, patient, link, prescriber):
    client.post(link, answers(notes="<script>alert(1)</script>"))
    checkin = SymptomCheckIn.objects.get()
    client.force_login(prescriber)
    html = client.get(f"/admin/symptoms/symptomcheckin/{checkin.pk}/change/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_portal_pages_are_for_patients_only(client, prescriber, patient_user, sibling_patient):
    client.force_login(prescriber)
    assert client.get("/me/").status_code == 404
    client.force_login(patient_user)
    f.CheckInFactory(patient=sibling_patient, pain=9, notes="sibling's note")
    page = client.get("/me/").content.decode()
    assert "sibling" not in page


def test_portal_shows_history_for_the_chart_and_the_next_checkin(client, on_ldn, patient, patient_user):
    f.CheckInFactory(patient=patient, pain=7, recorded_at=timezone.now() - dt.timedelta(days=2))
    client.force_login(patient_user)
    page = client.get("/me/")
    assert page.context["chart"][-1]["pain"] == 7
    assert page.context["chart"][-1]["dose_mg"] == 1.5
    assert 'id="history-data"' in page.content.decode()  # chart data by json_script
    assert page.context["next_checkin"] is not None


def test_calendar_download_lists_the_next_step_and_checkins(client, on_ldn, patient_user):
    import icalendar

    client.force_login(patient_user)
    response = client.get("/me/calendar.ics")
    assert response["Content-Type"].startswith("text/calendar")
    cal = icalendar.Calendar.from_ical(response.content)
    summaries = [str(e["summary"]) for e in cal.walk("VEVENT")]
    assert any(s.startswith("LDN: step up to 3.0 mg") for s in summaries)
    assert "LDN: weekly check-in" in summaries
    again = icalendar.Calendar.from_ical(client.get("/me/calendar.ics").content)
    uids = sorted(str(e["uid"]) for e in cal.walk("VEVENT"))
    assert uids == sorted(str(e["uid"]) for e in again.walk("VEVENT"))  # stable: a re-import updates, not duplicates


def test_calendar_is_for_the_logged_in_patient_only(client, prescriber):
    assert client.get("/me/calendar.ics").status_code == 302
    client.force_login(prescriber)
    assert client.get("/me/calendar.ics").status_code == 404


def test_another_patients_link_is_a_404_for_a_logged_in_patient(client, patient, sibling_patient, link):
    """A check-in for another patient is a 404: a patient logged in on this device who opens someone
    else's link sees neither the form nor the other patient's dose, and the link is not used up."""
    other_user = f.UserFactory(username="sibling-login")
    sibling_patient.user = other_user
    sibling_patient.save()
    client.force_login(other_user)
    for method in (client.get, client.post):
        page = method(link)
        assert page.status_code == 404
        assert "someone else" in page.content.decode()
        assert patient.first_name not in page.content.decode()
    assert not patient.checkins.exists()
