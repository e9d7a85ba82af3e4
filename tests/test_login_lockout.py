"""Password guessing stops on every login (the patient portal, the admin and the API token): a username
after LOGIN_FAILURE_LIMIT wrong passwords from any address (django-axes), an address after
LOGIN_ADDRESS_FAILURE_LIMIT wrong passwords for any usernames (ldnclinic.lockout), counted behind
TRUSTED_PROXIES by the address the proxy saw; a success clears the username's count."""

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


def test_a_username_is_locked_from_every_address(client, patient_user):
    """Guessing from one address locks the username everywhere (a stolen list tried from many
    addresses gets nowhere); another username from the same address is not locked by it."""
    other = f.UserFactory(username="someone-else")
    for _ in range(LIMIT):
        _portal(client, patient_user.username, "not-my-password")
    elsewhere = client.post(
        "/me/login/", {"username": patient_user.username, "password": RIGHT}, REMOTE_ADDR="198.51.100.7"
    )
    assert elsewhere.status_code == 429 and not _logged_in(client)
    assert _portal(client, other.username, RIGHT).status_code == 302


def test_an_address_is_locked_after_many_wrong_passwords_for_different_usernames(client, settings, patient_user):
    """Password spraying: one guess at each of many accounts, each far below its own limit, from one
    address. The address is locked for every username; the same people from elsewhere get in."""
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 8
    for n in range(8):
        _portal(client, f"guess-{n}", "Summer2026!")
    response = _portal(client, patient_user.username, RIGHT)
    assert response.status_code == 429 and b"Too many tries" in response.content and not _logged_in(client)
    elsewhere = client.post(
        "/me/login/", {"username": patient_user.username, "password": RIGHT}, REMOTE_ADDR="198.51.100.7"
    )
    assert elsewhere.status_code == 302


def test_behind_the_trusted_proxy_each_client_counts_by_its_own_address(client, settings, patient_user):
    """With TRUSTED_PROXIES=1 (the compose TLS proxy), the address the proxy saw counts, not the proxy's
    own: one client's guesses do not lock the others, and what a client writes into X-Forwarded-For
    itself is not believed."""
    settings.LOGIN_ADDRESS_FAILURE_LIMIT, settings.TRUSTED_PROXIES = 8, 1
    proxy = {"REMOTE_ADDR": "172.18.0.5"}
    for n in range(8):  # a sprayer at 203.0.113.9 who also claims to be someone else
        client.post(
            "/me/login/",
            {"username": f"guess-{n}", "password": "Summer2026!"},
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.9",
            **proxy,
        )
    sprayer = client.post(
        "/me/login/",
        {"username": patient_user.username, "password": RIGHT},
        HTTP_X_FORWARDED_FOR="203.0.113.9",
        **proxy,
    )
    assert sprayer.status_code == 429
    neighbour = client.post(
        "/me/login/",
        {"username": patient_user.username, "password": RIGHT},
        HTTP_X_FORWARDED_FOR="198.51.100.7",
        **proxy,
    )
    assert neighbour.status_code == 302


def test_admin_login_locks_too(client, prescriber):
    for _ in range(LIMIT):
        client.post("/admin/login/", {"username": prescriber.username, "password": "wrong-password"})
    response = client.post("/admin/login/?next=/admin/", {"username": prescriber.username, "password": RIGHT})
    assert response.status_code == 429
    assert not _logged_in(client)


def test_api_token_locks_too_and_says_so(api_client, prescriber):
    for _ in range(LIMIT):
        wrong = api_client.post("/api/v1/auth/token/", {"username": prescriber.username, "password": "wrong-password"})
        assert wrong.status_code in (400, 429)
    response = api_client.post("/api/v1/auth/token/", {"username": prescriber.username, "password": RIGHT})
    assert response.status_code == 429 and "token" not in response.json()
    assert "Too many failed logins" in response.json()["detail"] and int(response["Retry-After"]) > 0
    reset(username=prescriber.username)
    assert (
        "token" in api_client.post("/api/v1/auth/token/", {"username": prescriber.username, "password": RIGHT}).json()
    )
