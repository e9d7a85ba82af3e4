"""Getting into the patient portal: the clinic's invitation, choosing, resetting and changing a password.

Email goes to a real SMTP server on loopback (``smtp_server``), through the same Django mailer
configuration (MAILERS/EMAIL_URL) as reminders.
"""

import datetime as dt
import re
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.tokens import PasswordResetTokenGenerator, default_token_generator
from django.contrib.messages import get_messages
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from patients.models import Patient, Role, User
from symptoms import accounts
from tests import factories as f

NEW_PASSWORD = "violet-harbour-lantern-42"
CONDITION_WORDS = ("fibromyalgia", "crohn", "sclerosis", "covid", "hashimoto", "pain", "naltrexone")
LINK = re.compile(r"https?://\S+/me/password/set/\S+/")


def change_url(patient) -> str:
    return reverse("admin:patients_patient_change", args=[patient.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def body_of(message) -> str:
    return message.get_payload(decode=True).decode()


def link_in(message) -> str:
    """The path of the single link in an email, to follow with the test client."""
    (link,) = LINK.findall(body_of(message))
    return urlsplit(link).path


def button_form(html: str) -> dict:
    """What the "Invite to patient portal" button on a patient's admin page posts, read from the page."""
    start = html.index('<form method="post" action="/admin/patients/patient/">')
    form = html[start : html.index("</form>", start)]
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


@pytest.fixture
def invite(client, django_capture_on_commit_callbacks):
    """Press the invitation button on the patient's admin page, as ``user``."""

    def _invite(user, patient, data=None):
        client.force_login(user)
        if data is None:
            page = client.get(change_url(patient))
            assert page.status_code == 200
            data = button_form(page.content.decode())
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("admin:patients_patient_changelist"), data)
        client.logout()
        return response

    return _invite


def set_password(client, path: str, password: str = NEW_PASSWORD):
    opened = client.get(path)
    assert opened.status_code == 302  # Django moves the token out of the address before showing the form
    form_path = opened.url
    assert client.get(form_path).status_code == 200
    return client.post(form_path, {"new_password1": password, "new_password2": password})


def log_in(client, username: str, password: str = NEW_PASSWORD):
    return client.post(reverse("portal-login"), {"username": username, "password": password})


# --- The invitation -----------------------------------------------------------------------------


def test_invitation_creates_one_patient_login_and_emails_a_link_that_gets_the_patient_in(
    client, invite, nurse, patient, smtp_server
):
    f.PatientConditionFactory(patient=patient, condition="fibromyalgia")
    client.force_login(nurse)
    page = client.get(change_url(patient)).content.decode()
    assert "Invite to patient portal" in page
    logins_before = User.objects.count()

    response = invite(nurse, patient)

    assert response.status_code == 302
    assert response.url == change_url(patient)  # back to the patient's page
    assert any(f"sent to {patient} at {patient.email}" in m for m in messages_of(response))
    assert User.objects.count() == logins_before + 1
    patient.refresh_from_db()
    login = patient.user
    assert login.username == patient.email.lower()
    assert login.email == patient.email
    assert not login.has_usable_password()
    assert not (login.is_staff or login.is_superuser or login.memberships.exists())
    (message,) = smtp_server.recorder.messages
    assert message["X-Envelope-To"] == patient.email
    body = body_of(message)
    assert f"Your username: {login.username}" in body
    assert not any(word in body.lower() for word in CONDITION_WORDS)  # no diagnosis in the email
    assert message.get_content_type() == "text/plain"

    response = set_password(client, link_in(message))
    assert response.status_code == 302
    assert response.url == reverse("portal-password-reset-complete")
    response = log_in(client, login.username)
    assert response.status_code == 302
    assert response.url == reverse("portal-home")
    assert "Hello, Alice" in client.get(reverse("portal-home")).content.decode()


def test_who_invited_and_when_is_in_the_patients_history(invite, prescriber, patient, smtp_server):
    invite(prescriber, patient)
    invite(prescriber, patient)
    first, second = patient.history.order_by("history_date", "history_id")[1:]
    assert (first.history_user, first.history_change_reason) == (prescriber, "Invited to the patient portal")
    assert (second.history_user, second.history_change_reason) == (prescriber, "Sent a new patient portal invitation")


def test_the_link_works_once(client, invite, nurse, patient, smtp_server):
    invite(nurse, patient)
    path = link_in(smtp_server.recorder.messages[0])
    assert set_password(client, path).status_code == 302
    again = client.get(path)
    assert again.status_code == 404
    assert "This link does not work" in again.content.decode()


def test_an_expired_link_gets_a_plain_page(client, invite, nurse, patient, smtp_server, monkeypatch):
    invite(nurse, patient)
    path = link_in(smtp_server.recorder.messages[0])
    later = dt.datetime.now() + dt.timedelta(days=4)  # past PASSWORD_RESET_TIMEOUT (3 days)
    monkeypatch.setattr(PasswordResetTokenGenerator, "_now", lambda self: later)
    page = client.get(path)
    assert page.status_code == 404
    assert "This link does not work" in page.content.decode()
    assert "Email me a new link" in page.content.decode()


@pytest.mark.parametrize(
    "alter", [lambda p: p[:-4] + "zzz/", lambda p: p.replace("/set/", "/set/MTIzNDU2/", 1).rsplit("/", 2)[0] + "/"]
)
def test_an_altered_link_gets_a_plain_page_not_an_error(client, invite, nurse, patient, smtp_server, alter):
    invite(nurse, patient)
    page = client.get(alter(link_in(smtp_server.recorder.messages[0])))
    assert page.status_code == 404
    assert "This link does not work" in page.content.decode()


def test_a_new_invitation_reuses_the_login_and_only_the_newest_link_works(client, invite, nurse, patient, smtp_server):
    invite(nurse, patient)
    logins = User.objects.count()
    response = invite(nurse, patient)
    assert any("A new invitation" in m for m in messages_of(response))
    assert User.objects.count() == logins
    first, second = smtp_server.recorder.messages
    assert "new link" in second["Subject"]
    assert client.get(link_in(first)).status_code == 404
    assert set_password(client, link_in(second)).status_code == 302


def test_a_new_invitation_goes_to_the_address_now_in_the_record(invite, nurse, patient, smtp_server):
    invite(nurse, patient)
    Patient.objects.filter(pk=patient.pk).update(email="alice.new@example.test")
    patient.refresh_from_db()
    invite(nurse, patient)
    assert smtp_server.recorder.to("alice.new@example.test")
    patient.refresh_from_db()
    assert patient.user.email == "alice.new@example.test"


def test_a_nurse_of_another_clinic_cannot_invite_this_patient(
    client, invite, nurse, patient, other_clinic, smtp_server
):
    client.force_login(nurse)
    data = button_form(client.get(change_url(patient)).content.decode())
    outsider = f.MembershipFactory(clinic=other_clinic, role=Role.NURSE, user=f.StaffFactory(username="nurse-b")).user
    client.force_login(outsider)
    assert client.get(change_url(patient)).url == reverse("admin:index")  # the admin's "doesn't exist"
    response = invite(outsider, patient, data=data)
    assert response.status_code == 404
    with pytest.raises(PermissionDenied):
        accounts.patient_account_invite(actor=outsider, patient=patient)
    patient.refresh_from_db()
    assert patient.user is None
    assert smtp_server.recorder.messages == []


def test_a_clinic_admin_is_not_offered_the_invitation(client, invite, clinic_admin, patient, smtp_server):
    client.force_login(clinic_admin)
    assert "invite_to_portal" not in client.get(change_url(patient)).content.decode()
    data = {"action": "invite_to_portal", "_selected_action": str(patient.pk), "index": "0"}
    response = invite(clinic_admin, patient, data=data)
    assert any("No action selected" in m for m in messages_of(response))
    with pytest.raises(PermissionDenied):
        accounts.patient_account_invite(actor=clinic_admin, patient=patient)
    assert Patient.objects.get(pk=patient.pk).user is None


def test_the_invitation_works_from_the_patient_list_too(
    client, nurse, patient, sibling_patient, smtp_server, django_capture_on_commit_callbacks
):
    client.force_login(nurse)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:patients_patient_changelist"),
            {"action": "invite_to_portal", "_selected_action": [patient.pk, sibling_patient.pk], "index": "0"},
        )
    assert response.status_code == 302
    assert sorted(m["X-Envelope-To"] for m in smtp_server.recorder.messages) == sorted(
        [patient.email, sibling_patient.email]
    )
    assert User.objects.filter(patient_profile__in=[patient, sibling_patient]).count() == 2


