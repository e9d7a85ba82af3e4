"""Actors for the tests: two clinics, their staff in each role, and patients with logins.

``--clock=ISO-INSTANT`` (or ``LDN_TEST_CLOCK``) runs the whole session at that instant, the clock
ticking on from there, so the suite can be tried at an awkward moment (23:30 UTC in summer time, the
night the clocks change). ``tests/test_clock_instants.py`` keeps a representative set checked in CI.
"""

import datetime as dt
import os
import uuid

import pytest
import time_machine

from patients.models import Role

from . import factories as f


def pytest_addoption(parser):
    parser.addoption(
        "--clock",
        default=os.environ.get("LDN_TEST_CLOCK", ""),
        metavar="ISO-INSTANT",
        help="run the session as if it were this instant, e.g. 2026-03-29T00:30:00Z (env LDN_TEST_CLOCK); "
        "the clock ticks on from there",
    )


def clock_instant(value: str) -> dt.datetime:
    """An ISO 8601 instant with its offset (``Z`` or ``+01:00``); a local time without one is ambiguous."""
    try:
        instant = dt.datetime.fromisoformat(value)
    except ValueError:
        raise pytest.UsageError(f"--clock={value!r} is not an ISO 8601 instant (e.g. 2026-03-29T00:30:00Z)") from None
    if instant.tzinfo is None:
        raise pytest.UsageError(f"--clock={value!r} needs an offset (Z or +HH:MM): a local time is ambiguous")
    return instant


def pytest_configure(config):
    value = config.getoption("--clock")
    if value:  # started before collection and the test database, so everything sees the same instant
        config._ldn_clock = time_machine.travel(clock_instant(value), tick=True)
        config._ldn_clock.start()


def pytest_unconfigure(config):
    clock = getattr(config, "_ldn_clock", None)
    if clock is not None:
        clock.stop()


def pytest_report_header(config):
    value = config.getoption("--clock")
    return f"clock: travelled to {clock_instant(value).isoformat()} (ticking)" if value else None


@pytest.fixture(scope="session", autouse=True)
def _empty_file_cache():
    """Each session starts with an empty embedded file cache. Entries from earlier sessions stay live for
    their timeout (and forever to a session travelled to an earlier instant), and once the cache holds 300
    files Django culls a third of them at random, which can delete a throttle count in the middle of a test.
    The Redis cache (REDIS_URL) expires entries itself and is left alone."""
    from django.core.cache import caches
    from django.core.cache.backends.filebased import FileBasedCache

    if isinstance(caches["default"], FileBasedCache):
        caches["default"].clear()


@pytest.fixture(autouse=True)
def _own_throttle_counts(monkeypatch):
    """Throttle counts and cached reads live in the shared cache; each test has its own namespace (a test
    database's ids come round again, and a cached worklist of an earlier test must not answer for them)."""
    from ldnclinic import stamps, throttle

    monkeypatch.setattr(throttle, "NAMESPACE", uuid.uuid4().hex)
    monkeypatch.setattr(stamps, "NAMESPACE", uuid.uuid4().hex)


@pytest.fixture
def clinic(db):
    return f.ClinicFactory(name="Clinic A", slug="clinic-a")


@pytest.fixture
def other_clinic(db):
    return f.ClinicFactory(name="Clinic B", slug="clinic-b")


def _staff(clinic, role, username):
    return f.MembershipFactory(clinic=clinic, role=role, user=f.StaffFactory(username=username)).user


@pytest.fixture
def prescriber(clinic):
    return _staff(clinic, Role.PRESCRIBER, "prescriber-a")


@pytest.fixture
def nurse(clinic):
    return _staff(clinic, Role.NURSE, "nurse-a")


@pytest.fixture
def clinic_admin(clinic):
    return _staff(clinic, Role.CLINIC_ADMIN, "admin-a")


@pytest.fixture
def other_prescriber(other_clinic):
    return _staff(other_clinic, Role.PRESCRIBER, "prescriber-b")


@pytest.fixture
def patient(clinic):
    return f.PatientFactory(clinic=clinic, first_name="Alice", last_name="Ashdown", mrn="A-001")


@pytest.fixture
def patient_user(patient):
    user = f.UserFactory(username="alice")
    patient.user = user
    patient.save()
    return user


@pytest.fixture
def other_patient(other_clinic):
    return f.PatientFactory(clinic=other_clinic, first_name="Bob", last_name="Bramley", mrn="B-001")


@pytest.fixture
def sibling_patient(clinic):
    """Another patient of the same clinic: a patient login must not see them either."""
    return f.PatientFactory(clinic=clinic, first_name="Carol", last_name="Crane", mrn="A-002")


@pytest.fixture
def login(client):
    def _login(user):
        client.force_login(user)
        return client

    return _login


@pytest.fixture
def operator(db):
    """The platform operator (superuser): the only login that manages logins."""
    return f.StaffFactory(username="operator", is_superuser=True)


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


def admin_form_data(response) -> dict:
    """What the browser would post back, unchanged, from an admin add/change page response."""
    from django.forms import MultiWidget

    context = response.context
    forms = [context["adminform"].form]
    for inline in context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    data = {}
    for form in forms:
        for bound in form:
            value = bound.value()
            if isinstance(bound.field.widget, MultiWidget):  # the admin's split date and time
                for i, part in enumerate(bound.field.widget.decompress(value)):
                    data[f"{bound.html_name}_{i}"] = "" if part is None else str(part)
            elif value is not None:
                data[bound.html_name] = str(value)
    return data


@pytest.fixture
def admin_change(client):
    """Change ``obj`` through its admin page as ``user``: load the form, apply ``changes``, save.

    ``changes`` are form field names (``steps-0-dose_mg`` for an inline row). Returns the response.
    """
    from django.urls import reverse

    def _change(user, obj, **changes):
        client.force_login(user)
        url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
        page = client.get(url)
        assert page.status_code == 200, page.status_code
        return client.post(url, {**admin_form_data(page), **changes, "_save": "Save"})

    return _change


@pytest.fixture
def smtp_server(settings):
    """Django's SMTP backend pointed at a real SMTP server on a free loopback port."""
    from tests.smtp import SMTPServer

    with SMTPServer() as server:
        settings.MAILERS = {"default": server.mailer}
        yield server


@pytest.fixture
def protocols(db):
    """The protocol templates the data migration loads; a transactional test's flush removes them."""
    from decimal import Decimal

    from titration.models import ProtocolStep, TitrationProtocol
    from titration.protocols import PROTOCOLS

    for spec in PROTOCOLS:
        protocol, created = TitrationProtocol.objects.get_or_create(
            key=spec["key"], defaults={k: spec[k] for k in ("name", "source", "description")}
        )
        if created:
            for i, (dose, days) in enumerate(spec["steps"], start=1):
                ProtocolStep.objects.create(protocol=protocol, sequence=i, dose_mg=Decimal(dose), min_days=days)
    return TitrationProtocol.objects.all()
