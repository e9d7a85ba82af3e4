"""Writes for the patient record: demographics, conditions, medications, reminder preferences and lab
results. The clinic's forms (clinic/views_record.py), the patient portal and anything else that changes
these rows call them: keyword-only, ``actor`` first, one transaction each, who and why on every
history row.

The clinical rules are not here. Saving a medication runs the opioid check in the same transaction
(patients.signals -> services.medication_evaluate: OPI-1..4, OPI-W1); saving a lab result runs LAB-2
and the urine drug screen (patients.labs); saving a patient re-plans their reminders
(titration.signals). These services decide who may write and what is plausible, and turn every
refusal into a ``ValidationError`` by field (or ``PermissionDenied`` for a role), before writing
anything.
"""

import datetime as dt
import re
import zoneinfo
from collections.abc import Iterable
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from ldnclinic.db import save_with_history

from .flag_models import PRESCRIBER_KINDS, ConflictFlag, FlagStatus
from .models import (
    Condition,
    DoseTime,
    LabResult,
    LabTest,
    MedicationSource,
    MedicationStatement,
    Membership,
    Patient,
    PatientCondition,
    Role,
    _zones,
)
from .services import patient_today
from .today import zone_today

EARLIEST = dt.date(1900, 1, 1)
CLINICAL = frozenset({Role.PRESCRIBER, Role.NURSE})
PRESCRIBERS = frozenset({Role.PRESCRIBER})
DEMOGRAPHICS = (
    "mrn",
    "first_name",
    "last_name",
    "date_of_birth",
    "sex",
    "email",
    "mobile",
    "address",
    "time_zone",
    "dose_time",
)
MEDICATION_FIELDS = ("name", "dose", "route", "release", "start_date", "last_dose_date", "source", "notes")
# Changing these re-runs the matcher: it can turn a conflict into "no longer an opioid" (OPI-2).
MATCHED_FIELDS = frozenset({"name", "dose", "route", "release"})
LAB_FIELDS = ("test", "test_name", "value", "unit", "result", "ref_low", "ref_high", "collected_at", "lab_source")
REMINDER_FIELDS = (
    "reminders_by_email",
    "reminders_by_sms",
    "nightly_dose_reminders",
    "reminder_time",
    "quiet_hours_start",
    "quiet_hours_end",
    "dose_time",
)
PHONE = re.compile(r"^\+?[0-9][0-9 ()\-]{5,30}$")
DUPLICATE_MRN = "Another patient of this clinic already has this MRN."


# --- Who may write --------------------------------------------------------------------------------


def _roles(actor, clinic_id: int) -> set[str]:
    if actor is None or not getattr(actor, "is_authenticated", False) or not actor.is_active:
        return set()
    return set(
        Membership.objects.filter(user=actor, clinic_id=clinic_id, is_active=True).values_list("role", flat=True)
    )


def _require(actor, clinic_id: int, words: str, roles: frozenset[str] = CLINICAL) -> None:
    if not _roles(actor, clinic_id) & roles:
        who = "prescriber" if roles == PRESCRIBERS else "prescriber or nurse"
        raise PermissionDenied(f"Only a {who} of the patient's clinic can {words}.")


def _reason(reason: str, field: str = "reason") -> str:
    if not (reason or "").strip():
        raise ValidationError({field: "Say why (it is kept in the record)."})
    return reason.strip()


def _only(changes: dict, allowed: Iterable[str], service: str, elsewhere: str = "") -> None:
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise TypeError(f"{service} cannot change {', '.join(unknown)}{elsewhere}")


def _merge(errors: dict, exc: ValidationError, prefix: str = "", skip: Iterable[str] = ()) -> None:
    for field, messages in exc.message_dict.items():
        if field in skip:
            continue
        errors.setdefault(f"{prefix}{field}", []).extend(messages)


# --- Patients -------------------------------------------------------------------------------------


def _clean_text(value) -> str:
    return (value or "").strip()


