"""API plumbing: token exchange, deny by default, health endpoint."""

import pytest
from django.core.cache import cache

from ldnclinic.tasks import HEARTBEAT_CACHE_KEY, heartbeat
from tests.factories import PASSWORD


def test_token_exchange_then_token_reads_only_own_clinic(client, prescriber, patient, other_patient):
    response = client.post("/api/v1/auth/token/", {"username": prescriber.username, "password": PASSWORD})
    assert response.status_code == 200
    token = response.json()["token"]
    listing = client.get("/api/v1/patients/", headers={"Authorization": f"Token {token}"})
    assert listing.status_code == 200
    assert [row["mrn"] for row in listing.json()["results"]] == [patient.mrn]


def test_token_exchange_refuses_a_wrong_password(client, prescriber):
    response = client.post("/api/v1/auth/token/", {"username": prescriber.username, "password": "wrong"})
    assert response.status_code == 400
    assert "token" not in response.json()


def test_user_without_membership_is_denied_by_default(client, db):
    from tests.factories import StaffFactory

    client.force_login(StaffFactory())
    assert client.get("/api/v1/patients/").status_code == 403


def test_healthz_reports_database_and_last_beat(client, db):
    cache.delete(HEARTBEAT_CACHE_KEY)
    assert client.get("/healthz").json() == {"database": "ok", "last_beat": None}
    heartbeat.run("test")
    body = client.get("/healthz").json()
    assert body["database"] == "ok"
    assert body["last_beat"] is not None


@pytest.mark.parametrize("url", ["/api/v1/patients/", "/api/schema/", "/api/docs/"])
def test_anonymous_is_refused(client, db, url):
    assert client.get(url).status_code in {401, 403}
