"""Every dynamic response carries Cache-Control: no-store and a Permissions-Policy (ldnclinic/headers.py):
staff pages, the portal, the API, exports, prints, the calendar feed, the admin, and the login pages."""

import pytest
from django.urls import reverse

from reports.exports import EXPORTS
from tests import factories as f

pytestmark = pytest.mark.django_db


def assert_private(response, what: str) -> None:
    assert response.status_code == 200, (what, response.status_code)
    assert "no-store" in response["Cache-Control"], (what, response["Cache-Control"])
    policy = response["Permissions-Policy"]
    assert "camera=()" in policy and "microphone=()" in policy and "geolocation=()" in policy, (what, policy)


def test_staff_pages_exports_prints_api_and_admin_are_not_stored(client, prescriber, patient):
    rx = f.PrescriptionFactory(patient=patient, prescriber=prescriber)
    client.force_login(prescriber)
    for what in [
        reverse("clinic:worklist"),
        reverse("clinic:patient", args=[patient.pk]),
        reverse("clinic:patients"),
        reverse("clinic:prescription-print", args=[rx.pk]),
        reverse("clinic:prescription-pdf", args=[rx.pk]),
        reverse("reports:export", args=[next(iter(EXPORTS))]),
        "/api/v1/patients/",
        f"/api/v1/patients/{patient.pk}/",
        "/admin/",
    ]:
        assert_private(client.get(what), what)


def test_the_portal_its_calendar_feed_and_the_login_pages_are_not_stored(client, patient, patient_user):
    for what in ["/clinic/login/", "/me/login/"]:
        assert_private(client.get(what), what)
    client.force_login(patient_user)
    for what in ["/me/", "/me/calendar.ics"]:
        assert_private(client.get(what), what)


def test_a_view_that_says_private_keeps_it_beside_no_store(client, prescriber):
    client.force_login(prescriber)
    cache = client.get(reverse("reports:export", args=[next(iter(EXPORTS))]))["Cache-Control"]
    assert "private" in cache and "no-store" in cache