def _patient_errors(patient: Patient) -> dict[str, list[str]]:
    """Every problem with ``patient``'s demographics at once, by field: the model's own checks, then
    the plausibility the model cannot know (dates of birth, a duplicate MRN, a phone number)."""
    errors: dict[str, list[str]] = {}
    try:
        patient.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        _merge(errors, exc)
    zone = zoneinfo.ZoneInfo(patient.time_zone if patient.time_zone in _zones() else patient.clinic.time_zone)
    today = zone_today(zone)
    dob = patient.date_of_birth
    if isinstance(dob, dt.date) and "date_of_birth" not in errors:
        if dob > today:
            errors["date_of_birth"] = ["The date of birth cannot be in the future."]
        elif dob < EARLIEST:
            errors["date_of_birth"] = ["Enter a date of birth from 1900 on: check the year."]
    if patient.mrn and "mrn" not in errors:
        same = Patient.all_objects.filter(clinic_id=patient.clinic_id, mrn__iexact=patient.mrn)
        if same.exclude(pk=patient.pk).exists():
            errors["mrn"] = [DUPLICATE_MRN]
    if patient.mobile and not PHONE.match(patient.mobile) and "mobile" not in errors:
        errors["mobile"] = ["Enter a phone number: digits, spaces and an optional + (for example +44 7700 900123)."]
    return errors


def _condition_rows(conditions: Iterable) -> list[dict]:
    """``conditions`` as given: condition values ("fibromyalgia") or dicts with diagnosed_on and notes."""
    rows: dict[str, dict] = {}
    for item in conditions or ():
        row = dict(item) if isinstance(item, dict) else {"condition": item}
        if row.get("condition") not in Condition.values:
            raise ValidationError({"conditions": f"{row.get('condition')!r} is not one of the listed conditions."})
        rows.setdefault(row["condition"], row)  # the same condition ticked twice is one condition
    return list(rows.values())


def _stamp_dates(errors: dict, prefix: str, **dates) -> None:
    today = timezone.now().date()
    for field, value in dates.items():
        if not isinstance(value, dt.date):
            continue
        if value < EARLIEST:
            errors.setdefault(f"{prefix}{field}", []).append("Enter a date from 1900 on: check the year.")
        elif value > today + dt.timedelta(days=366):
            errors.setdefault(f"{prefix}{field}", []).append("That is more than a year from now: check the year.")


def patient_create(
    *,
    actor,
    clinic,
    mrn: str,
    first_name: str,
    last_name: str,
    date_of_birth: dt.date,
    sex: str = "unknown",
    email: str = "",
    mobile: str = "",
    address: str = "",
    time_zone: str = "Europe/London",
    dose_time: str = DoseTime.BEDTIME,
    conditions: list | tuple = (),
    medications: list[dict] | tuple = (),
) -> Patient:
    """A new patient in ``clinic`` with their conditions and medications, all or nothing.

    A medication row's errors are keyed ``medications-<row>-<field>`` (the names a formset with the
    prefix "medications" gives its fields), so a form can show each beside its field. Each
    medication's save runs the opioid check (OPI-1..4), so a Norco on the list is flagged at once.
    """
    _require(actor, clinic.pk, "add a patient")
    patient = Patient(
        clinic=clinic,
        mrn=_clean_text(mrn),
        first_name=_clean_text(first_name),
        last_name=_clean_text(last_name),
        date_of_birth=date_of_birth,
        sex=sex,
        email=_clean_text(email),
        mobile=_clean_text(mobile),
        address=address.strip(),
        time_zone=time_zone,
        dose_time=dose_time,
    )
    errors = _patient_errors(patient)
    condition_rows = _condition_rows(conditions)
    medication_rows = []
    for i, row in enumerate(medications or ()):
        _only(row, MEDICATION_FIELDS, "a new patient's medication")
        medication = MedicationStatement(patient=patient, clinic=clinic, **_medication_values(row))
        errors.update(_medication_errors(medication, prefix=f"medications-{i}-"))
        medication_rows.append(medication)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        try:
            with transaction.atomic():
                save_with_history(patient, actor, "new patient")
        except IntegrityError:  # the same MRN saved by someone else a moment ago
            raise ValidationError({"mrn": DUPLICATE_MRN}) from None
        for row in condition_rows:
            condition = PatientCondition(
                patient=patient,
                condition=row["condition"],
                diagnosed_on=row.get("diagnosed_on"),
                notes=_clean_text(row.get("notes")),
            )
            save_with_history(condition, actor, "new patient")
        for medication in medication_rows:
            medication.patient = patient
            save_with_history(medication, actor, "new patient")  # the opioid check runs on this save
    return patient


