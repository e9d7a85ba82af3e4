"""Actors for the tests: two clinics, their staff in each role, and patients with logins."""

import pytest

from patients.models import Role

from . import factories as f


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
