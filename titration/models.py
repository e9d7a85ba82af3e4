"""Compounding pharmacies, compounded LDN prescriptions (RX-1), protocols and plans (DOSE-2)."""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from ldnclinic.db import ClinicOwned, SoftDeletable, TimeStamped

from . import rules

DOSE_MG = {"max_digits": 5, "decimal_places": 3}  # DOSE-1: Decimal(5,3) so 0.25 mg is exact
DOSE_1_DB = Q(dose_mg__gt=0) & Q(dose_mg__lte=rules.LDN_HARD_MAX_MG)


def _validate_dose(value: Decimal) -> None:
    try:
        rules.check_dose(value)
    except rules.DoseError as exc:
        raise ValidationError(str(exc)) from None


class Pharmacy(ClinicOwned, SoftDeletable):
    clinic = models.ForeignKey("patients.Clinic", on_delete=models.PROTECT, related_name="pharmacies")
    name = models.CharField(max_length=200)
    address = models.TextField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    fax = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True)
    lead_time_days = models.PositiveSmallIntegerField(default=5, help_text="Days to compound and deliver.")

    scope_patient_path = None
    history = HistoricalRecords()
    constraint_fields = {"pharmacy_name_unique_in_clinic": "name"}

    class Meta:
        verbose_name_plural = "pharmacies"
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "name"],
                condition=Q(deleted_at__isnull=True),
                name="pharmacy_name_unique_in_clinic",
                violation_error_message="The clinic already has a pharmacy of this name.",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Form(models.TextChoices):
    CAPSULE = "capsule", "Oral capsule"
    LIQUID = "liquid", "Oral liquid"
    DROPS = "sublingual_drops", "Sublingual drops"
    TROCHE = "troche", "Troche"
    CREAM = "cream", "Cream / topical lotion"
    EYE_DROPS = "eye_drops", "Eye drops (not systemic; excluded from titration)"
    TABLET = "tablet", "Tablet"


class StrengthUnit(models.TextChoices):
    MG_PER_CAPSULE = "mg/capsule", "mg per capsule"
    MG_PER_TABLET = "mg/tablet", "mg per tablet"
    MG_PER_TROCHE = "mg/troche", "mg per troche"
    MG_PER_ML = "mg/mL", "mg per mL"
    MG_PER_DROP = "mg/drop", "mg per drop"
    MG_PER_G = "mg/g", "mg per g"
    PERCENT = "%", "percent (eye drops)"


# Which strength units make sense for each form; anything else is refused.
FORM_UNITS = {
    Form.CAPSULE: {StrengthUnit.MG_PER_CAPSULE},
    Form.TABLET: {StrengthUnit.MG_PER_TABLET},
    Form.TROCHE: {StrengthUnit.MG_PER_TROCHE},
    Form.LIQUID: {StrengthUnit.MG_PER_ML},
    Form.DROPS: {StrengthUnit.MG_PER_DROP, StrengthUnit.MG_PER_ML},
    Form.CREAM: {StrengthUnit.MG_PER_ML, StrengthUnit.MG_PER_G},
    Form.EYE_DROPS: {StrengthUnit.PERCENT},
}
# A tuple, not a set: rx_unit_strength_is_low_dose lists these, and a set's order changes from one
# process to the next (string hashing), which made `makemigrations --check` fail at random.
PER_UNIT_DOSE_FORMS = (Form.TABLET, Form.TROCHE, Form.CAPSULE)


class Filler(models.TextChoices):
    MCC = "mcc", "Microcrystalline cellulose (Avicel)"
    LACTOSE = "lactose", "Lactose"
    SUCROSE = "sucrose", "Sucrose"
    NONE = "none", "None (liquid, drops or cream base)"
    OTHER = "other", "Other (name it)"


class ReleaseType(models.TextChoices):
    IR = "IR", "Immediate release"
    SR = "SR", "Slow / sustained release"