def patient_update(*, actor, patient: Patient, reason: str = "", **changes) -> Patient:
    """Change demographics and contact details (never the status: ``services.patient_set_status``;
    nor reminder preferences: ``reminder_preferences_set``). Nothing changed, nothing written."""
    _only(changes, DEMOGRAPHICS, "patient_update", ": the status through patient_set_status")
    _require(actor, patient.clinic_id, "change a patient's details")
    with transaction.atomic():
        locked = Patient.objects.select_for_update().select_related("clinic").get(pk=patient.pk)
        changed = []
        for field, value in changes.items():
            value = _clean_text(value) if isinstance(value, str) else value
            if getattr(locked, field) != value:
                setattr(locked, field, value)
                changed.append(field)
        if not changed:
            return locked
        errors = _patient_errors(locked)
        if errors:
            raise ValidationError(errors)
        why = f"details changed ({', '.join(changed)})" + (f": {reason.strip()}" if reason.strip() else "")
        try:
            with transaction.atomic():
                save_with_history(locked, actor, why)
        except IntegrityError:
            raise ValidationError({"mrn": DUPLICATE_MRN}) from None
    return locked


# --- Conditions -----------------------------------------------------------------------------------


def condition_add(
    *, actor, patient: Patient, condition: str, diagnosed_on: dt.date | None = None, notes: str = ""
) -> PatientCondition:
    _require(actor, patient.clinic_id, "change a patient's conditions")
    if condition not in Condition.values:
        raise ValidationError({"condition": "Choose one of the listed conditions."})
    errors: dict = {}
    _stamp_dates(errors, "", diagnosed_on=diagnosed_on)
    if isinstance(diagnosed_on, dt.date) and diagnosed_on > patient_today(patient):
        errors["diagnosed_on"] = ["The diagnosis date cannot be in the future."]
    if errors:
        raise ValidationError(errors)
    row = PatientCondition(patient=patient, condition=condition, diagnosed_on=diagnosed_on, notes=_clean_text(notes))
    with transaction.atomic():
        if PatientCondition.objects.select_for_update().filter(patient=patient, condition=condition).exists():
            raise ValidationError({"condition": "This condition is already on the record."})
        try:
            with transaction.atomic():
                save_with_history(row, actor, "condition added")
        except IntegrityError:
            raise ValidationError({"condition": "This condition is already on the record."}) from None
    return row


def condition_archive(*, actor, condition: PatientCondition, reason: str) -> PatientCondition:
    """Soft delete: the row stays, with who archived it and why, in its history."""
    _require(actor, condition.clinic_id, "change a patient's conditions")
    why = _reason(reason)
    with transaction.atomic():
        row = PatientCondition.all_objects.select_for_update().get(pk=condition.pk)
        if row.deleted_at is None:
            row.deleted_at = timezone.now()
            save_with_history(row, actor, f"archived: {why}", update_fields=["deleted_at", "updated_at"])
    return row


# --- Medications ----------------------------------------------------------------------------------


def _medication_values(row: dict) -> dict:
    values = dict(row)
    for field in ("name", "dose", "notes"):
        if field in values:
            values[field] = _clean_text(values[field])
    return values


def _medication_errors(medication: MedicationStatement, prefix: str = "") -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    try:
        medication.full_clean(exclude=["patient", "clinic", "ingredients"], validate_constraints=False)
    except ValidationError as exc:
        _merge(errors, exc, prefix)
    if medication.source == MedicationSource.LAB:
        errors.setdefault(f"{prefix}source", []).append(
            "A urine drug screen adds its own entry: record the screen as a lab result."
        )
    start, last = medication.start_date, medication.last_dose_date
    _stamp_dates(errors, prefix, start_date=start, last_dose_date=last)
    if isinstance(start, dt.date) and isinstance(last, dt.date) and last < start:
        errors.setdefault(f"{prefix}last_dose_date", []).append("The last dose cannot be before the start date.")
    return errors


def _open_flags(medication: MedicationStatement) -> list[ConflictFlag]:
    """What the opioid check just wrote. The save ran ``services.medication_evaluate`` in this
    transaction (patients.signals); evaluating again would only add a second identical history row."""
    return list(ConflictFlag.objects.filter(medication=medication, status=FlagStatus.OPEN).select_related("medication"))


