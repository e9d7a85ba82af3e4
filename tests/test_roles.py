"""The role matrix in the admin: who may add, change and archive what; nobody hard-deletes; and
clinical state is read-only for everyone, the platform operator included.

The expected matrix is written out here, not read from the admin classes, so a change to an
admin's ``write_roles`` that breaks the matrix fails a test.
"""

import pytest
from django.contrib.messages import get_messages
from django.forms import modelform_factory
from django.urls import reverse

from patients.flag_models import ClinicianTask, ConflictFlag, SafetyGateEvent
from patients.models import Clinic, LabResult, MedicationStatement, Membership, Patient, PatientCondition, Role
from symptoms.instrument_models import InstrumentScore
from symptoms.models import InstrumentLicence, SymptomCheckIn
from titration.models import (
    SLOW_RELEASE_MESSAGE,
    CompoundedPrescription,
    Pharmacy,
    Reminder,
    TitrationPlan,
    TitrationProtocol,
)

from . import factories as f
from .conftest import admin_form_data as form_data

ROLES = ["prescriber", "nurse", "clinic_admin"]
PRESCRIBER_OR_NURSE = frozenset({"prescriber", "nurse"})
# Who may write each configuration or record model in the admin (add and change); every other role is view-only.
WRITERS = {
    Patient: PRESCRIBER_OR_NURSE,
    MedicationStatement: PRESCRIBER_OR_NURSE,
    PatientCondition: PRESCRIBER_OR_NURSE,
    LabResult: PRESCRIBER_OR_NURSE,
    Pharmacy: frozenset(ROLES),
    Membership: frozenset({"clinic_admin"}),
    Clinic: frozenset({"clinic_admin"}),
    TitrationProtocol: frozenset(),  # shared templates: the platform operator only
    InstrumentLicence: frozenset({"prescriber", "clinic_admin"}),  # PRO-3: who answers for the clinic's licences
}
# Clinical state: read-only in the admin for every role and the operator (issue 10); the clinic pages change it
# through the services that apply the rules.
READ_ONLY = [
    CompoundedPrescription,
    TitrationPlan,
    ConflictFlag,
    SafetyGateEvent,
    ClinicianTask,
    Reminder,
    SymptomCheckIn,
    InstrumentScore,
]
EVERYONE = [*ROLES, "operator"]
# Clinics are created by the platform operator; a clinic admin edits their own.
ADD_WRITERS = {**WRITERS, Clinic: frozenset()}
SOFT_DELETABLE = [m for m in WRITERS if hasattr(m, "deleted_at")]
READ_ONLY_SOFT_DELETABLE = [m for m in READ_ONLY if hasattr(m, "deleted_at")]


def label(model) -> str:
    return model._meta.label


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def row(model, patient):
    return TitrationProtocol.objects.get(key="STD_1_5") if model is TitrationProtocol else f.row_for(model, patient)


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- Add and change -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("model", list(ADD_WRITERS), ids=label)
def test_add_form_follows_the_role_matrix(model, role, request, login):
    response = login(request.getfixturevalue(role)).get(admin_url(model, "add"))
    assert response.status_code == (200 if role in ADD_WRITERS[model] else 403)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("model", list(WRITERS), ids=label)
def test_change_follows_the_role_matrix_and_history_names_the_user(model, role, request, login, patient):
    user = request.getfixturevalue(role)
    obj = row(model, patient)
    client = login(user)
    page = client.get(admin_url(model, "change", obj.pk))
    assert page.status_code == 200  # every member may view
    if role in WRITERS[model]:
        assert b'name="_save"' in page.content
        response = client.post(admin_url(model, "change", obj.pk), {**form_data(page), "_save": "Save"})
        assert response.status_code == 302, response.context and response.context["adminform"].form.errors
        latest = obj.history.latest()
        assert (latest.history_type, latest.history_user) == ("~", user)
    else:
        assert b'name="_save"' not in page.content  # view-only
        before = obj.history.count()
        response = client.post(admin_url(model, "change", obj.pk), {"_save": "Save"})
        assert response.status_code == 403
        assert obj.history.count() == before


