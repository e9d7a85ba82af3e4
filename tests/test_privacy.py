"""Privacy, route by route: a clinic sees its own record and nothing of another clinic's; a patient
login sees only itself and never the admin; an anonymous caller sees nothing at all.

The admin cases iterate ``admin.site._registry``, so a newly registered model is covered without
editing this file; a clinic model without a factory in tests/factories.py fails loudly.
"""

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.messages import get_messages
from django.urls import reverse
from rest_framework.authtoken.models import Token

from ldnclinic import scoping
from patients.models import Clinic, Patient

from . import factories as f

ROLES = ["prescriber", "nurse", "clinic_admin"]

# Registered models that hold no clinic's data. Everything else registered is clinic data.
OPERATOR_ONLY = {"auth.Group", "authtoken.TokenProxy", "patients.User"}  # logins and groups: superuser only
OPERATOR_ONLY |= {"axes.AccessAttempt", "axes.AccessFailureLog", "axes.AccessLog"}  # login attempts: the operator's
SHARED_REFERENCE = {"titration.TitrationProtocol"}  # protocol templates (domain.md 1.2), read by every clinic
# Models of the clinic apps that carry no patient or clinic data, so visible_to does not apply.
NOT_CLINIC_DATA = {"patients.User", "titration.TitrationProtocol", "titration.ProtocolStep"}

ADMIN_MODELS = sorted(admin.site._registry, key=lambda m: m._meta.label)
CLINIC_ADMIN_MODELS = [m for m in ADMIN_MODELS if m._meta.label not in OPERATOR_ONLY | SHARED_REFERENCE]
SCOPED_MODELS = sorted(
    (
        m
        for label in ("patients", "symptoms", "titration")
        for m in apps.get_app_config(label).get_models()
        if not m._meta.model_name.startswith("historical") and m._meta.label not in NOT_CLINIC_DATA
    ),
    key=lambda m: m._meta.label,
)


def label(model) -> str:
    return model._meta.label


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def clinic_id_of(obj) -> int:
    path = getattr(type(obj), "scope_clinic_path", "clinic")
    return obj.pk if path == "pk" else getattr(obj, f"{path}_id")


def assert_not_found(response) -> None:
    """The admin answers a hidden object with 404, or with its redirect to the index and the
    "doesn't exist" message; either way no byte of the object reaches the page."""
    if response.status_code == 302:
        assert response.url == reverse("admin:index")
        messages = [str(m) for m in get_messages(response.wsgi_request)]
        assert any("exist. Perhaps it was deleted?" in m for m in messages), messages
    else:
        assert response.status_code == 404, response.status_code


def assert_redirected_to_login(response) -> None:
    assert response.status_code == 302, response.status_code
    assert response.url.startswith(reverse("admin:login")), response.url


@pytest.fixture
def two_rows(patient, other_patient):
    """(clinic A's row, clinic B's row) of a model."""
    return lambda model: (f.row_for(model, patient), f.row_for(model, other_patient))


# --- The registry itself ------------------------------------------------------------------------


@pytest.mark.parametrize("model", ADMIN_MODELS, ids=label)
def test_every_admin_model_is_classified_and_clinic_models_have_a_factory(model):
    if model in CLINIC_ADMIN_MODELS:
        clinic_path = getattr(model, "scope_clinic_path", "clinic")
        assert clinic_path == "pk" or any(fl.name == clinic_path for fl in model._meta.fields), (
            f"{label(model)} is registered in the admin but has no clinic: add it to OPERATOR_ONLY or "
            "SHARED_REFERENCE in tests/test_privacy.py if it really holds no clinic data"
        )
        f.factory_for(model)  # raises LookupError naming the missing factory


# --- Clinic staff: their clinic's rows, never another clinic's ----------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("model", CLINIC_ADMIN_MODELS, ids=label)
def test_changelist_lists_own_clinic_rows_and_none_of_another_clinic(model, role, request, login, clinic, two_rows):
    mine, theirs = two_rows(model)
    response = login(request.getfixturevalue(role)).get(admin_url(model, "changelist"))
    assert response.status_code == 200
    shown = list(response.context["cl"].result_list)
    assert mine.pk in {o.pk for o in shown}
    assert theirs.pk not in {o.pk for o in shown}
    assert {clinic_id_of(o) for o in shown} == {clinic.pk}