class QuantityUnit(models.TextChoices):
    CAPSULES = "capsules", "capsules"
    TABLETS = "tablets", "tablets"
    TROCHES = "troches", "troches"
    ML = "mL", "mL"
    G = "g", "g"


class PrescriptionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


SLOW_RELEASE_MESSAGE = (
    "LDN must be compounded as immediate release. Slow-release preparations (and methylcellulose-type "
    "fillers) change how the small dose is absorbed and are not used for LDN (RX-1)."
)
# Fillers a compounder should not use for LDN [S9]: slow-release agents and calcium carbonate.
_REFUSED_FILLER_WORDS = {
    "methylcellulose": SLOW_RELEASE_MESSAGE,
    "hypromellose": SLOW_RELEASE_MESSAGE,
    "hpmc": SLOW_RELEASE_MESSAGE,
    "calcium carbonate": "Calcium carbonate reduces naltrexone absorption; choose another filler (RX-1).",
}


UNIT_STRENGTH_MESSAGE = (
    f"A capsule, tablet or troche above {rules.LDN_HARD_MAX_MG} mg is not low-dose naltrexone (RX-1)."
)
DOSE_1_MESSAGE = f"A dose must be more than 0 mg and at most {rules.LDN_HARD_MAX_MG} mg (DOSE-1)."
MIN_DAYS_MESSAGE = "A step lasts at least 3 and at most 14 days."


class CompoundedPrescription(ClinicOwned, SoftDeletable):
    """RX-1: a compounded LDN prescription."""

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="prescriptions")
    form = models.CharField(max_length=20, choices=Form.choices)
    strength_value = models.DecimalField(max_digits=7, decimal_places=3)
    strength_unit = models.CharField(max_length=12, choices=StrengthUnit.choices)
    filler = models.CharField(max_length=12, choices=Filler.choices, default=Filler.MCC)
    filler_other = models.CharField(max_length=100, blank=True)
    release = models.CharField(max_length=2, choices=ReleaseType.choices, default=ReleaseType.IR)
    quantity = models.DecimalField(max_digits=8, decimal_places=2)
    quantity_unit = models.CharField(max_length=10, choices=QuantityUnit.choices)
    days_supply = models.PositiveSmallIntegerField()
    refills = models.PositiveSmallIntegerField(default=0)
    sig = models.CharField("directions (sig)", max_length=500)
    pharmacy = models.ForeignKey(Pharmacy, on_delete=models.PROTECT, related_name="prescriptions")
    prescriber = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    written_on = models.DateField()
    start_on = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=PrescriptionStatus.choices, default=PrescriptionStatus.DRAFT)

    history = HistoricalRecords()
    constraint_fields = {"rx_unit_strength_is_low_dose": "strength_value"}  # its message goes beside that field

    class Meta:
        ordering = ["-written_on"]
        constraints = [
            models.CheckConstraint(
                condition=Q(release="IR"),
                name="rx_immediate_release_only",
                violation_error_message=SLOW_RELEASE_MESSAGE,
            ),
            models.CheckConstraint(
                condition=Q(strength_value__gt=0),
                name="rx_strength_positive",
                violation_error_message="Strength must be more than 0.",
            ),
            models.CheckConstraint(
                condition=Q(quantity__gt=0),
                name="rx_quantity_positive",
                violation_error_message="Quantity must be more than 0.",
            ),
            models.CheckConstraint(
                condition=Q(days_supply__gt=0),
                name="rx_days_supply_positive",
                violation_error_message="Days supply must be at least 1 day.",
            ),
            models.CheckConstraint(
                condition=Q(refills__lte=12),
                name="rx_refills_at_most_12",
                violation_error_message="At most 12 refills.",
            ),
            models.CheckConstraint(
                condition=Q(start_on__isnull=True) | Q(start_on__gte=F("written_on")),
                name="rx_start_after_written",
                violation_error_message="The start date cannot be before the date the prescription was written.",
            ),
            models.CheckConstraint(
                condition=~Q(form__in=[f.value for f in PER_UNIT_DOSE_FORMS])
                | Q(strength_value__lte=rules.LDN_HARD_MAX_MG),
                name="rx_unit_strength_is_low_dose",
                violation_error_message=UNIT_STRENGTH_MESSAGE,
            ),
            models.CheckConstraint(condition=Q(status__in=PrescriptionStatus.values), name="rx_status_valid"),
        ]

    def __str__(self) -> str:
        return f"LDN {self.strength_value} {self.strength_unit} {self.get_form_display().lower()}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.release != ReleaseType.IR:
            errors["release"] = SLOW_RELEASE_MESSAGE
        if self.form and self.strength_unit and self.strength_unit not in FORM_UNITS.get(self.form, set()):
            allowed = ", ".join(sorted(FORM_UNITS[self.form]))
            errors["strength_unit"] = f"A {self.get_form_display().lower()} is measured in {allowed}."
        if self.form in PER_UNIT_DOSE_FORMS and self.strength_value and self.strength_value > rules.LDN_HARD_MAX_MG:
            errors["strength_value"] = (
                f"{self.strength_value} mg per unit is above {rules.LDN_HARD_MAX_MG} mg: "
                "that is not low-dose naltrexone."
            )
        if self.filler == Filler.OTHER and not self.filler_other.strip():
            errors["filler_other"] = "Name the filler."
        for word, message in _REFUSED_FILLER_WORDS.items():
            if word in self.filler_other.lower():
                errors["filler_other"] = message
        if self.start_on and self.written_on and self.start_on < self.written_on:
            errors["start_on"] = "The start date cannot be before the date the prescription was written."
        if self.prescriber_id and self.clinic_id is None and self.patient_id:
            self.clinic_id = self.patient.clinic_id
        if self.prescriber_id and self.clinic_id:
            from patients.models import Role  # below titration: allowed direction

            if not self.prescriber.memberships.filter(
                clinic_id=self.clinic_id, role=Role.PRESCRIBER, is_active=True
            ).exists():
                errors["prescriber"] = "The prescriber must be an active prescriber at the patient's clinic."
        if self.pharmacy_id and self.patient_id and self.pharmacy.clinic_id != self.patient.clinic_id:
            errors["pharmacy"] = "Choose one of your clinic's pharmacies."
        if errors:
            raise ValidationError(errors)


