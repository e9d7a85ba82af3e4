"""Every route outside the admin, classified: who may open it. A new route that is not listed here
fails the first test, so nobody adds a page without deciding who sees it (the admin has its own
route-by-route suites in test_privacy.py and test_roles.py).

Each route is opened as an anonymous visitor, as a patient login and as a clinic's prescriber, and
must answer as its class says: public pages answer everyone; patient pages refuse anonymous visitors
(to the login) and staff (404: a staff login is not a patient); staff pages refuse anonymous visitors
and patients; token pages answer a made-up token with a plain 404.
"""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from clinic import urls as clinic_urls

pytestmark = pytest.mark.django_db

PUBLIC, PATIENT, STAFF, TOKEN, API = "public", "patient", "staff", "token", "api"
STAFF_OBJECT, STAFF_POST = "staff_object", "staff_post"  # a staff page about one record; a staff action (POST)
ROUTES = {
    "home": PUBLIC,
    "healthz": PUBLIC,
    "portal-login": PUBLIC,
    "portal-logout": PUBLIC,  # POST only; a GET is refused for everyone (405)
    "portal-password-reset": PUBLIC,
    "portal-password-reset-done": PUBLIC,
    "portal-password-reset-complete": PUBLIC,
    "portal-password-reset-confirm": TOKEN,
    "checkin-link": TOKEN,
    "portal-calendar-feed": TOKEN,
    "portal-home": PATIENT,
    "checkin-start": PATIENT,
    "portal-thanks": PATIENT,
    "portal-calendar": PATIENT,
    "portal-reminders": PATIENT,
    "portal-calendar-link": PATIENT,
    "portal-calendar-stop": PATIENT,
    "portal-password-change": PATIENT,
    "portal-password-change-done": PATIENT,
    "reports:index": STAFF,
    "reports:export": STAFF,
    "reports:summary": STAFF,
    "v1:token": PUBLIC,  # exchanges a password for a token; refuses bad credentials (test_api_plumbing)
    "v1:medication-check": API,
    "v1:patient-list": API,
    "v1:patient-detail": API,
    "v1:api-root": API,
    "schema": API,
    "api-docs": API,
}
# The clinic pages classify their own routes beside them (clinic/urls.py ACCESS).
ROUTES.update({f"clinic:{name}": kind for name, kind in clinic_urls.ACCESS.items()})
SAMPLE = {"token": "made-up-token-0123456789", "uidb64": "MQ", "key": "checkins", "pk": "1", "format": "json"}
SAMPLE["action"] = "hold"  # clinic:plan-action (an allow-listed name; any other is 404)


def routes():
    """(name, a concrete path) for every route outside the admin."""

    def walk(patterns, prefix, namespace):
        for p in patterns:
            if isinstance(p, URLResolver):
                if str(p.pattern).startswith("admin/"):
                    continue
                ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
                yield from walk(p.url_patterns, prefix + str(p.pattern), ns)
            elif isinstance(p, URLPattern) and p.name:
                yield f"{namespace}{p.name}", prefix + str(p.pattern)

    seen = {}
    for name, pattern in walk(get_resolver().url_patterns, "", ""):
        if "format" in pattern or "drf_format_suffix" in pattern:
            continue  # DRF's ".json" twins of the routes below
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: SAMPLE[m.group(1)], pattern)  # DRF's regex routes
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: SAMPLE[m.group(1)], path).replace("^", "").replace("$", "")
        seen.setdefault(name, "/" + path)
    return sorted(seen.items())


ALL = routes()


def test_every_route_is_classified():
    unlisted = [name for name, _ in ALL if name not in ROUTES]
    assert not unlisted, f"new routes without a decision on who may open them: {unlisted}"


def _refused_to_login(response) -> bool:
    return response.status_code == 302 and "login" in response["Location"]


@pytest.mark.parametrize(("name", "path"), ALL, ids=[n for n, _ in ALL])
def test_anonymous_visitor(name, path, client):
    response = client.get(path)
    kind = ROUTES[name]
    if kind == PUBLIC:
        assert response.status_code in (200, 302, 405), response.status_code
    elif kind == TOKEN:
        assert response.status_code == 404
        assert b"Traceback" not in response.content
    elif kind == API:
        assert response.status_code in (401, 403)
    elif kind == STAFF_POST:
        assert response.status_code == 405 or _refused_to_login(response), response.status_code
    else:
        assert _refused_to_login(response), (response.status_code, response.get("Location"))


@pytest.mark.parametrize(("name", "path"), ALL, ids=[n for n, _ in ALL])
def test_patient_login(name, path, client, patient_user):
    client.force_login(patient_user)
    response = client.get(path)
    kind = ROUTES[name]
    if kind in (STAFF, API, STAFF_OBJECT, STAFF_POST):
        assert response.status_code in (403, 404, 405) or _refused_to_login(response), response.status_code
        assert b"Ashdown" not in response.content  # nothing of the patient's record on a refusal
    elif kind == TOKEN:
        assert response.status_code == 404  # a made-up token is nobody's, logged in or not
    else:
        assert response.status_code in (200, 302, 405), response.status_code


@pytest.mark.parametrize(("name", "path"), ALL, ids=[n for n, _ in ALL])
def test_staff_login(name, path, client, prescriber, patient):
    client.force_login(prescriber)
    response = client.get(path)
    kind = ROUTES[name]
    if kind == PATIENT:  # a staff login is not a patient: no patient page to show (405: a POST-only form)
        assert response.status_code in (404, 405), response.status_code
    elif kind == TOKEN:
        assert response.status_code == 404
    elif kind == STAFF:
        assert response.status_code == 200, response.status_code
    elif kind == STAFF_OBJECT:  # the sample id 1 may be no record of this clinic: 404, never a 500 or a leak
        assert response.status_code in (200, 404), response.status_code
    elif kind == STAFF_POST:
        assert response.status_code == 405, response.status_code
    elif kind == API:  # the sample id 1 may be no patient of this clinic (API scoping: test_api_plumbing)
        assert response.status_code in (200, 404, 405), response.status_code  # 405: POST-only (medication check)
    else:
        assert response.status_code in (200, 302, 405), response.status_code
