"""The prescription pages: writing one (RX-1, RX-2 days supply), its actions (the opioid gate), the
printable prescription and its PDF; scoped choices, errors beside the fields, roles and privacy."""

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from tests import factories as f
from titration import services
from titration.models import SLOW_RELEASE_MESSAGE, CompoundedPrescription

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def pharmacy(clinic):
    return f.PharmacyFactory(
        clinic=clinic,
        name="Meadow Compounding",
        address="1 Mill Lane\nOxford OX1 1AA",
        phone="01865 000111",
        fax="01865 000222",
        lead_time_days=5,
    )


@pytest.fixture
def their_pharmacy(other_clinic):
    return f.PharmacyFactory(clinic=other_clinic, name="Faraway Compounding")


def new_url(patient) -> str:
    return reverse("clinic:prescription-new", args=[patient.pk])


def post_data(pharmacy, **changes) -> dict:
    data = {
        "pharmacy": pharmacy.pk,
        "form": "capsule",
        "strength_value": "1.5",
        "strength_unit": "mg/capsule",
        "release": "IR",
        "filler": "mcc",
        "filler_other": "",
        "quantity": "60",
        "quantity_unit": "capsules",
        "for_dose_mg": "1.5",
        "days_supply": "",
        "refills": "2",
        "sig": "Take one capsule at bedtime",
        "written_on": "2026-01-05",
        "start_on": "",
        "save": "1",
    }
    return data | changes


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- Writing a prescription --------------------------------------------------------------------------------


def test_pharmacy_choices_are_the_patients_clinic_only_one_entry_each(
    login, prescriber, patient, pharmacy, their_pharmacy
):
    second = f.PharmacyFactory(clinic=patient.clinic, name="Abbey Compounding")
    response = login(prescriber).get(new_url(patient))
    assert response.status_code == 200
    assert list(response.context["form"].fields["pharmacy"].queryset) == [second, pharmacy]
    html = response.content.decode()
    assert html.count(f'<option value="{pharmacy.pk}"') == 1
    assert html.count(f'<option value="{second.pk}"') == 1
    assert "Faraway Compounding" not in html
    assert "1.000" not in html  # no raw "LDN 1.000 mg/mL"-style labels anywhere


def test_another_clinics_pharmacy_posted_is_refused_beside_the_field(login, prescriber, patient, their_pharmacy):
    response = login(prescriber).post(new_url(patient), post_data(their_pharmacy))
    assert response.status_code == 200
    assert response.context["form"].errors["pharmacy"]
    assert not CompoundedPrescription.objects.exists()


def test_zero_strength_is_an_error_beside_the_field_and_what_was_typed_is_kept(login, prescriber, patient, pharmacy):
    response = login(prescriber).post(new_url(patient), post_data(pharmacy, strength_value="0", sig="Two at night"))
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["strength_value"] == ["The strength must be more than 0 (RX-1)."]
    html = response.content.decode()
    assert "Constraint" not in html
    assert "Two at night" in html  # the typed sig is still there
    assert 'name="quantity" value="60"' in html
    assert not CompoundedPrescription.objects.exists()


def test_slow_release_is_refused_beside_the_release_field_RX_1(login, prescriber, patient, pharmacy):
    response = login(prescriber).post(new_url(patient), post_data(pharmacy, release="SR"))
    assert response.context["form"].errors["release"] == [SLOW_RELEASE_MESSAGE]
    assert not CompoundedPrescription.objects.exists()


def test_save_computes_the_days_supply_and_warns_about_a_typed_value_RX_2(login, prescriber, patient, pharmacy):
    response = login(prescriber).post(new_url(patient), post_data(pharmacy, days_supply="30"))
    rx = CompoundedPrescription.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("clinic:prescription", args=[rx.pk])
    assert (rx.days_supply, rx.status, rx.prescriber) == (60, "draft", prescriber)
    assert "typed 30 days; quantity x strength / dose gives 60 days (RX-2)" in messages_of(response)