def test_the_button_is_outside_the_patients_form_so_enter_still_saves(client, nurse, patient):
    client.force_login(nurse)
    html = client.get(change_url(patient)).content.decode()
    patient_form = html[html.index('id="patient_form"') :]
    assert html.index("Invite to patient portal") < html.index('id="patient_form"')
    first_submit = re.search(r'<(?:input|button)[^>]*type="submit"[^>]*>', patient_form).group(0)
    assert 'name="_save"' in first_submit  # the browser's implicit submission (Enter) saves


def test_a_patient_without_email_is_refused_with_a_message(invite, nurse, patient, smtp_server):
    Patient.objects.filter(pk=patient.pk).update(email="")
    logins = User.objects.count()
    response = invite(nurse, patient)
    assert any("has no email address" in m for m in messages_of(response))
    assert User.objects.count() == logins
    assert Patient.objects.get(pk=patient.pk).user is None
    assert smtp_server.recorder.messages == []


def test_a_staff_login_is_never_made_a_patient_login(invite, nurse, prescriber, patient, smtp_server):
    Patient.objects.filter(pk=patient.pk).update(user=prescriber)  # bypassing the model's own refusal
    patient.refresh_from_db()
    response = invite(nurse, patient)
    assert any("staff login" in m for m in messages_of(response))
    assert smtp_server.recorder.messages == []
    prescriber.refresh_from_db()
    assert prescriber.has_usable_password()