def _live_prescriber_flags(medication: MedicationStatement) -> list[ConflictFlag]:
    return list(
        ConflictFlag.objects.filter(medication=medication, kind__in=PRESCRIBER_KINDS).exclude(
            status=FlagStatus.RESOLVED
        )
    )


def medication_add(
    *,
    actor,
    patient: Patient,
    name: str,
    dose: str = "",
    route: str,
    release: str,
    start_date: dt.date | None = None,
    last_dose_date: dt.date | None = None,
    source: str,
    notes: str = "",
) -> tuple[MedicationStatement, list[ConflictFlag]]:
    """Add a medicine to the list; the opioid check runs in the same transaction (OPI-1..4, OPI-W1)
    and its open flags come back, for the page to show at once."""
    _require(actor, patient.clinic_id, "add or change a patient's medications")
    medication = MedicationStatement(
        patient=patient,
        **_medication_values(
            {
                "name": name,
                "dose": dose,
                "route": route,
                "release": release,
                "start_date": start_date,
                "last_dose_date": last_dose_date,
                "source": source,
                "notes": notes,
            }
        ),
    )
    errors = _medication_errors(medication)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        save_with_history(medication, actor, "medication added")
        flags = _open_flags(medication)
    return medication, flags


def medication_update(
    *, actor, medication: MedicationStatement, reason: str = "", **changes
) -> tuple[MedicationStatement, list[ConflictFlag]]:
    """Correct a medicine or record its last dose (the washout runs from it, OPI-W1). A change that
    re-runs the matcher on a medicine with a live opioid conflict is a prescriber's: it could turn
    the conflict into "not an opioid" (the same call as resolving it)."""
    _only(changes, MEDICATION_FIELDS, "medication_update")
    _require(actor, medication.clinic_id, "add or change a patient's medications")
    with transaction.atomic():
        row = MedicationStatement.objects.select_for_update().select_related("patient").get(pk=medication.pk)
        if row.source == MedicationSource.LAB:
            raise ValidationError("This entry comes from a positive urine drug screen: correct the lab result instead.")
        values = _medication_values(changes)
        changed = [field for field, value in values.items() if getattr(row, field) != value]
        if not changed:
            return row, _open_flags(row)
        if MATCHED_FIELDS & set(changed) and _live_prescriber_flags(row):
            _require(actor, row.clinic_id, "change a medicine that has an opioid conflict", PRESCRIBERS)
        for field in changed:
            setattr(row, field, values[field])
        errors = _medication_errors(row)
        if errors:
            raise ValidationError(errors)
        why = f"medication changed ({', '.join(changed)})" + (f": {reason.strip()}" if reason.strip() else "")
        save_with_history(row, actor, why)
        flags = _open_flags(row)
    return row, flags


def medication_archive(*, actor, medication: MedicationStatement, reason: str) -> MedicationStatement:
    """Soft delete, with the reason; its flags resolve ("medication archived from the list"). Archiving
    a medicine with a live opioid conflict clears that conflict, so it is a prescriber's action."""
    _require(actor, medication.clinic_id, "add or change a patient's medications")
    why = _reason(reason)
    with transaction.atomic():
        row = MedicationStatement.all_objects.select_for_update().select_related("patient").get(pk=medication.pk)
        if row.deleted_at is not None:
            return row
        if row.source == MedicationSource.LAB:
            raise ValidationError(
                {
                    "reason": "This entry comes from a positive urine drug screen: resolve its flag, or archive "
                    "the lab result if it was entered in error."
                }
            )
        if _live_prescriber_flags(row):
            _require(actor, row.clinic_id, "archive a medicine that has an opioid conflict", PRESCRIBERS)
        row.deleted_at = timezone.now()
        save_with_history(
            row, actor, f"archived: {why}", update_fields=["deleted_at", "updated_at"]
        )  # flags resolve here
    return row


# --- Reminder preferences -------------------------------------------------------------------------


def _is_own_login(actor, patient: Patient) -> bool:
    return (
        bool(getattr(actor, "is_authenticated", False) and actor.is_active and patient.user_id == actor.pk)
        and not Membership.objects.filter(user=actor).exists()
    )