class TitrationProtocol(TimeStamped):
    """A template schedule (domain.md 1.2), loaded by a data migration. Not patient data."""

    key = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.key}: {self.name}"

    @property
    def target_dose_mg(self) -> Decimal | None:
        last = self.steps.order_by("-sequence").first()
        return last.dose_mg if last else None


class ProtocolStep(models.Model):
    protocol = models.ForeignKey(TitrationProtocol, on_delete=models.CASCADE, related_name="steps")
    sequence = models.PositiveSmallIntegerField()
    dose_mg = models.DecimalField(**DOSE_MG, validators=[_validate_dose])
    min_days = models.PositiveSmallIntegerField(default=rules.MIN_DAYS_DEFAULT)

    class Meta:
        ordering = ["protocol", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["protocol", "sequence"], name="protocol_step_sequence_unique"),
            models.CheckConstraint(
                condition=DOSE_1_DB, name="protocol_step_dose_1", violation_error_message=DOSE_1_MESSAGE
            ),
            models.CheckConstraint(
                condition=Q(min_days__gte=3, min_days__lte=14),
                name="protocol_step_min_days_3_14",
                violation_error_message=MIN_DAYS_MESSAGE,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sequence}: {self.dose_mg} mg"


class PlanStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


class TitrationPlan(ClinicOwned, SoftDeletable):
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="titration_plans")
    protocol = models.ForeignKey(TitrationProtocol, null=True, blank=True, on_delete=models.PROTECT)
    prescription = models.ForeignKey(
        CompoundedPrescription, null=True, blank=True, on_delete=models.PROTECT, related_name="plans"
    )
    target_dose_mg = models.DecimalField(**DOSE_MG, default=rules.LDN_TARGET_MG, validators=[_validate_dose])
    start_date = models.DateField()
    status = models.CharField(max_length=10, choices=PlanStatus.choices, default=PlanStatus.DRAFT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    notes = models.TextField(blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-start_date"]
        constraints = [
            models.CheckConstraint(
                condition=Q(target_dose_mg__gt=0) & Q(target_dose_mg__lte=rules.LDN_HARD_MAX_MG),
                name="plan_target_dose_1",
                violation_error_message=DOSE_1_MESSAGE,
            ),
            models.UniqueConstraint(
                fields=["patient"],
                condition=Q(status="active", deleted_at__isnull=True),
                name="plan_one_active_per_patient",
                violation_error_message="The patient already has an active plan: complete or discontinue it first.",
            ),
            models.CheckConstraint(condition=Q(status__in=PlanStatus.values), name="plan_status_valid"),
        ]

    def __str__(self) -> str:
        return f"Plan to {self.target_dose_mg} mg from {self.start_date} ({self.get_status_display()})"

    def clean(self) -> None:
        if self.prescription_id and self.patient_id and self.prescription.patient_id != self.patient_id:
            raise ValidationError({"prescription": "The prescription belongs to another patient."})


class StepStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    ACTIVE = "active", "Active"
    HELD = "held", "Held"
    STEPPED_BACK = "stepped_back", "Stepped back"
    SKIPPED = "skipped", "Skipped"
    DONE = "done", "Done"


class TitrationStep(ClinicOwned, SoftDeletable):
    """DOSE-2: (plan, sequence, dose_mg, planned_start, min_days, actual_start, status)."""

    plan = models.ForeignKey(TitrationPlan, on_delete=models.PROTECT, related_name="steps")
    sequence = models.PositiveSmallIntegerField()
    dose_mg = models.DecimalField(**DOSE_MG, validators=[_validate_dose])
    planned_start = models.DateField()
    min_days = models.PositiveSmallIntegerField(default=rules.MIN_DAYS_DEFAULT)
    actual_start = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=15, choices=StepStatus.choices, default=StepStatus.PLANNED)
    note = models.CharField(max_length=500, blank=True)
    # A clinician's hold (plan_hold by a person) blocks step-ups until resumed; a hold the side-effect rules
    # made (SE-1, SE-4) is re-read from the check-ins each time (domain.md 1.3 condition 3).
    held_by_clinician = models.BooleanField(default=False)

    scope_patient_path = "plan__patient"
    history = HistoricalRecords()

    class Meta:
        ordering = ["plan", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "sequence"],
                condition=Q(deleted_at__isnull=True),
                name="plan_step_sequence_unique",
                violation_error_message="The plan already has a step with this number.",
            ),
            models.CheckConstraint(
                condition=DOSE_1_DB, name="plan_step_dose_1", violation_error_message=DOSE_1_MESSAGE
            ),
            models.CheckConstraint(
                condition=Q(min_days__gte=3, min_days__lte=14),
                name="plan_step_min_days_3_14",
                violation_error_message=MIN_DAYS_MESSAGE,
            ),
            models.CheckConstraint(condition=Q(status__in=StepStatus.values), name="plan_step_status_valid"),
        ]

    def __str__(self) -> str:
        return f"Step {self.sequence}: {self.dose_mg} mg from {self.planned_start}"


from .credential_models import PrescriberCredential  # noqa: E402, F401 - configuration for the printed prescription
from .outlook_models import PlanOutlook  # noqa: E402, F401 - derived: what is coming for each active plan
from .reminder_models import Reminder  # noqa: E402, F401 - a model of this app, kept in its own file
