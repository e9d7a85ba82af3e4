"""Sessions that end (issue 11, who gets in): idle for SESSION_IDLE_MINUTES, or SESSION_MAX_HOURS after
login; a new session id at login; a password change or a deactivation ends the user's sessions and
API tokens (ldnclinic/sessions.py)."""

import datetime as dt

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
WORKLIST = "/clinic/"


def logged_in(user) -> Client:
    """A browser that logged in through the staff login form, as a person does."""
    client = Client()
    response = client.post("/clinic/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()[:500]
    return client


def test_a_session_idle_for_longer_than_the_limit_ends_and_says_why(prescriber, settings):
    settings.SESSION_IDLE_MINUTES = 30
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        client = logged_in(prescriber)
        assert client.get(WORKLIST).status_code == 200
        clock.shift(dt.timedelta(minutes=29))
        assert client.get(WORKLIST).status_code == 200  # activity keeps it open
        clock.shift(dt.timedelta(minutes=31))
        ended = client.get(WORKLIST)
        assert ended.status_code == 302 and ended["Location"] == "/clinic/login/?next=/clinic/"
        login_page = client.get(ended["Location"]).content.decode()
        assert "Your session ended" in login_page
        assert client.get(WORKLIST).status_code == 302  # ended, not paused


def test_a_busy_session_still_ends_at_the_absolute_limit(prescriber, settings):
    settings.SESSION_IDLE_MINUTES, settings.SESSION_MAX_HOURS = 30, 8
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        client = logged_in(prescriber)
        for _ in range(7 * 3 + 2):  # a request every 20 minutes for 7 h 40 min
            clock.shift(dt.timedelta(minutes=20))
            assert client.get(WORKLIST).status_code == 200
        clock.shift(dt.timedelta(minutes=25))  # 8 h 5 min after logging in
        assert client.get(WORKLIST).status_code == 302


def test_an_ended_session_gets_401_from_the_api_and_a_full_page_redirect_from_htmx(prescriber, settings):
    settings.SESSION_IDLE_MINUTES = 30
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        api, page = logged_in(prescriber), logged_in(prescriber)
        assert api.get("/api/v1/patients/").status_code == 200
        clock.shift(dt.timedelta(minutes=45))
        answer = api.get("/api/v1/patients/")
        assert answer.status_code == 401 and "log in again" in answer.json()["detail"]
        swap = page.get(WORKLIST + "?kind=conflicts", headers={"HX-Request": "true"})
        assert swap["HX-Redirect"] == "/clinic/login/?next=/clinic/%3Fkind%3Dconflicts"


def test_logging_in_gives_a_new_session_id(prescriber):
    client = Client()
    client.get("/clinic/login/")
    client.session.save()
    before = client.session.session_key
    client.post("/clinic/login/", {"username": prescriber.username, "password": PASSWORD})
    assert client.session.session_key != before


def test_a_password_change_ends_the_users_other_sessions_and_tokens(prescriber):
    other_device = logged_in(prescriber)
    token = Token.objects.create(user=prescriber)
    prescriber.set_password("a-new-long-passphrase-42")
    prescriber.save()
    assert other_device.get(WORKLIST).status_code == 302
    assert not Token.objects.filter(pk=token.pk).exists()


def test_deactivating_a_user_ends_their_sessions_and_tokens(prescriber):
    device = logged_in(prescriber)
    token = Token.objects.create(user=prescriber)
    prescriber.is_active = False
    prescriber.save()
    assert device.get(WORKLIST).status_code == 302
    assert not Token.objects.filter(pk=token.pk).exists()
    refused = Client().get("/api/v1/patients/", headers={"Authorization": f"Token {token.key}"})
    assert refused.status_code in (401, 403) and "patients" not in refused.json()


def test_saving_a_user_for_another_reason_keeps_their_token(prescriber):
    token = Token.objects.create(user=prescriber)
    prescriber.first_name = "Priya"
    prescriber.save()
    assert Token.objects.filter(pk=token.pk).exists()