@pytest.mark.parametrize("role", EVERYONE)
@pytest.mark.parametrize("model", READ_ONLY, ids=label)
def test_clinical_state_is_shown_read_only_to_every_role_and_the_operator(model, role, request, login, patient):
    obj = row(model, patient)
    client = login(request.getfixturevalue(role))
    page = client.get(admin_url(model, "change", obj.pk))
    assert page.status_code == 200  # shown, with its history link
    assert b'name="_save"' not in page.content
    assert admin_url(model, "history", obj.pk).encode() in page.content
    assert client.get(admin_url(model, "history", obj.pk)).status_code == 200
    before = obj.history.count()
    assert client.post(admin_url(model, "change", obj.pk), {"_save": "Save"}).status_code == 403
    assert client.get(admin_url(model, "add")).status_code == 403
    assert client.post(admin_url(model, "add"), {"patient": patient.pk, "_save": "Save"}).status_code == 403
    assert obj.history.count() == before
    assert model._default_manager.count() == 1  # nothing added
    changelist = client.get(admin_url(model, "changelist"))
    assert changelist.status_code == 200
    assert changelist.context["action_form"] is None  # no archive, no bulk action of any kind
    assert admin_url(model, "add").encode() not in changelist.content  # no "Add" button, here or in the menu


def _patient_post(clinic, **extra) -> dict:
    data = {
        "clinic": clinic.pk,
        "mrn": "A-100",
        "first_name": "Dora",
        "last_name": "Dunmore",
        "date_of_birth": "1975-03-02",
        "sex": "female",
        "time_zone": "Europe/London",
        "dose_time": "bedtime",
        "status": "screening",
        "_save": "Save",
    }
    for prefix in ("conditions", "medications", "lab_results"):
        data.update({f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0})
    return {**data, **extra}


def test_nurse_adds_a_patient_and_their_medication(login, nurse, clinic):
    client = login(nurse)
    response = client.post(admin_url(Patient, "add"), _patient_post(clinic))
    assert response.status_code == 302
    dora = Patient.objects.get(mrn="A-100")
    assert (dora.clinic, dora.history.get().history_user) == (clinic, nurse)
    response = client.post(
        admin_url(MedicationStatement, "add"),
        {"patient": dora.pk, "name": "Tramadol 50 mg", "route": "oral", "release": "IR", "source": "clinician"},
    )
    assert response.status_code == 302
    med = dora.medications.get()
    assert (med.name, med.clinic_id, med.history.get().history_user) == ("Tramadol 50 mg", clinic.pk, nurse)


def test_nurse_cannot_add_a_patient_to_another_clinic(login, nurse, other_clinic):
    response = login(nurse).post(admin_url(Patient, "add"), _patient_post(other_clinic))
    assert response.status_code == 200
    assert "clinic" in response.context["adminform"].form.errors
    assert not Patient.objects.filter(mrn="A-100").exists()


def _prescription_post(patient, prescriber, pharmacy, **extra) -> dict:
    return {
        "patient": patient.pk,
        "form": "capsule",
        "strength_value": "1.5",
        "strength_unit": "mg/capsule",
        "filler": "mcc",
        "release": "IR",
        "quantity": "30",
        "quantity_unit": "capsules",
        "days_supply": 30,
        "refills": 0,
        "sig": "1 capsule at bedtime",
        "pharmacy": pharmacy.pk,
        "prescriber": prescriber.pk,
        "written_on": "2026-02-01",
        "status": "active",
        **extra,
    }


PrescriptionForm = modelform_factory(CompoundedPrescription, exclude=[])  # any ModelForm, as the clinic pages use


def test_prescriber_is_told_why_slow_release_is_refused_RX_1(prescriber, patient):
    pharmacy = f.PharmacyFactory(clinic=patient.clinic)
    form = PrescriptionForm(_prescription_post(patient, prescriber, pharmacy, release="SR"))
    assert form.errors["release"] == [SLOW_RELEASE_MESSAGE]
    assert not form.non_field_errors()


@pytest.mark.parametrize("role", EVERYONE)
def test_nobody_posts_a_prescription_or_plan_in_the_admin(role, request, login, prescriber, patient):
    pharmacy = f.PharmacyFactory(clinic=patient.clinic)
    client = login(request.getfixturevalue(role))
    response = client.post(admin_url(CompoundedPrescription, "add"), _prescription_post(patient, prescriber, pharmacy))
    assert response.status_code == 403
    response = client.post(admin_url(TitrationPlan, "add"), {"patient": patient.pk, "start_date": "2026-02-01"})
    assert response.status_code == 403
    assert not patient.prescriptions.exists()
    assert not patient.titration_plans.exists()


def test_clinic_admin_deactivates_a_membership_and_edits_the_clinic(login, clinic_admin, nurse, clinic):
    client = login(clinic_admin)
    membership = nurse.memberships.get()
    page = client.get(admin_url(Membership, "change", membership.pk))
    response = client.post(
        admin_url(Membership, "change", membership.pk), {**form_data(page), "is_active": "", "_save": "Save"}
    )
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.is_active is False
    page = client.get(admin_url(Clinic, "change", clinic.pk))
    response = client.post(admin_url(Clinic, "change", clinic.pk), {**form_data(page), "phone": "020 7946 0999"})
    assert response.status_code == 302
    clinic.refresh_from_db()
    assert clinic.phone == "020 7946 0999"
    assert clinic.history.latest().history_user == clinic_admin