def test_patient_search_does_not_reach_another_clinic(login, prescriber, patient, other_patient):
    client = login(prescriber)
    for term in (other_patient.mrn, other_patient.last_name):
        response = client.get(admin_url(Patient, "changelist"), {"q": term})
        assert list(response.context["cl"].result_list) == []
    response = client.get(admin_url(Patient, "changelist"), {"q": patient.last_name})
    assert list(response.context["cl"].result_list) == [patient]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("model", CLINIC_ADMIN_MODELS, ids=label)
def test_other_clinic_change_page_is_not_found(model, role, request, login, two_rows):
    mine, theirs = two_rows(model)
    client = login(request.getfixturevalue(role))
    assert client.get(admin_url(model, "change", mine.pk)).status_code == 200
    response = client.get(admin_url(model, "change", theirs.pk))
    assert_not_found(response)
    assert str(theirs).encode() not in response.content


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("model", CLINIC_ADMIN_MODELS, ids=label)
def test_other_clinic_history_pages_are_not_found(model, role, request, login, two_rows):
    mine, theirs = two_rows(model)
    client = login(request.getfixturevalue(role))
    assert client.get(admin_url(model, "history", mine.pk)).status_code == 200
    response = client.get(admin_url(model, "history", theirs.pk))
    assert_not_found(response)
    assert str(theirs).encode() not in response.content
    version = theirs.history.latest()
    response = client.get(admin_url(model, "simple_history", theirs.pk, version.history_id))
    assert_not_found(response)
    assert str(theirs).encode() not in response.content


def test_history_page_of_a_malformed_id_is_not_found(login, prescriber):
    response = login(prescriber).get(admin_url(Patient, "history", "not-a-number"))
    assert response.status_code == 404


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    "model", [*CLINIC_ADMIN_MODELS, *(m for m in ADMIN_MODELS if label(m) in SHARED_REFERENCE)], ids=label
)
def test_add_form_offers_no_choice_from_another_clinic(model, role, request, login, other_patient, other_prescriber):
    other_patient.user = f.UserFactory(username="bob-login")
    other_patient.save()
    theirs = [f.row_for(m, other_patient) for m in SCOPED_MODELS]
    theirs += [other_prescriber, other_patient.user]
    response = login(request.getfixturevalue(role)).get(admin_url(model, "add"))
    if response.status_code == 403:
        return  # this role may not add here at all: tests/test_roles.py
    assert response.status_code == 200
    forms = [response.context["adminform"].form]
    forms += [inline.formset.empty_form for inline in response.context["inline_admin_formsets"]]
    for form in forms:
        for name, field in form.fields.items():
            queryset = getattr(field, "queryset", None)
            if queryset is None or (form.prefix and name == form._meta.model._meta.pk.name):
                # An inline row's hidden id: never rendered as choices, and Django resolves a posted id
                # only among the parent's own rows (BaseModelFormSet._existing_object).
                continue
            leaked = [o for o in theirs if isinstance(o, queryset.model) and queryset.filter(pk=o.pk).exists()]
            assert not leaked, f"{label(model)} add form, field {name!r}, offers clinic B's {leaked}"
    assert str(other_patient).encode() not in response.content
    assert other_prescriber.username.encode() not in response.content


def test_prescription_page_shows_own_patient_pharmacy_and_prescriber_only(
    login, prescriber, patient, other_patient, other_prescriber
):
    # No add page and no choices any more: prescriptions are read-only in the admin (issue 10).
    pharmacy = f.PharmacyFactory(clinic=patient.clinic, name="Pharmacy A")
    f.PharmacyFactory(clinic=other_patient.clinic, name="Pharmacy B")
    client = login(prescriber)
    assert client.get(admin_url(f.CompoundedPrescription, "add")).status_code == 403
    rx = f.PrescriptionFactory(patient=patient, pharmacy=pharmacy, prescriber=prescriber)
    page = client.get(admin_url(f.CompoundedPrescription, "change", rx.pk))
    assert page.context["adminform"].form.fields == {}  # nothing to choose from
    html = page.content.decode()
    assert "Pharmacy A" in html and str(patient) in html
    assert "Pharmacy B" not in html and str(other_patient) not in html and other_prescriber.username not in html


@pytest.mark.parametrize(
    ("source", "field", "theirs_attr"),
    [("compoundedprescription", "patient", "patient"), ("compoundedprescription", "pharmacy", "pharmacy")],
)
def test_autocomplete_offers_no_other_clinic_rows(
    source, field, theirs_attr, login, prescriber, patient, other_patient
):
    mine, theirs = f.PrescriptionFactory(patient=patient), f.PrescriptionFactory(patient=other_patient)
    params = {"app_label": "titration", "model_name": source, "field_name": field, "term": ""}
    response = login(prescriber).get(reverse("admin:autocomplete"), params)
    assert response.status_code == 200
    ids = {r["id"] for r in response.json()["results"]}
    assert str(getattr(mine, theirs_attr).pk) in ids
    assert str(getattr(theirs, theirs_attr).pk) not in ids


