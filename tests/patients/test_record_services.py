"""The patient record's writers (patients/record.py): who may write, what is refused as implausible,
that a refusal writes nothing, and that every write says who and why on its history row. The rules
they hand over to (the opioid check, LAB-2, reminder planning) run in the same transaction."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from patients import record
from patients.flag_models import ClinicianTask, ConflictFlag, FlagStatus, TaskKind
from patients.models import LabResult, MedicationStatement, Patient, PatientCondition
from patients.services import patient_today
from tests import factories as f
from titration.models import Reminder

pytestmark = pytest.mark.django_db

NEW = {
    "mrn": "A-100",
    "first_name": "Dora",
    "last_name": "Dunmore",
    "date_of_birth": dt.date(1975, 3, 14),
    "sex": "female",
    "email": "dora@example.test",
    "mobile": "+44 7700 900123",
    "time_zone": "Europe/London",
    "dose_time": "bedtime",
}
NORCO = {"name": "Norco 5/325", "route": "oral", "release": "IR", "source": "patient"}


def last_history(obj):
    return obj.history.order_by("-history_id").first()


def new_patient(actor, clinic, **changes):
    values = {**NEW, "conditions": [], "medications": [], **changes}
    return record.patient_create(actor=actor, clinic=clinic, **values)


def errors_of(excinfo) -> dict:
    return excinfo.value.message_dict


# --- patient_create -------------------------------------------------------------------------------


def test_patient_create_writes_patient_conditions_and_flags_an_opioid_at_once(nurse, clinic):
    last = timezone.now().date() - dt.timedelta(days=3)
    patient = new_patient(
        nurse,
        clinic,
        conditions=["fibromyalgia", {"condition": "long_covid", "diagnosed_on": dt.date(2022, 5, 1)}, "fibromyalgia"],
        medications=[
            {**NORCO, "last_dose_date": last},
            {"name": "metformin 500 mg", "route": "oral", "release": "IR", "source": "records"},
        ],
    )
    assert (patient.clinic, patient.status, patient.mrn) == (clinic, "screening", "A-100")
    assert sorted(patient.conditions.values_list("condition", flat=True)) == ["fibromyalgia", "long_covid"]
    (flag,) = ConflictFlag.objects.filter(patient=patient)
    assert (flag.kind, flag.status, flag.washout_days) == ("conflict", "open", 10)
    assert "hydrocodone" in flag.ingredients
    assert flag.earliest_safe_start == last + dt.timedelta(days=10)  # OPI-W1
    for row in [patient, *patient.conditions.all(), *patient.medications.all()]:
        history = last_history(row)
        assert (history.history_user, history.history_change_reason) == (nurse, "new patient")


@pytest.mark.parametrize("who", ["clinic_admin", "other_prescriber"])
def test_patient_create_refused_to_a_clinic_admin_and_another_clinics_prescriber(who, request, clinic):
    actor = request.getfixturevalue(who)
    with pytest.raises(PermissionDenied, match="prescriber or nurse"):
        new_patient(actor, clinic)
    assert not Patient.all_objects.filter(mrn="A-100").exists()


def test_patient_create_duplicate_mrn_is_an_error_on_mrn_and_writes_nothing(prescriber, clinic, patient):
    before = (Patient.all_objects.count(), MedicationStatement.all_objects.count())
    with pytest.raises(ValidationError) as excinfo:
        new_patient(prescriber, clinic, mrn="a-001", medications=[NORCO])  # the fixture's A-001, another case
    assert errors_of(excinfo) == {"mrn": [record.DUPLICATE_MRN]}
    assert (Patient.all_objects.count(), MedicationStatement.all_objects.count()) == before


def test_the_same_mrn_in_another_clinic_is_fine(other_prescriber, other_clinic, patient):
    assert new_patient(other_prescriber, other_clinic, mrn=patient.mrn).clinic == other_clinic


@pytest.mark.parametrize(
    ("born", "message"),
    [
        (dt.date(1899, 12, 31), "from 1900 on"),
        (None, "future"),  # tomorrow in the patient's own time zone
    ],
)
def test_patient_create_refuses_an_implausible_date_of_birth(prescriber, clinic, born, message):
    born = born or timezone.now().date() + dt.timedelta(days=2)
    with pytest.raises(ValidationError) as excinfo:
        new_patient(prescriber, clinic, date_of_birth=born)
    assert message in errors_of(excinfo)["date_of_birth"][0]
    assert not Patient.all_objects.filter(mrn="A-100").exists()


def test_patient_create_collects_every_field_error_and_keys_medication_rows_by_formset_name(prescriber, clinic):
    bad_row = {**NORCO, "start_date": dt.date(2026, 2, 1), "last_dose_date": dt.date(2026, 1, 1)}
    with pytest.raises(ValidationError) as excinfo:
        new_patient(
            prescriber,
            clinic,
            first_name=" ",
            email="not-an-email",
            time_zone="Mars/Olympus",
            medications=[NORCO, bad_row],
        )
    errors = errors_of(excinfo)
    assert {"first_name", "email", "time_zone", "medications-1-last_dose_date"} <= set(errors)
    assert "medications-0-name" not in errors
    assert not MedicationStatement.all_objects.exists()


def test_patient_create_refuses_a_lab_sourced_medication_row(prescriber, clinic):
    with pytest.raises(ValidationError) as excinfo:
        new_patient(prescriber, clinic, medications=[{**NORCO, "source": "lab"}])
    assert "urine drug screen" in errors_of(excinfo)["medications-0-source"][0]


def test_patient_create_refuses_an_unknown_condition(prescriber, clinic):
    with pytest.raises(ValidationError) as excinfo:
        new_patient(prescriber, clinic, conditions=["gout"])
    assert "conditions" in errors_of(excinfo)


# --- patient_update -------------------------------------------------------------------------------


def test_patient_update_changes_details_with_who_and_why(nurse, patient):
    updated = record.patient_update(
        actor=nurse, patient=patient, first_name="Alicia", mobile="07700 900456", reason="spelling"
    )
    assert (updated.first_name, updated.mobile) == ("Alicia", "07700 900456")
    history = last_history(updated)
    assert history.history_user == nurse
    assert history.history_change_reason == "details changed (first_name, mobile): spelling"


def test_patient_update_with_no_change_writes_nothing(nurse, patient):
    count = patient.history.count()
    record.patient_update(actor=nurse, patient=patient, first_name=patient.first_name)
    assert patient.history.count() == count


def test_patient_update_never_changes_the_status(nurse, patient):
    with pytest.raises(TypeError, match="patient_set_status"):
        record.patient_update(actor=nurse, patient=patient, status="active")
    patient.refresh_from_db()
    assert patient.status == "screening"


def test_patient_update_refuses_another_patients_mrn(nurse, patient, sibling_patient):
    with pytest.raises(ValidationError) as excinfo:
        record.patient_update(actor=nurse, patient=patient, mrn=sibling_patient.mrn)
    assert errors_of(excinfo) == {"mrn": [record.DUPLICATE_MRN]}
    patient.refresh_from_db()
    assert patient.mrn == "A-001"


def test_patient_update_refused_to_a_clinic_admin(clinic_admin, patient):
    with pytest.raises(PermissionDenied):
        record.patient_update(actor=clinic_admin, patient=patient, first_name="X")


# --- conditions -----------------------------------------------------------------------------------


def test_condition_add_and_archive_with_reason(nurse, patient):
    row = record.condition_add(actor=nurse, patient=patient, condition="crohns", diagnosed_on=dt.date(2019, 1, 1))
    assert last_history(row).history_change_reason == "condition added"
    with pytest.raises(ValidationError) as excinfo:
        record.condition_add(actor=nurse, patient=patient, condition="crohns")
    assert "already" in errors_of(excinfo)["condition"][0]
    with pytest.raises(ValidationError) as excinfo:
        record.condition_archive(actor=nurse, condition=row, reason="  ")
    assert "reason" in errors_of(excinfo)
    archived = record.condition_archive(actor=nurse, condition=row, reason="diagnosis revised")
    assert archived.deleted_at is not None
    history = last_history(archived)
    assert (history.history_user, history.history_change_reason) == (nurse, "archived: diagnosis revised")
    assert not PatientCondition.objects.filter(patient=patient).exists()
    # archived, it can be added again (the once-per-patient rule counts the live rows)
    assert record.condition_add(actor=nurse, patient=patient, condition="crohns").deleted_at is None


# --- medications ----------------------------------------------------------------------------------


def test_medication_add_returns_the_open_conflict_from_the_same_request_OPI_W1(nurse, patient):
    last = patient_today(patient) - dt.timedelta(days=2)
    medication, flags = record.medication_add(actor=nurse, patient=patient, last_dose_date=last, **NORCO)
    (flag,) = flags
    assert (flag.kind, flag.medication, flag.washout_days) == ("conflict", medication, 10)
    assert flag.earliest_safe_start == last + dt.timedelta(days=10)
    assert medication.ingredients == ["acetaminophen", "hydrocodone"]
    history = last_history(medication)
    assert (history.history_user, history.history_change_reason) == (nurse, "medication added")


def test_medication_add_metformin_returns_no_flag(nurse, patient):
    medication, flags = record.medication_add(
        actor=nurse, patient=patient, name="metformin", route="oral", release="IR", source="clinician"
    )
    assert flags == [] and medication.pk


def test_medication_add_refuses_dates_out_of_order_or_before_1900(nurse, patient):
    with pytest.raises(ValidationError) as excinfo:
        record.medication_add(
            actor=nurse, patient=patient, start_date=dt.date(1850, 1, 1), last_dose_date=dt.date(1849, 1, 1), **NORCO
        )
    errors = errors_of(excinfo)
    assert "1900" in errors["start_date"][0]
    assert any("before the start date" in e for e in errors["last_dose_date"])
    assert not MedicationStatement.objects.filter(patient=patient).exists()


def test_medication_add_refused_to_a_clinic_admin(clinic_admin, patient):
    with pytest.raises(PermissionDenied, match="prescriber or nurse"):
        record.medication_add(actor=clinic_admin, patient=patient, **NORCO)


def test_a_nurse_records_the_last_dose_and_the_earliest_start_follows(nurse, patient):
    medication, _ = record.medication_add(actor=nurse, patient=patient, **NORCO)
    last = patient_today(patient) - dt.timedelta(days=3)
    medication, (flag,) = record.medication_update(actor=nurse, medication=medication, last_dose_date=last)
    assert flag.earliest_safe_start == last + dt.timedelta(days=10)
    assert last_history(medication).history_change_reason == "medication changed (last_dose_date)"


def test_renaming_a_medicine_with_a_live_conflict_is_a_prescribers_call(nurse, prescriber, patient):
    medication, _ = record.medication_add(actor=nurse, patient=patient, **NORCO)
    with pytest.raises(PermissionDenied, match="prescriber"):
        record.medication_update(actor=nurse, medication=medication, name="Tylenol 325")
    assert ConflictFlag.objects.get(medication=medication).status == FlagStatus.OPEN
    medication, flags = record.medication_update(
        actor=prescriber, medication=medication, name="Tylenol 325", reason="pharmacy record: no hydrocodone"
    )
    assert flags == []
    assert ConflictFlag.objects.get(medication=medication).status == FlagStatus.RESOLVED


def test_medication_archive_needs_a_reason_and_resolves_its_flags(prescriber, patient):
    medication, _ = record.medication_add(actor=prescriber, patient=patient, **NORCO)
    with pytest.raises(ValidationError):
        record.medication_archive(actor=prescriber, medication=medication, reason="")
    assert ConflictFlag.objects.get(medication=medication).status == FlagStatus.OPEN
    archived = record.medication_archive(actor=prescriber, medication=medication, reason="stopped in 2024")
    assert archived.deleted_at is not None
    history = last_history(archived)
    assert (history.history_user, history.history_change_reason) == (prescriber, "archived: stopped in 2024")
    flag = ConflictFlag.objects.get(medication=medication)
    assert (flag.status, flag.resolved_reason) == ("resolved", "medication archived from the list")


def test_a_nurse_cannot_archive_away_an_opioid_conflict(nurse, patient):
    medication, _ = record.medication_add(actor=nurse, patient=patient, **NORCO)
    with pytest.raises(PermissionDenied, match="prescriber"):
        record.medication_archive(actor=nurse, medication=medication, reason="patient says stopped")
    assert MedicationStatement.objects.filter(pk=medication.pk).exists()


def test_a_nurse_may_archive_a_medicine_without_a_conflict(nurse, patient):
    medication, _ = record.medication_add(
        actor=nurse, patient=patient, name="sertraline", route="oral", release="IR", source="patient"
    )
    assert record.medication_archive(actor=nurse, medication=medication, reason="stopped").deleted_at


def test_the_urine_screen_entry_is_changed_through_its_lab_result_only(prescriber, patient):
    result = record.lab_add(
        actor=prescriber, patient=patient, test="UDS", result="positive", collected_at=timezone.now()
    )
    entry = MedicationStatement.objects.get(patient=patient, source="lab")
    with pytest.raises(ValidationError, match="urine drug screen"):
        record.medication_archive(actor=prescriber, medication=entry, reason="negative on retest")
    with pytest.raises(ValidationError, match="urine drug screen"):
        record.medication_update(actor=prescriber, medication=entry, name="ibuprofen")
    assert ConflictFlag.objects.get(medication=entry).status == FlagStatus.OPEN
    assert result.pk


# --- reminder preferences -------------------------------------------------------------------------

PREFS = {
    "reminders_by_email": True,
    "reminders_by_sms": False,
    "nightly_dose_reminders": True,
    "reminder_time": dt.time(20, 30),
    "quiet_hours_start": dt.time(23, 0),
    "quiet_hours_end": dt.time(7, 0),
    "dose_time": "bedtime",
}


def test_the_patient_sets_their_own_reminders(patient_user, patient):
    saved = record.reminder_preferences_set(actor=patient_user, patient=patient, **PREFS)
    assert (saved.nightly_dose_reminders, saved.reminder_time) == (True, dt.time(20, 30))
    history = last_history(saved)
    assert history.history_user == patient_user
    assert history.history_change_reason.startswith("reminder preferences changed by the patient")


def test_a_patient_cannot_set_another_patients_reminders(patient_user, sibling_patient):
    with pytest.raises(PermissionDenied):
        record.reminder_preferences_set(actor=patient_user, patient=sibling_patient, **PREFS)
    sibling_patient.refresh_from_db()
    assert sibling_patient.nightly_dose_reminders is False


@pytest.mark.parametrize(("who", "allowed"), [("nurse", True), ("prescriber", True), ("clinic_admin", False)])
def test_clinic_staff_set_reminders_by_role(who, allowed, request, patient):
    actor = request.getfixturevalue(who)
    if allowed:
        assert record.reminder_preferences_set(actor=actor, patient=patient, **PREFS).nightly_dose_reminders
    else:
        with pytest.raises(PermissionDenied):
            record.reminder_preferences_set(actor=actor, patient=patient, **PREFS)


def test_text_reminders_need_a_mobile_number(nurse, patient):
    with pytest.raises(ValidationError) as excinfo:
        record.reminder_preferences_set(actor=nurse, patient=patient, **{**PREFS, "reminders_by_sms": True})
    assert "mobile" in errors_of(excinfo)["reminders_by_sms"][0]


def test_saving_preferences_replans_the_pending_reminders_REM_2(nurse, clinic):
    from tests.titration.test_reminders import active_patient, titrating

    patient = active_patient(clinic)
    titrating(patient, patient_today(patient), next_in_days=3)
    assert not Reminder.objects.filter(patient=patient, kind="nightly_dose").exists()
    record.reminder_preferences_set(actor=nurse, patient=patient, **PREFS)
    assert Reminder.objects.filter(patient=patient, kind="nightly_dose", status="pending").exists()


# --- lab results ----------------------------------------------------------------------------------


def test_lab_add_runs_LAB_2_in_the_same_request(nurse, patient):
    result = record.lab_add(
        actor=nurse,
        patient=patient,
        test="ALT",
        value=Decimal("250"),
        unit="U/L",
        ref_low=Decimal("7"),
        ref_high=Decimal("40"),
        collected_at=timezone.now() - dt.timedelta(hours=2),
        lab_source="City Lab",
    )
    task = ClinicianTask.objects.get(key=f"lab2-review:{result.pk}")
    assert task.kind == TaskKind.LAB_REVIEW
    history = last_history(result)
    assert (history.history_user, history.history_change_reason) == (nurse, "lab result added")


def test_a_positive_urine_screen_is_an_opioid_conflict(nurse, patient):
    record.lab_add(actor=nurse, patient=patient, test="UDS", result="positive", collected_at=timezone.now())
    assert ConflictFlag.objects.filter(patient=patient, kind="conflict", status="open").count() == 1


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"value": Decimal("-3")}, "value", "negative"),
        ({"ref_low": Decimal("-1")}, "ref_low", "negative"),
        ({"ref_low": Decimal("50"), "ref_high": Decimal("40")}, "ref_high", "below the lower"),
        ({"collected_at": "future"}, "collected_at", "future"),
        ({"collected_at": dt.datetime(1899, 6, 1, tzinfo=dt.UTC)}, "collected_at", "1900"),
        ({"unit": ""}, "unit", "unit"),
        ({"test": "other"}, "test_name", "Name the test"),
        (
            {"test": "UDS", "value": None, "unit": "", "ref_low": None, "ref_high": None},
            "result",
            "positive or negative",
        ),
    ],
)
def test_lab_add_refuses_implausible_values_and_writes_nothing(nurse, patient, changes, field, words):
    values = {
        "test": "ALT",
        "value": Decimal("30"),
        "unit": "U/L",
        "ref_low": Decimal("7"),
        "ref_high": Decimal("40"),
        "collected_at": timezone.now() - dt.timedelta(days=1),
    }
    values.update(changes)
    if values["collected_at"] == "future":
        values["collected_at"] = timezone.now() + dt.timedelta(hours=1)
    with pytest.raises(ValidationError) as excinfo:
        record.lab_add(actor=nurse, patient=patient, **values)
    assert any(words in message for message in errors_of(excinfo)[field]), errors_of(excinfo)
    assert not LabResult.all_objects.filter(patient=patient).exists()
    assert not ClinicianTask.objects.filter(patient=patient).exists()


def test_lab_add_refused_to_a_clinic_admin(clinic_admin, patient):
    with pytest.raises(PermissionDenied):
        record.lab_add(
            actor=clinic_admin, patient=patient, test="ESR", value=Decimal(10), unit="mm/h", collected_at=timezone.now()
        )


def test_other_clinic_staff_cannot_write_any_record(other_prescriber, patient):
    medication = f.MedicationFactory(patient=patient)
    calls = [
        lambda: record.patient_update(actor=other_prescriber, patient=patient, first_name="X"),
        lambda: record.condition_add(actor=other_prescriber, patient=patient, condition="crohns"),
        lambda: record.medication_add(actor=other_prescriber, patient=patient, **NORCO),
        lambda: record.medication_archive(actor=other_prescriber, medication=medication, reason="x"),
        lambda: record.reminder_preferences_set(actor=other_prescriber, patient=patient, **PREFS),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied):
            call()