def test_clinic_admin_membership_form_offers_own_people_and_unattached_logins_only(
    login, clinic_admin, nurse, clinic, other_clinic, other_prescriber, patient_user
):
    fresh = f.StaffFactory(username="new-starter")
    response = login(clinic_admin).get(admin_url(Membership, "add"))
    fields = response.context["adminform"].form.fields
    users = set(fields["user"].queryset)
    assert {fresh, nurse} <= users
    assert other_prescriber not in users
    assert patient_user not in users  # a patient login made staff would read the whole clinic
    assert list(fields["clinic"].queryset) == [clinic]
    response = login(clinic_admin).post(
        admin_url(Membership, "add"), {"user": fresh.pk, "clinic": other_clinic.pk, "role": Role.PRESCRIBER}
    )
    assert response.status_code == 200
    assert not Membership.objects.filter(user=fresh).exists()


# --- Nobody hard-deletes; archive is a soft delete with history --------------------------------


@pytest.mark.parametrize("role", EVERYONE)
@pytest.mark.parametrize("model", [*WRITERS, *READ_ONLY], ids=label)
def test_nobody_can_hard_delete(model, role, request, login, patient):
    obj = row(model, patient)
    client = login(request.getfixturevalue(role))
    page = client.get(admin_url(model, "change", obj.pk))
    assert page.status_code == 200
    assert b'class="deletelink"' not in page.content
    assert admin_url(model, "delete", obj.pk).encode() not in page.content
    assert client.get(admin_url(model, "delete", obj.pk)).status_code == 403
    assert client.post(admin_url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    changelist = client.get(admin_url(model, "changelist"))
    action_form = changelist.context["action_form"]
    actions = dict(action_form.fields["action"].choices) if action_form else {}
    assert "delete_selected" not in actions
    alive = getattr(model, "objects", model._default_manager)
    assert alive.filter(pk=obj.pk).exists()


@pytest.mark.parametrize("model", SOFT_DELETABLE, ids=label)
def test_archive_action_soft_deletes_and_records_who(model, login, prescriber, patient):
    obj = row(model, patient)
    client = login(prescriber)
    response = client.post(admin_url(model, "changelist"), {"action": "archive_selected", "_selected_action": [obj.pk]})
    assert response.status_code == 302
    assert "Archived 1 record(s)." in messages_of(response)
    kept = model.all_objects.get(pk=obj.pk)
    assert kept.deleted_at is not None
    assert not model.objects.filter(pk=obj.pk).exists()
    latest = obj.history.latest()
    assert latest.history_user == prescriber
    assert latest.deleted_at == kept.deleted_at
    listing = client.get(admin_url(model, "changelist"))
    assert obj.pk not in {o.pk for o in listing.context["cl"].result_list}


@pytest.mark.parametrize(("role", "model"), [("clinic_admin", Patient), ("nurse", InstrumentLicence)])
def test_archive_refused_to_a_role_that_cannot_write(role, model, request, login, patient):
    obj = row(model, patient)
    response = login(request.getfixturevalue(role)).post(
        admin_url(model, "changelist"), {"action": "archive_selected", "_selected_action": [obj.pk]}
    )
    assert "Your role cannot archive these records." in messages_of(response)
    assert model.objects.filter(pk=obj.pk).exists()


@pytest.mark.parametrize("role", EVERYONE)
@pytest.mark.parametrize("model", READ_ONLY_SOFT_DELETABLE, ids=label)
def test_clinical_state_cannot_be_archived_from_the_admin(model, role, request, login, patient):
    obj = row(model, patient)
    before = obj.history.count()
    login(request.getfixturevalue(role)).post(
        admin_url(model, "changelist"), {"action": "archive_selected", "_selected_action": [obj.pk]}
    )
    assert model.objects.filter(pk=obj.pk).exists()
    assert obj.history.count() == before


@pytest.mark.parametrize("model", [Clinic, Membership], ids=label)
def test_records_that_cannot_be_archived_offer_no_archive_action(model, login, clinic_admin):
    response = login(clinic_admin).get(admin_url(model, "changelist"))
    action_form = response.context["action_form"]
    assert action_form is None or "archive_selected" not in dict(action_form.fields["action"].choices)


def test_clinic_admin_cannot_make_a_patient_login_staff(login, clinic_admin, clinic, patient_user):
    response = login(clinic_admin).post(
        admin_url(Membership, "add"), {"user": patient_user.pk, "clinic": clinic.pk, "role": Role.NURSE}
    )
    assert response.status_code == 200
    assert "user" in response.context["adminform"].form.errors
    assert not patient_user.memberships.exists()


def test_patient_login_field_takes_an_unattached_login_but_not_another_clinics(login, nurse, clinic, other_patient):
    other_patient.user = f.UserFactory(username="bob-login")
    other_patient.save()
    fresh = f.UserFactory(username="dora-login")
    client = login(nurse)
    response = client.post(admin_url(Patient, "add"), _patient_post(clinic, user=other_patient.user.pk))
    assert response.status_code == 200
    assert "user" in response.context["adminform"].form.errors
    response = client.post(admin_url(Patient, "add"), _patient_post(clinic, user=fresh.pk))
    assert response.status_code == 302
    assert Patient.objects.get(mrn="A-100").user == fresh


# --- A role counts in its own clinic only ----------------------------------------------------------


def test_a_prescriber_here_who_is_a_nurse_there_writes_licences_only_here(login, prescriber, patient, other_patient):
    """Roles are per clinic: being a prescriber in one clinic gives no prescriber rights in another
    where the same login is a nurse (view, change, add and archive of a record a nurse may not write:
    the clinic's instrument licences, PRO-3)."""
    f.MembershipFactory(clinic=other_patient.clinic, role=Role.NURSE, user=prescriber)
    here = f.InstrumentLicenceFactory(clinic=patient.clinic)
    there = f.InstrumentLicenceFactory(clinic=other_patient.clinic)
    client = login(prescriber)
    assert b'name="_save"' in client.get(admin_url(InstrumentLicence, "change", here.pk)).content
    page = client.get(admin_url(InstrumentLicence, "change", there.pk))
    assert page.status_code == 200 and b'name="_save"' not in page.content  # a nurse there: view only
    assert client.post(admin_url(InstrumentLicence, "change", there.pk), {"_save": "Save"}).status_code == 403

    response = client.post(
        admin_url(InstrumentLicence, "changelist"),
        {"action": "archive_selected", "_selected_action": [here.pk, there.pk]},
        follow=True,
    )
    said = messages_of(response)
    assert "1 record(s) not archived: your role in their clinic cannot archive them." in said
    assert "Archived 1 record(s)." in said
    here.refresh_from_db()
    there.refresh_from_db()
    assert here.deleted_at is not None and there.deleted_at is None

    data = {"instrument": "FIQR", "scope": "commercial", "holder": "OHSU", "reference": "F-1", "_save": "Save"}
    data["valid_from"] = "2026-01-01"
    response = client.post(admin_url(InstrumentLicence, "add"), {**data, "clinic": other_patient.clinic.pk})
    assert response.status_code == 200 and "clinic" in response.context["adminform"].form.errors
    assert not InstrumentLicence.objects.filter(clinic=other_patient.clinic, instrument="FIQR").exists()
    response = client.post(admin_url(InstrumentLicence, "add"), {**data, "clinic": patient.clinic.pk})  # here
    assert response.status_code == 302
    assert InstrumentLicence.objects.filter(clinic=patient.clinic, instrument="FIQR").exists()


def test_a_prescriber_here_who_is_a_nurse_there_sees_plans_in_both_and_writes_neither(
    login, prescriber, patient, other_patient
):
    f.MembershipFactory(clinic=other_patient.clinic, role=Role.NURSE, user=prescriber)
    here, there = f.PlanFactory(patient=patient), f.PlanFactory(patient=other_patient)
    client = login(prescriber)
    for plan in (here, there):
        page = client.get(admin_url(TitrationPlan, "change", plan.pk))
        assert page.status_code == 200 and b'name="_save"' not in page.content
        assert client.post(admin_url(TitrationPlan, "change", plan.pk), {"_save": "Save"}).status_code == 403
    client.post(
        admin_url(TitrationPlan, "changelist"), {"action": "archive_selected", "_selected_action": [here.pk, there.pk]}
    )
    assert TitrationPlan.objects.filter(pk__in=[here.pk, there.pk]).count() == 2
    data = {"target_dose_mg": "4.5", "start_date": "2026-12-01", "status": "draft", "_save": "Save"}
    data.update({"steps-TOTAL_FORMS": 0, "steps-INITIAL_FORMS": 0})
    for owner in (patient, other_patient):
        assert client.post(admin_url(TitrationPlan, "add"), {**data, "patient": owner.pk}).status_code == 403
    assert TitrationPlan.all_objects.count() == 2