def test_an_email_already_used_as_a_username_gets_another_username(invite, nurse, patient, smtp_server):
    f.StaffFactory(username=patient.email.upper())
    invite(nurse, patient)
    patient.refresh_from_db()
    assert patient.user.username.startswith("patient-")
    assert f"Your username: {patient.user.username}" in body_of(smtp_server.recorder.messages[0])


# --- Forgot your password -----------------------------------------------------------------------


def test_login_page_offers_forgot_your_password(client):
    page = client.get(reverse("portal-login")).content.decode()
    assert f'href="{reverse("portal-password-reset")}"' in page
    assert "Forgot your password?" in page


def test_reset_emails_a_patient_a_link_that_works(client, patient_user, smtp_server):
    response = client.post(reverse("portal-password-reset"), {"email": patient_user.email.upper()})
    assert response.status_code == 302
    assert response.url == reverse("portal-password-reset-done")
    (message,) = smtp_server.recorder.to(patient_user.email)
    assert f"Your username: {patient_user.username}" in body_of(message)
    assert not any(word in body_of(message).lower() for word in CONDITION_WORDS)
    assert set_password(client, link_in(message)).status_code == 302
    assert log_in(client, patient_user.username).url == reverse("portal-home")


def test_reset_for_an_unknown_or_a_staff_address_sends_nothing_and_shows_the_same_page(
    client, nurse, operator, patient_user, smtp_server
):
    pages = []
    for address in ("nobody@example.test", nurse.email, operator.email, patient_user.email):
        response = client.post(reverse("portal-password-reset"), {"email": address}, follow=True)
        assert response.redirect_chain == [(reverse("portal-password-reset-done"), 302)]
        pages.append(response.content)
    assert pages[0] == pages[1] == pages[2] == pages[3]  # a patient's address looks the same: no enumeration
    assert "If an account exists for that address" in pages[0].decode()
    assert [m["X-Envelope-To"] for m in smtp_server.recorder.messages] == [patient_user.email]


def test_reset_sends_nothing_for_an_archived_patient_or_a_turned_off_login(client, patient, patient_user, smtp_server):
    patient_user.is_active = False
    patient_user.save()
    client.post(reverse("portal-password-reset"), {"email": patient_user.email})
    patient_user.is_active = True
    patient_user.save()
    patient.delete()  # archive
    client.post(reverse("portal-password-reset"), {"email": patient_user.email})
    assert smtp_server.recorder.messages == []


def test_an_invited_patient_whose_link_expired_can_ask_for_a_new_one(
    client, invite, nurse, patient, smtp_server, monkeypatch
):
    invite(nurse, patient)
    client.post(reverse("portal-password-reset"), {"email": patient.email})
    first, second = smtp_server.recorder.messages
    assert "Choose a new password" in second["Subject"]
    assert set_password(client, link_in(second)).status_code == 302