def test_live_days_supply_partial_computes_as_you_type_RX_2(login, prescriber, patient, pharmacy):
    params = post_data(pharmacy, days_supply="30")
    response = login(prescriber).get(reverse("clinic:prescription-supply", args=[patient.pk]), params)
    assert response.status_code == 200
    html = response.content.decode()
    assert "60 days at 1.5 mg a day" in html
    assert "typed 30 days; quantity x strength / dose gives 60 days (RX-2)" in html
    assert "<html" not in html  # the partial only
    assert not CompoundedPrescription.objects.exists()


def test_new_prescription_page_wires_the_live_calculation(login, prescriber, patient, pharmacy):
    html = login(prescriber).get(new_url(patient)).content.decode()
    assert f'hx-get="{reverse("clinic:prescription-supply", args=[patient.pk])}"' in html
    assert 'hx-include="#rx-form"' in html
    assert "style=" not in html and "hx-on" not in html


def test_calculate_without_javascript_shows_the_days_supply_and_saves_nothing(login, prescriber, patient, pharmacy):
    data = post_data(pharmacy, quantity="90")
    data.pop("save")
    response = login(prescriber).post(new_url(patient), data | {"calculate": "1"})
    assert response.status_code == 200
    assert "90 days at 1.5 mg a day" in response.content.decode()
    assert not CompoundedPrescription.objects.exists()


@pytest.mark.parametrize("role", ["nurse", "clinic_admin"])
def test_nurse_and_clinic_admin_see_the_refusal_and_cannot_post(role, request, login, patient, pharmacy):
    client = login(request.getfixturevalue(role))
    page = client.get(new_url(patient))
    assert page.status_code == 200
    assert "Only a prescriber of the patient&#x27;s clinic can write" in page.content.decode()
    assert b'id="rx-form"' not in page.content
    response = client.post(new_url(patient), post_data(pharmacy))
    assert response.status_code == 403
    assert b"Only a prescriber" in response.content
    assert not CompoundedPrescription.objects.exists()


# --- The prescription and its actions ------------------------------------------------------------------------


@pytest.fixture
def draft(patient, prescriber, pharmacy):
    return f.PrescriptionFactory(patient=patient, prescriber=prescriber, pharmacy=pharmacy, status="draft")


def detail_url(rx) -> str:
    return reverse("clinic:prescription", args=[rx.pk])


def test_detail_shows_the_prescription_and_its_actions(login, prescriber, draft, django_assert_max_num_queries):
    client = login(prescriber)
    with django_assert_max_num_queries(12):
        response = client.get(detail_url(draft))
    html = response.content.decode()
    assert response.status_code == 200
    assert "1.5 mg/capsule" in html and "Draft" in html
    assert 'name="action" value="activate"' in html


def test_prescriber_activates_a_draft(login, prescriber, draft):
    response = login(prescriber).post(detail_url(draft), {"action": "activate"})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == "active"


