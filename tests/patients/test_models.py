"""Patient record constraints: what the database refuses even when full_clean is bypassed, and the
messages a clinician reads when full_clean catches it first. Soft delete and history."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from patients.models import Clinic, LabResult, MedicationStatement, Membership, Patient, PatientCondition

from .. import factories as f


def refused_by_database(queryset, **values) -> None:
    """The row cannot be written with ``values`` by a bulk update, which skips every Python check."""
    with pytest.raises(IntegrityError), transaction.atomic():
        queryset.update(**values)


def messages(exc: pytest.ExceptionInfo) -> dict[str, list[str]]:
    return exc.value.message_dict


# --- MRN --------------------------------------------------------------------------------------


def test_mrn_duplicate_in_same_clinic_refused_by_database(patient):
    with pytest.raises(IntegrityError), transaction.atomic():
        f.PatientFactory(clinic=patient.clinic, mrn=patient.mrn)


def test_mrn_duplicate_in_same_clinic_refused_by_full_clean(patient):
    duplicate = f.PatientFactory.build(clinic=patient.clinic, mrn=patient.mrn)
    with pytest.raises(ValidationError) as exc:
        duplicate.full_clean()
    assert messages(exc)["__all__"] == ["Patient with this Clinic and MRN already exists."]


def test_mrn_reusable_in_another_clinic(patient, other_clinic):
    twin = f.PatientFactory.build(clinic=other_clinic, mrn=patient.mrn)
    twin.full_clean()
    twin.save()
    assert Patient.objects.filter(mrn=patient.mrn).count() == 2


# --- Status ------------------------------------------------------------------------------------


def test_discontinued_without_reason_refused_by_database(patient):
    refused_by_database(Patient.objects.filter(pk=patient.pk), status="discontinued")
    Patient.objects.filter(pk=patient.pk).update(status="discontinued", discontinued_reason="No benefit at 12 weeks")


def test_discontinued_without_reason_refused_by_full_clean(patient):
    patient.status = "discontinued"
    patient.discontinued_reason = "   "
    with pytest.raises(ValidationError) as exc:
        patient.full_clean()
    assert messages(exc)["discontinued_reason"] == ["Say why the patient was discontinued."]
    patient.discontinued_reason = "No benefit after 12 weeks at 4.5 mg (EFF-2)"
    patient.full_clean()


def test_unknown_patient_status_refused_by_database(patient):
    refused_by_database(Patient.objects.filter(pk=patient.pk), status="cured")


# --- Time zones (REM-2 reminders run in the patient's local time) --------------------------------


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "GMT+25", "europe/london ", ""])
def test_invalid_patient_time_zone_refused(patient, zone):
    patient.time_zone = zone
    with pytest.raises(ValidationError) as exc:
        patient.full_clean()
    assert "time_zone" in messages(exc)


def test_invalid_time_zone_message_gives_an_example(patient, clinic):
    for obj in (patient, clinic):
        obj.time_zone = "Mars/Olympus_Mons"
        with pytest.raises(ValidationError) as exc:
            obj.full_clean()
        assert messages(exc)["time_zone"] == [
            "'Mars/Olympus_Mons' is not a known IANA time zone (for example Europe/London)."
        ]


def test_valid_time_zone_accepted(patient):
    patient.time_zone = "America/New_York"
    patient.full_clean()
    assert patient.zone.key == "America/New_York"


# --- Logins ------------------------------------------------------------------------------------


def test_staff_login_cannot_be_a_patient_login(patient, nurse):
    patient.user = nurse
    with pytest.raises(ValidationError) as exc:
        patient.full_clean()
    assert messages(exc)["user"] == ["A staff login cannot also be a patient login."]


def test_patient_login_cannot_be_a_staff_login(patient_user, clinic):
    membership = Membership(user=patient_user, clinic=clinic, role="nurse")
    with pytest.raises(ValidationError) as exc:
        membership.full_clean()
    assert messages(exc)["user"] == ["A patient login cannot also be a staff login."]


def test_unknown_membership_role_refused_by_database(nurse):
    refused_by_database(Membership.objects.filter(user=nurse), role="superuser")


# --- Clinic of a row follows its patient --------------------------------------------------------


@pytest.mark.parametrize("model", [PatientCondition, MedicationStatement, LabResult], ids=lambda m: m.__name__)
def test_row_with_a_clinic_other_than_its_patients_refused_on_save(model, patient, other_clinic, other_patient):
    stray = f.factory_for(model).build(patient=patient)
    stray.clinic = other_clinic
    with pytest.raises(ValidationError, match="different clinic than its patient"):
        stray.save()
    row = f.row_for(model, patient)
    assert row.clinic_id == patient.clinic_id  # filled in from the patient
    row.patient = other_patient  # moving a row to another clinic's patient is refused too
    with pytest.raises(ValidationError, match="different clinic than its patient"):
        row.save()


# --- Medication, condition and lab constraints ---------------------------------------------------


def test_medication_last_dose_before_start_refused_by_database(patient):
    med = f.MedicationFactory(patient=patient, start_date=dt.date(2026, 1, 10))
    refused_by_database(MedicationStatement.objects.filter(pk=med.pk), last_dose_date=dt.date(2026, 1, 9))


def test_condition_recorded_once_per_patient_but_again_after_archive(patient):
    first = f.PatientConditionFactory(patient=patient, condition="crohns")
    with pytest.raises(IntegrityError), transaction.atomic():
        f.PatientConditionFactory(patient=patient, condition="crohns")
    first.delete()
    f.PatientConditionFactory(patient=patient, condition="crohns")
    assert PatientCondition.all_objects.filter(patient=patient, condition="crohns").count() == 2


def test_unknown_condition_refused_by_database(patient):
    cond = f.PatientConditionFactory(patient=patient)
    refused_by_database(PatientCondition.objects.filter(pk=cond.pk), condition="gout")


def test_lab_reference_range_reversed_refused_by_database(patient):
    lab = f.LabResultFactory(patient=patient)
    refused_by_database(LabResult.objects.filter(pk=lab.pk), ref_low=Decimal("30"), ref_high=Decimal("20"))


def test_lab_other_test_without_name_refused_by_database(patient):
    lab = f.LabResultFactory(patient=patient)
    refused_by_database(LabResult.objects.filter(pk=lab.pk), test="other", test_name="")


# --- Soft delete -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [Patient, PatientCondition, MedicationStatement, LabResult], ids=lambda m: m.__name__)
def test_model_delete_keeps_the_row_and_hides_it(model, patient):
    row = f.row_for(model, patient)
    row.delete()
    assert model.all_objects.get(pk=row.pk).deleted_at is not None
    assert not model.objects.filter(pk=row.pk).exists()


@pytest.mark.parametrize("model", [Patient, PatientCondition, MedicationStatement, LabResult], ids=lambda m: m.__name__)
def test_queryset_delete_keeps_the_rows_and_hides_them(model, patient, sibling_patient):
    rows = [f.row_for(model, patient), f.row_for(model, sibling_patient)]
    model.objects.filter(pk__in=[r.pk for r in rows]).delete()
    assert model.all_objects.filter(pk__in=[r.pk for r in rows], deleted_at__isnull=False).count() == 2
    assert not model.objects.filter(pk__in=[r.pk for r in rows]).exists()


def test_queryset_delete_records_history_for_each_row(patient, sibling_patient):
    Patient.objects.filter(pk__in=[patient.pk, sibling_patient.pk]).delete()
    for p in (patient, sibling_patient):
        assert p.history.latest().deleted_at is not None


def test_archived_medication_hidden_from_patient_but_restorable(patient):
    med = f.MedicationFactory(patient=patient)
    med.delete()
    assert list(patient.medications.all()) == []
    med.restore()
    assert list(patient.medications.all()) == [med]


# --- History: who, when, what ------------------------------------------------------------------


def test_patient_change_through_admin_records_who_when_what(admin_change, nurse, patient):
    before = timezone.now()
    response = admin_change(nurse, patient, mobile="07700 900123")
    assert response.status_code == 302
    latest, previous = patient.history.all()[:2]
    assert latest.history_user == nurse
    assert latest.history_date >= before
    assert latest.diff_against(previous).changed_fields == ["mobile"]
    assert latest.mobile == "07700 900123"


def test_medication_change_through_admin_records_who_and_what(admin_change, nurse, patient):
    med = f.MedicationFactory(patient=patient, name="Codeine 30 mg")
    response = admin_change(nurse, med, last_dose_date="2026-02-01", start_date="2026-01-01")
    assert response.status_code == 302
    latest, previous = med.history.all()[:2]
    assert (latest.history_type, latest.history_user) == ("~", nurse)
    assert set(latest.diff_against(previous).changed_fields) == {"start_date", "last_dose_date"}


def test_clinic_change_through_admin_records_who(admin_change, clinic_admin, clinic):
    assert admin_change(clinic_admin, clinic, phone="020 7946 0111").status_code == 302
    assert Clinic.objects.get(pk=clinic.pk).history.latest().history_user == clinic_admin
