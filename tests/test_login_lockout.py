"""Password guessing stops after LOGIN_FAILURE_LIMIT wrong passwords (django-axes), on every login:
the patient portal, the admin and the API token. The pair (username, address) is locked, so a
stranger guessing cannot lock the patient out on their own phone's address; a success clears the count."""

import pytest
from axes.utils import reset
from django.conf import settings

from . import factories as f

pytestmark = pytest.mark.django_db

RIGHT = f.PASSWORD
LIMIT = settings.AXES_FAILURE_LIMIT


def _portal(client, username, password):
    return client.post("/me/login/", {"username": username, "password": password})


def _logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_patient_portal_locks_after_the_limit_and_even_the_right_password_is_refused(client, patient_user):
    for _ in range(LIMIT):
        response = _portal(client, patient_user.username, "not-my-password")
        assert response.status_code in (200, 429)
    response = _portal(client, patient_user.username, RIGHT)
    assert response.status_code == 429
    assert b"Too many tries" in response.content and b"Set a new password" in response.content
    assert not _logged_in(client)

    reset(username=patient_user.username)  # what an operator's `manage.py axes_reset_username` does
    assert _portal(client, patient_user.username, RIGHT).status_code == 302 and _logged_in(client)


def test_a_success_clears_the_count(client, patient_user):
    for _ in range(LIMIT - 1):
        _portal(client, patient_user.username, "not-my-password")
    assert _portal(client, patient_user.username, RIGHT).status_code == 302
    client.logout()
    for _ in range(LIMIT - 1):
        _portal(client, patient_user.username, "not-my-password")
    assert _portal(client, patient_user.username, RIGHT).status_code == 302


def test_the_lock_is_per_username_and_address(client, patient_user, patient):
    other = f.UserFactory(username="someone-else")
    for _ in range(LIMIT):
        _portal(client, patient_user.username, "not-my-password")
    assert _portal(client, other.username, RIGHT).status_code == 302  # another login from here: unaffected
    client.logout()
    elsewhere = client.post(
        "/me/login/", {"username": patient_user.username, "password": RIGHT}, REMOTE_ADDR="198.51.100.7"
    )
    assert elsewhere.status_code == 302  # the patient on their own phone's address still gets in


def test_admin_login_locks_too(client, prescriber):
    for _ in range(LIMIT):
        client.post("/admin/login/", {"username": prescriber.username, "password": "wrong-password"})
    response = client.post("/admin/login/?next=/admin/", {"username": prescriber.username, "password": RIGHT})
    assert response.status_code == 429
    assert not _logged_in(client)


def test_api_token_locks_too(api_client, prescriber):
    for _ in range(LIMIT):
        api_client.post("/api/v1/auth/token/", {"username": prescriber.username, "password": "wrong-password"})
    response = api_client.post("/api/v1/auth/token/", {"username": prescriber.username, "password": RIGHT})
    assert response.status_code in (400, 403, 429), response.status_code  # DRF: "Unable to log in" (400)
    assert "token" not in response.json()
    reset(username=prescriber.username)
    assert (
        "token" in api_client.post("/api/v1/auth/token/", {"username": prescriber.username, "password": RIGHT}).json()
    )