def test_opioid_gate_refusal_shows_its_reasons_and_an_override_field(login, prescriber, patient, draft):
    f.MedicationFactory(patient=patient, name="Norco 5/325")
    client = login(prescriber)
    response = client.post(detail_url(draft), {"action": "activate"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Blocked: " in html and "A prescriber may override with a reason." in html
    assert "Norco 5/325" in html
    assert 'name="activate-override_reason"' in html
    draft.refresh_from_db()
    assert draft.status == "draft"
    response = client.post(
        detail_url(draft), {"action": "activate", "activate-override_reason": "Norco stopped 3 weeks ago, confirmed"}
    )
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == "active"


def test_nurse_cannot_activate(login, nurse, draft):
    client = login(nurse)
    page = client.get(detail_url(draft)).content.decode()
    assert 'name="action" value="activate"' not in page
    assert "Only a prescriber" in page
    response = client.post(detail_url(draft), {"action": "activate"})
    assert response.status_code == 403
    draft.refresh_from_db()
    assert draft.status == "draft"


def test_unknown_prescription_action_is_not_found(login, prescriber, draft):
    assert login(prescriber).post(detail_url(draft), {"action": "delete"}).status_code == 404


@pytest.mark.skipif(not hasattr(services, "prescription_cancel"), reason="prescription_cancel is not on main yet")
def test_cancel_needs_a_reason(login, prescriber, draft):
    client = login(prescriber)
    response = client.post(detail_url(draft), {"action": "cancel", "cancel-reason": ""})
    assert response.status_code == 200
    assert response.context["actions"][1]["form"].errors["reason"]
    response = client.post(detail_url(draft), {"action": "cancel", "cancel-reason": "wrong strength"})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == "cancelled"


# --- Printable prescription and PDF ----------------------------------------------------------------------------


@pytest.fixture
def printable(patient, prescriber, pharmacy):
    patient.address = "12 Orchard Road\nAbingdon OX14 2AB"
    patient.save()
    prescriber.first_name, prescriber.last_name = "Priya", "Patel"
    prescriber.save()
    f.PrescriberCredentialFactory(
        clinic=patient.clinic,
        user=prescriber,
        credentials="MD",
        licence_numbers="State licence MD123456\nNPI 1234567893",
    )
    return f.PrescriptionFactory(
        patient=patient,
        prescriber=prescriber,
        pharmacy=pharmacy,
        status="active",
        strength_value=D("1.5"),
        quantity=D("30"),
        refills=2,
        sig="Take 1 capsule by mouth at bedtime",
    )


def test_print_page_has_every_field_the_pharmacy_needs(login, prescriber, printable):
    response = login(prescriber).get(reverse("clinic:prescription-print", args=[printable.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    for text in [
        "Alice Ashdown",
        "17 May 1980",  # date of birth
        "12 Orchard Road",
        "Priya Patel, MD",
        "State licence MD123456",
        "NPI 1234567893",
        "Signature",
        "Oral capsule",
        "1.5 mg/capsule",
        "Microcrystalline cellulose",
        "Immediate release",
        "30 capsules",
        "Take 1 capsule by mouth at bedtime",
        "Refills</dt><dd>2",
        "Meadow Compounding",
        "1 Mill Lane",
        "01865 000111",
        "01865 000222",
    ]:
        assert text in html, text
    assert "DRAFT - not valid" not in html
    assert "clinic-titration.css" in html


def test_draft_prints_as_not_valid(login, prescriber, draft):
    html = login(prescriber).get(reverse("clinic:prescription-print", args=[draft.pk])).content.decode()
    assert "DRAFT - not valid" in html


def test_pdf_is_a_pdf(login, prescriber, printable):
    response = login(prescriber).get(reverse("clinic:prescription-pdf", args=[printable.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert response["Cache-Control"] == "no-store"


def test_draft_pdf_is_a_pdf_too(login, nurse, draft):
    response = login(nurse).get(reverse("clinic:prescription-pdf", args=[draft.pk]))  # everyone may print
    assert response.status_code == 200 and response.content.startswith(b"%PDF")


# --- Privacy ---------------------------------------------------------------------------------------------------


def test_another_clinics_prescriber_gets_not_found_everywhere(login, other_prescriber, patient, draft):
    client = login(other_prescriber)
    for url in [
        new_url(patient),
        reverse("clinic:prescription-supply", args=[patient.pk]),
        detail_url(draft),
        reverse("clinic:prescription-print", args=[draft.pk]),
        reverse("clinic:prescription-pdf", args=[draft.pk]),
    ]:
        response = client.get(url)
        assert response.status_code == 404, url
        assert b"Ashdown" not in response.content
    assert client.post(detail_url(draft), {"action": "activate"}).status_code == 404
    draft.refresh_from_db()
    assert draft.status == "draft"


def test_patient_login_is_sent_to_the_staff_login(client, patient_user, draft):
    client.force_login(patient_user)
    for url in [detail_url(draft), reverse("clinic:prescription-pdf", args=[draft.pk]), new_url(draft.patient)]:
        response = client.get(url)
        assert response.status_code == 302 and "login" in response["Location"], url


def test_start_date_before_written_date_is_an_error_beside_the_field(login, prescriber, patient, pharmacy):
    response = login(prescriber).post(new_url(patient), post_data(pharmacy, start_on="2026-01-01"))
    assert response.context["form"].errors["start_on"] == [
        "The start date cannot be before the date the prescription was written."
    ]
    assert not CompoundedPrescription.objects.exists()