@pytest.mark.parametrize("model", [m for m in CLINIC_ADMIN_MODELS if hasattr(m, "deleted_at")], ids=label)
def test_archive_action_cannot_reach_another_clinic_row(model, login, prescriber, two_rows):
    _, theirs = two_rows(model)
    login(prescriber).post(
        admin_url(model, "changelist"), {"action": "archive_selected", "_selected_action": [theirs.pk]}
    )
    assert model.objects.filter(pk=theirs.pk).exists()


def test_inactive_membership_grants_nothing(login, prescriber, other_clinic, patient, other_patient):
    f.MembershipFactory(user=prescriber, clinic=other_clinic, is_active=False)
    response = login(prescriber).get(admin_url(Patient, "changelist"))
    assert list(response.context["cl"].result_list) == [patient]
    assert_not_found(login(prescriber).get(admin_url(Patient, "change", other_patient.pk)))


def test_staff_login_without_membership_sees_no_clinic_data(login, patient):
    stranger = f.StaffFactory(username="no-clinic")
    client = login(stranger)
    assert client.get(reverse("admin:index")).context["app_list"] == []
    for model in CLINIC_ADMIN_MODELS:
        assert client.get(admin_url(model, "changelist")).status_code == 403, label(model)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("model", [m for m in ADMIN_MODELS if label(m) in OPERATOR_ONLY], ids=label)
def test_operator_only_admin_is_refused_to_clinic_staff(model, role, request, login):
    client = login(request.getfixturevalue(role))
    assert client.get(admin_url(model, "changelist")).status_code == 403
    assert client.get(admin_url(model, "add")).status_code == 403


# --- A patient login: no admin, and nothing of another patient ------------------------------------


@pytest.mark.parametrize("model", ADMIN_MODELS, ids=label)
def test_patient_login_gets_no_admin_access(model, login, patient, patient_user):
    pk = f.row_for(model, patient).pk if model in CLINIC_ADMIN_MODELS else 1
    client = login(patient_user)
    assert_redirected_to_login(client.get(reverse("admin:index")))
    for view, args in [("changelist", ()), ("add", ()), ("change", (pk,)), ("history", (pk,))]:
        assert_redirected_to_login(client.get(admin_url(model, view, *args)))


def test_patient_login_wrongly_marked_staff_still_gets_no_clinic_data(login, patient, patient_user):
    patient_user.is_staff = True
    patient_user.save()
    client = login(patient_user)
    for model in CLINIC_ADMIN_MODELS:
        assert client.get(admin_url(model, "changelist")).status_code == 403, label(model)


@pytest.mark.parametrize("model", SCOPED_MODELS, ids=label)
def test_patient_login_sees_only_their_own_rows(model, patient, patient_user, sibling_patient, other_patient):
    own = f.row_for(model, patient)
    f.row_for(model, sibling_patient)
    f.row_for(model, other_patient)
    visible = set(scoping.visible_to(patient_user, model).values_list("pk", flat=True))
    if getattr(model, "scope_patient_path", "patient") is None:
        assert visible == set(), "clinic-level rows are staff data, not shown to a patient login"
    else:
        assert visible == {own.pk}


def test_archived_patient_login_sees_nothing(patient, patient_user):
    f.MedicationFactory(patient=patient)
    patient.delete()
    user = type(patient_user).objects.get(pk=patient_user.pk)
    assert not scoping.visible_to(user, Patient).exists()
    assert not scoping.visible_to(user, f.MedicationStatement).exists()


# --- Anonymous: nothing anywhere ------------------------------------------------------------------


@pytest.mark.parametrize("model", ADMIN_MODELS, ids=label)
def test_anonymous_is_sent_to_login_from_every_admin_page(model, client, patient):
    pk = f.row_for(model, patient).pk if model in CLINIC_ADMIN_MODELS else 1
    for view, args in [("changelist", ()), ("add", ()), ("change", (pk,)), ("history", (pk,)), ("delete", (pk,))]:
        assert_redirected_to_login(client.get(admin_url(model, view, *args)))


def test_anonymous_is_refused_by_the_api_and_its_docs(api_client, patient):
    for path in ["/api/v1/", "/api/v1/patients/", f"/api/v1/patients/{patient.pk}/", "/api/schema/", "/api/docs/"]:
        response = api_client.get(path)
        assert response.status_code in (401, 403), path
        assert patient.mrn.encode() not in response.content


