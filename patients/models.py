"""Clinics, their people (staff memberships, patient accounts), patients and what is known about them."""

import datetime as dt
import zoneinfo
from functools import cache

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from ldnclinic import scoping
from ldnclinic.db import ClinicOwned, SoftDeletable, TimeStamped


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    if value not in _zones():
        raise ValidationError(f"{value!r} is not a known IANA time zone (for example Europe/London).")


class User(AbstractUser):
    """A login. Staff reach clinics through Membership; a patient login links to one Patient."""

    email = models.EmailField("email address", blank=True)

    @property
    def is_patient(self) -> bool:
        return scoping.patient_id_of(self) is not None


class Clinic(TimeStamped):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    time_zone = models.CharField(max_length=64, default="Europe/London", validators=[validate_time_zone])
    phone = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True)

    scope_clinic_path = "pk"
    scope_patient_path = None
    history = HistoricalRecords()  # the clinic admin edits it; who changed what is kept like any record

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    PRESCRIBER = "prescriber", "Prescriber"
    NURSE = "nurse", "Nurse / staff"
    CLINIC_ADMIN = "clinic_admin", "Clinic admin"


class Membership(TimeStamped):
    """A staff user's role in one clinic."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    is_active = models.BooleanField(default=True)

    scope_patient_path = None
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "clinic"], name="membership_one_per_user_clinic"),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} at {self.clinic}"

    def clean(self) -> None:
        # The mirror of Patient.clean: a patient login given a membership would read the whole clinic.
        if self.user_id and Patient.all_objects.filter(user_id=self.user_id).exists():
            raise ValidationError({"user": "A patient login cannot also be a staff login."})


class Condition(models.TextChoices):
    # The conditions domain.md treats (protocols, instruments, responder rules).
    FIBROMYALGIA = "fibromyalgia", "Fibromyalgia"
    CROHNS = "crohns", "Crohn's disease"
    MULTIPLE_SCLEROSIS = "multiple_sclerosis", "Multiple sclerosis"
    LONG_COVID = "long_covid", "Long COVID"
    HASHIMOTOS = "hashimotos", "Hashimoto's thyroiditis"
    CHRONIC_PAIN = "chronic_pain", "Chronic pain (other)"
    OTHER = "other", "Other"


class Sex(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    INTERSEX = "intersex", "Intersex"
    UNKNOWN = "unknown", "Not recorded"


class DoseTime(models.TextChoices):
    BEDTIME = "bedtime", "Bedtime"
    MORNING = "morning", "Morning"  # SE-3: suggested when sleep is disturbed


class PatientStatus(models.TextChoices):
    SCREENING = "screening", "Screening"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    DISCONTINUED = "discontinued", "Discontinued"


DISCONTINUED_REASON_MESSAGE = "Say why the patient was discontinued."


class Patient(ClinicOwned, SoftDeletable):
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="patients")
    mrn = models.CharField("MRN", max_length=40)
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    date_of_birth = models.DateField()
    address = models.TextField(blank=True, help_text="Postal address, as printed on a prescription.")
    sex = models.CharField(max_length=10, choices=Sex.choices, default=Sex.UNKNOWN)
    email = models.EmailField(blank=True)
    mobile = models.CharField(max_length=32, blank=True)
    time_zone = models.CharField(max_length=64, default="Europe/London", validators=[validate_time_zone])
    dose_time = models.CharField(max_length=10, choices=DoseTime.choices, default=DoseTime.BEDTIME)
    status = models.CharField(max_length=20, choices=PatientStatus.choices, default=PatientStatus.SCREENING)
    discontinued_reason = models.TextField(blank=True)
    user = models.OneToOneField(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="patient_profile")
    # Reminder preferences (REM-1..REM-5): channels, opt-in for the nightly dose reminder, quiet hours.
    reminders_by_email = models.BooleanField(default=True)
    reminders_by_sms = models.BooleanField(default=False)
    nightly_dose_reminders = models.BooleanField("nightly dose reminder (REM-2)", default=False)
    reminder_time = models.TimeField(
        null=True, blank=True, help_text="Local time for reminders; empty: 21:00 for bedtime, 08:00 for morning dosing."
    )
    quiet_hours_start = models.TimeField(default=dt.time(22, 0))
    quiet_hours_end = models.TimeField(default=dt.time(7, 0))
    # LAB-2: known severe hepatic impairment blocks step-ups until a clinician has reviewed it.
    severe_hepatic_impairment = models.BooleanField(
        "known severe hepatic impairment",
        default=False,
        help_text="Step-ups are blocked until a clinician closes the liver review task (LAB-2).",
    )

    scope_patient_path = "pk"
    history = HistoricalRecords()
    constraint_fields = {"patient_discontinued_needs_reason": "discontinued_reason"}

    class Meta:
        ordering = ["last_name", "first_name"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "mrn"], name="patient_mrn_unique_in_clinic"),
            models.CheckConstraint(condition=Q(status__in=PatientStatus.values), name="patient_status_valid"),
            models.CheckConstraint(
                condition=~Q(status=PatientStatus.DISCONTINUED) | ~Q(discontinued_reason=""),
                name="patient_discontinued_needs_reason",
                violation_error_message=DISCONTINUED_REASON_MESSAGE,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.last_name}, {self.first_name} ({self.mrn})"

    def owning_clinic_id(self) -> int | None:
        return self.clinic_id

    def clean(self) -> None:
        if self.status == PatientStatus.DISCONTINUED and not self.discontinued_reason.strip():
            raise ValidationError({"discontinued_reason": DISCONTINUED_REASON_MESSAGE})
        if self.user_id and self.user.memberships.exists():
            raise ValidationError({"user": "A staff login cannot also be a patient login."})

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    @property
    def local_reminder_time(self) -> dt.time:
        if self.reminder_time:
            return self.reminder_time
        return dt.time(8, 0) if self.dose_time == DoseTime.MORNING else dt.time(21, 0)


class PatientCondition(ClinicOwned, SoftDeletable):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="conditions")
    condition = models.CharField(max_length=30, choices=Condition.choices)
    diagnosed_on = models.DateField(null=True, blank=True)
    notes = models.CharField(max_length=500, blank=True)

    history = HistoricalRecords()
    constraint_fields = {"patient_condition_once": "condition"}

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "condition"],
                condition=Q(deleted_at__isnull=True),
                name="patient_condition_once",
                violation_error_message="This condition is already on the patient's record.",
            ),
            models.CheckConstraint(condition=Q(condition__in=Condition.values), name="patient_condition_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_condition_display()} since {self.diagnosed_on or 'unknown'}"


class Route(models.TextChoices):
    ORAL = "oral", "Oral"
    SUBLINGUAL = "sublingual", "Sublingual / buccal"
    TRANSDERMAL = "transdermal", "Transdermal"
    INJECTION = "injection", "Injection"
    NASAL = "nasal", "Nasal"
    RECTAL = "rectal", "Rectal"
    TOPICAL = "topical", "Topical"
    INHALED = "inhaled", "Inhaled"
    OTHER = "other", "Other / unknown"


class Release(models.TextChoices):
    IR = "IR", "Immediate release"
    ER = "ER", "Extended release"
    PATCH = "patch", "Patch"
    DEPOT = "depot", "Depot / implant"
    UNKNOWN = "unknown", "Unknown"


class MedicationSource(models.TextChoices):
    PATIENT = "patient", "Patient reported"
    CLINICIAN = "clinician", "Clinician entered"
    RECORDS = "records", "Outside records / pharmacy"
    CHECK_IN = "check_in", "Check-in answer"
    LAB = "lab", "Positive urine drug screen"


class MedicationStatement(ClinicOwned, SoftDeletable):
    """A medicine the patient takes or took (other than LDN). OPI-4 fields; the opioid engine reads it."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="medications")
    name = models.CharField(max_length=200, help_text="As entered, for example 'Norco 5/325'.")
    dose = models.CharField(max_length=100, blank=True)
    route = models.CharField(max_length=20, choices=Route.choices, default=Route.ORAL)
    release = models.CharField(max_length=10, choices=Release.choices, default=Release.UNKNOWN)
    start_date = models.DateField(null=True, blank=True)
    last_dose_date = models.DateField(null=True, blank=True)
    source = models.CharField(max_length=20, choices=MedicationSource.choices, default=MedicationSource.CLINICIAN)
    notes = models.CharField(max_length=500, blank=True)
    # OPI-4: the ingredients the opioid engine found in the name, kept with the statement.
    ingredients = models.JSONField(default=list, blank=True, editable=False)

    history = HistoricalRecords()
    constraint_fields = {"medication_last_dose_after_start": "last_dose_date"}

    class Meta:
        ordering = ["patient", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(start_date__isnull=True)
                | Q(last_dose_date__isnull=True)
                | Q(last_dose_date__gte=models.F("start_date")),
                name="medication_last_dose_after_start",
                violation_error_message="The last dose cannot be before the start date.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class LabTest(models.TextChoices):
    ESR = "ESR", "ESR"
    CRP = "CRP", "CRP"
    HS_CRP = "hsCRP", "hs-CRP"
    ALT = "ALT", "ALT"
    AST = "AST", "AST"
    UDS = "UDS", "Urine drug screen (opioids)"
    OTHER = "other", "Other"


class ScreenResult(models.TextChoices):
    NEGATIVE = "negative", "Negative"
    POSITIVE = "positive", "Positive"


class LabResult(ClinicOwned, SoftDeletable):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="lab_results")
    test = models.CharField(max_length=10, choices=LabTest.choices)
    test_name = models.CharField(max_length=100, blank=True, help_text="Name of the test when 'Other'.")
    # A measured test has a value and unit; the urine drug screen has a result instead.
    value = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    unit = models.CharField(max_length=20, blank=True)
    result = models.CharField(
        max_length=10, choices=ScreenResult.choices, blank=True, help_text="Urine drug screen only."
    )
    ref_low = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    ref_high = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    collected_at = models.DateTimeField()
    lab_source = models.CharField(max_length=200, blank=True)

    history = HistoricalRecords()
    constraint_fields = {"lab_reference_range_ordered": "ref_high", "lab_other_needs_name": "test_name"}

    class Meta:
        ordering = ["-collected_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ref_low__isnull=True) | Q(ref_high__isnull=True) | Q(ref_low__lte=models.F("ref_high")),
                name="lab_reference_range_ordered",
                violation_error_message="The upper limit of the reference range cannot be below the lower limit.",
            ),
            models.CheckConstraint(
                condition=~Q(test="other") | ~Q(test_name=""),
                name="lab_other_needs_name",
                violation_error_message="Name the test.",
            ),
            models.CheckConstraint(
                condition=(Q(test="UDS") & Q(value__isnull=True) & ~Q(result=""))
                | (~Q(test="UDS") & Q(value__isnull=False) & ~Q(unit="") & Q(result="")),
                name="lab_value_or_screen_result",
                violation_error_message=(
                    "A urine drug screen has a result (positive or negative); any other test has a value and a unit."
                ),
            ),
        ]

    def __str__(self) -> str:
        if self.test == LabTest.UDS:
            return f"{self.get_test_display()}: {self.get_result_display().lower()}"
        return f"{self.test_name or self.test} {self.value} {self.unit}"

    def clean(self) -> None:
        errors = {}
        if self.test == LabTest.UDS:
            if not self.result:
                errors["result"] = "Record the urine drug screen as positive or negative."
            if self.value is not None:
                errors["value"] = "A urine drug screen has a result, not a value."
        else:
            if self.value is None:
                errors["value"] = "Enter the measured value."
            if not self.unit.strip():
                errors["unit"] = "Enter the unit the lab reports (U/L, mm/h, mg/L)."
            if self.result:
                errors["result"] = "Only a urine drug screen has a positive or negative result."
        if errors:
            raise ValidationError(errors)

    @property
    def shown_result(self) -> str:
        """ "420 U/L", or a screen's "Positive"."""
        if self.test == LabTest.UDS:
            return self.get_result_display()
        return f"{self.value.normalize():f} {self.unit}"

    @property
    def reference_range(self) -> str:
        if self.ref_low is None and self.ref_high is None:
            return ""
        low, high = (f"{v.normalize():f}" if v is not None else "" for v in (self.ref_low, self.ref_high))
        return f"{low}–{high}"


from .flag_models import ClinicianTask, ConflictFlag, SafetyGateEvent  # noqa: E402, F401 - models of this app, kept in their own file