def test_a_staff_logins_reset_link_does_not_open_here(client, nurse):
    uidb64 = urlsafe_base64_encode(force_bytes(nurse.pk))
    token = default_token_generator.make_token(nurse)
    page = client.get(reverse("portal-password-reset-confirm", kwargs={"uidb64": uidb64, "token": token}))
    assert page.status_code == 404
    assert "This link does not work" in page.content.decode()


def test_password_validators_speak_beside_the_field(client, invite, nurse, patient, smtp_server):
    invite(nurse, patient)
    response = set_password(client, link_in(smtp_server.recorder.messages[0]), password="12345")
    assert response.status_code == 200
    html = response.content.decode()
    errors = html[html.index('id="id_new_password2_error"') :]
    assert "too short" in errors[: errors.index("</ul>")]
    assert 'id="id_new_password1_helptext"' in html  # the rules, before the patient types
    patient.refresh_from_db()
    assert not patient.user.has_usable_password()


# --- Change password ----------------------------------------------------------------------------


def test_a_patient_changes_their_password(client, patient_user):
    client.force_login(patient_user)
    assert client.get(reverse("portal-home")).content.decode().count(reverse("portal-password-change")) == 1
    wrong = client.post(
        reverse("portal-password-change"),
        {"old_password": "not-it", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert 'id="id_old_password_error"' in wrong.content.decode()
    response = client.post(
        reverse("portal-password-change"),
        {"old_password": f.PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.url == reverse("portal-password-change-done")
    assert client.get(reverse("portal-home")).status_code == 200  # still logged in here
    client.logout()
    assert log_in(client, patient_user.username).url == reverse("portal-home")


def test_change_password_is_for_patients_only(client, nurse):
    assert client.get(reverse("portal-password-change")).status_code == 302
    client.force_login(nurse)
    assert client.get(reverse("portal-password-change")).status_code == 404


# --- Email on request is rate-limited (ldnclinic.throttle) ------------------------------------------------


def test_reset_emails_to_one_address_stop_after_the_hourly_limit_with_the_same_page(
    client, patient_user, smtp_server, settings
):
    settings.PASSWORD_RESETS_PER_ADDRESS = 2
    pages = []
    for address in (patient_user.email, patient_user.email.upper(), f" {patient_user.email} "):
        response = client.post(reverse("portal-password-reset"), {"email": address}, follow=True)
        assert response.redirect_chain == [(reverse("portal-password-reset-done"), 302)]
        pages.append(response.content)
    assert pages[0] == pages[2]  # the third looks exactly like a sent one: nothing tells whether it went
    assert len(smtp_server.recorder.to(patient_user.email)) == 2


def test_reset_requests_from_one_client_stop_with_a_plain_page_after_the_hourly_limit(
    client, patient_user, smtp_server, settings
):
    settings.PASSWORD_RESETS_PER_CLIENT = 3
    for n in range(3):
        response = client.post(reverse("portal-password-reset"), {"email": f"someone{n}@example.test"})
        assert response.status_code == 302
    response = client.post(reverse("portal-password-reset"), {"email": patient_user.email})
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 3600
    page = response.content.decode()
    assert "Too many requests" in page and "Try again in 60 minutes" in page
    assert smtp_server.recorder.messages == []
    other = client.post(
        reverse("portal-password-reset"), {"email": patient_user.email}, REMOTE_ADDR="192.0.2.44"
    )  # another device is not held up
    assert other.status_code == 302
    assert len(smtp_server.recorder.to(patient_user.email)) == 1


def test_a_patient_gets_at_most_the_hourly_number_of_invitations(invite, nurse, patient, smtp_server, settings):
    settings.PORTAL_INVITES_PER_HOUR = 2
    for _ in range(2):
        invite(nurse, patient)
    before = Patient.objects.get(pk=patient.pk).user.password
    response = invite(nurse, patient)
    shown = messages_of(response)
    assert any(
        "has been sent 2 invitations in the last hour" in m and "the latest link still works" in m for m in shown
    )
    assert len(smtp_server.recorder.to(patient.email)) == 2
    assert Patient.objects.get(pk=patient.pk).user.password == before  # the latest link was not replaced