# --- API ------------------------------------------------------------------------------------------


def _api_ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_api_lists_only_the_callers_clinic_patients(api_client, prescriber, patient, sibling_patient, other_patient):
    api_client.force_authenticate(prescriber)
    assert _api_ids(api_client.get("/api/v1/patients/")) == {patient.pk, sibling_patient.pk}


def test_api_other_clinic_patient_detail_is_404(api_client, prescriber, patient, other_patient):
    api_client.force_authenticate(prescriber)
    assert api_client.get(f"/api/v1/patients/{patient.pk}/").json()["mrn"] == patient.mrn
    response = api_client.get(f"/api/v1/patients/{other_patient.pk}/")
    assert response.status_code == 404
    assert other_patient.mrn.encode() not in response.content


def test_api_hides_archived_patients(api_client, prescriber, patient, sibling_patient):
    sibling_patient.delete()
    api_client.force_authenticate(prescriber)
    assert _api_ids(api_client.get("/api/v1/patients/")) == {patient.pk}
    assert api_client.get(f"/api/v1/patients/{sibling_patient.pk}/").status_code == 404


def test_api_refuses_a_patient_login_deny_by_default(api_client, patient, patient_user):
    api_client.force_authenticate(patient_user)
    for path in ["/api/v1/patients/", f"/api/v1/patients/{patient.pk}/"]:
        assert api_client.get(path).status_code in (401, 403), path


def test_api_token_authentication_is_scoped_the_same_way(api_client, prescriber, patient, other_patient):
    token = Token.objects.create(user=prescriber)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert _api_ids(api_client.get("/api/v1/patients/")) == {patient.pk}
    assert api_client.get(f"/api/v1/patients/{other_patient.pk}/").status_code == 404


def test_api_token_of_another_clinic_sees_only_that_clinic(api_client, other_prescriber, patient, other_patient):
    token = Token.objects.create(user=other_prescriber)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert _api_ids(api_client.get("/api/v1/patients/")) == {other_patient.pk}
    assert api_client.get(f"/api/v1/patients/{patient.pk}/").status_code == 404


def test_api_token_of_a_patient_login_or_a_bad_token_is_refused(api_client, patient, patient_user):
    token = Token.objects.create(user=patient_user)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api_client.get("/api/v1/patients/").status_code == 403
    api_client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert api_client.get("/api/v1/patients/").status_code in (401, 403)


def test_api_token_stops_working_when_membership_ends(api_client, prescriber, patient):
    token = Token.objects.create(user=prescriber)
    prescriber.memberships.update(is_active=False)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api_client.get("/api/v1/patients/").status_code == 403


def test_api_schema_and_docs_are_served_to_staff(api_client, prescriber):
    api_client.force_authenticate(prescriber)
    schema = api_client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/patients/" in schema.content
    assert api_client.get("/api/docs/").status_code == 200


# --- Query counts: the same bound at 5 rows and at 50 ---------------------------------------------

PATIENT_CHANGELIST_MAX_QUERIES = 10
API_LIST_MAX_QUERIES = 6


def _patients(clinic, other_clinic, n: int) -> None:
    for _ in range(n):
        for owner in (clinic, other_clinic):
            p = f.PatientFactory(clinic=owner)
            f.PatientConditionFactory(patient=p)
            f.MedicationFactory(patient=p)


@pytest.mark.parametrize("rows", [5, 50])
def test_patient_changelist_query_count_does_not_grow_with_rows(
    rows, login, prescriber, clinic, other_clinic, django_assert_max_num_queries
):
    _patients(clinic, other_clinic, rows)
    client = login(prescriber)
    with django_assert_max_num_queries(PATIENT_CHANGELIST_MAX_QUERIES):
        response = client.get(admin_url(Patient, "changelist"))
    assert len(response.context["cl"].result_list) == rows


@pytest.mark.parametrize("rows", [5, 50])
def test_api_patient_list_query_count_does_not_grow_with_rows(
    rows, api_client, prescriber, clinic, other_clinic, django_assert_max_num_queries
):
    _patients(clinic, other_clinic, rows)
    token = Token.objects.create(user=prescriber)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    with django_assert_max_num_queries(API_LIST_MAX_QUERIES):
        response = api_client.get("/api/v1/patients/")
    assert response.json()["count"] == rows
    assert all(len(row["conditions"]) == 1 for row in response.json()["results"])


def test_clinic_model_is_clinic_scoped_for_staff(prescriber, clinic, other_clinic):
    assert list(scoping.visible_to(prescriber, Clinic)) == [clinic]