def reminder_preferences_set(
    *,
    actor,
    patient: Patient,
    reminders_by_email: bool,
    reminders_by_sms: bool,
    nightly_dose_reminders: bool,
    reminder_time: dt.time | None,
    quiet_hours_start: dt.time,
    quiet_hours_end: dt.time,
    dose_time: str,
) -> Patient:
    """The patient's own login, or a prescriber or nurse of their clinic. Saving re-plans the pending
    reminders (titration.signals) in the same transaction (REM-1..REM-5)."""
    if not _is_own_login(actor, patient):
        _require(actor, patient.clinic_id, "change a patient's reminder preferences")
    values = {
        "reminders_by_email": bool(reminders_by_email),
        "reminders_by_sms": bool(reminders_by_sms),
        "nightly_dose_reminders": bool(nightly_dose_reminders),
        "reminder_time": reminder_time,
        "quiet_hours_start": quiet_hours_start,
        "quiet_hours_end": quiet_hours_end,
        "dose_time": dose_time,
    }
    errors: dict[str, list[str]] = {}
    if dose_time not in DoseTime.values:
        errors["dose_time"] = ["Choose bedtime or morning."]
    for field in ("quiet_hours_start", "quiet_hours_end"):
        if not isinstance(values[field], dt.time):
            errors[field] = ["Enter a time, for example 22:00."]
    if reminder_time is not None and not isinstance(reminder_time, dt.time):
        errors["reminder_time"] = ["Enter a time, for example 21:00, or leave it empty."]
    with transaction.atomic():
        row = Patient.objects.select_for_update().get(pk=patient.pk)
        if values["reminders_by_sms"] and not row.mobile:
            errors["reminders_by_sms"] = ["There is no mobile number on the record to send texts to."]
        if values["reminders_by_email"] and not row.email:
            errors["reminders_by_email"] = ["There is no email address on the record to send emails to."]
        if errors:
            raise ValidationError(errors)
        changed = [field for field, value in values.items() if getattr(row, field) != value]
        if not changed:
            return row
        for field in changed:
            setattr(row, field, values[field])
        who = "by the patient" if _is_own_login(actor, row) else "by the clinic"
        save_with_history(row, actor, f"reminder preferences changed {who} ({', '.join(changed)})")
    return row


# --- Lab results ----------------------------------------------------------------------------------


def lab_add(*, actor, patient: Patient, **fields) -> LabResult:
    """Record a lab result. Saving it runs LAB-2 and the urine drug screen (patients.signals), in the
    same transaction; implausible values are refused first (negative values, a reversed range,
    collection dates before 1900 or in the future)."""
    _only(fields, LAB_FIELDS, "lab_add")
    _require(actor, patient.clinic_id, "record a lab result")
    for field in ("test_name", "unit", "lab_source", "result"):
        fields[field] = _clean_text(fields.get(field))
    result = LabResult(patient=patient, **fields)
    errors: dict[str, list[str]] = {}
    try:
        result.full_clean(exclude=["patient", "clinic"], validate_constraints=False)
    except ValidationError as exc:
        _merge(errors, exc)
    for field in ("value", "ref_low", "ref_high"):
        value = getattr(result, field)
        if isinstance(value, Decimal) and value < 0 and field not in errors:
            errors[field] = ["A lab value cannot be negative."]
    low, high = result.ref_low, result.ref_high
    if isinstance(low, Decimal) and isinstance(high, Decimal) and low > high and "ref_high" not in errors:
        errors["ref_high"] = ["The upper limit cannot be below the lower limit."]
    if result.test == LabTest.OTHER and not result.test_name:
        errors.setdefault("test_name", []).append("Name the test.")
    if result.test == LabTest.UDS:
        if result.unit:
            errors.setdefault("unit", []).append("A urine drug screen has a result, not a unit.")
        if low is not None or high is not None:
            errors.setdefault("ref_low", []).append("A urine drug screen has no reference range.")
    collected = result.collected_at
    if isinstance(collected, dt.datetime) and "collected_at" not in errors:
        if collected > timezone.now():
            errors["collected_at"] = ["The collection time cannot be in the future."]
        elif collected.astimezone(patient.zone).date() < EARLIEST:
            errors["collected_at"] = ["Enter a collection date from 1900 on: check the year."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        save_with_history(result, actor, "lab result added")  # LAB-2 and the screen run on this save
    return result
