"""Condition instruments (PRO-2) stored with the check-in they came in, and the clinic's licences
for the instruments that need one (PRO-3).

Scoring stays in ``symptoms.instruments`` (pure); a row here keeps what the patient answered and
what the scoring function made of it, so a later change to the scoring code never rewrites history.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from ldnclinic.db import ClinicOwned, SoftDeletable

from . import instruments


class Instrument(models.TextChoices):
    HBI = instruments.HBI, "Harvey-Bradshaw Index (Crohn's)"
    MFIS = instruments.MFIS, "Modified Fatigue Impact Scale (MS)"
    FIQR = instruments.FIQR, "Revised Fibromyalgia Impact Questionnaire"
    PGIC = instruments.PGIC, "Patient Global Impression of Change"
    BPI = instruments.BPI, "Brief Pain Inventory (short form)"
    PROMIS = instruments.PROMIS, "PROMIS-29"


class LicensedInstrument(models.TextChoices):
    # domain.md 4.1 licence column: these stay off until the clinic records its licence (PRO-3).
    FIQR = instruments.FIQR, "Revised Fibromyalgia Impact Questionnaire"
    BPI = instruments.BPI, "Brief Pain Inventory (short form)"
    PROMIS = instruments.PROMIS, "PROMIS-29"


class LicenceScope(models.TextChoices):
    CLINICAL = "clinical", "Individual clinical use"
    INSTITUTIONAL = "institutional", "Institutional"
    COMMERCIAL = "commercial", "Commercial / electronic administration"


class InstrumentLicence(ClinicOwned, SoftDeletable):
    """PRO-3: the clinic's recorded permission to administer a licensed instrument. Per clinic, per
    instrument; an instrument is on for the clinic's patients only while a current licence exists."""

    instrument = models.CharField(max_length=10, choices=LicensedInstrument.choices)
    holder = models.CharField(
        "licensed by", max_length=200, help_text="Who granted the permission (e.g. the copyright holder's agent)."
    )
    reference = models.CharField(
        max_length=200, help_text="The licence number, agreement or permission letter this rests on."
    )
    scope = models.CharField(max_length=20, choices=LicenceScope.choices)
    valid_from = models.DateField()
    valid_until = models.DateField(null=True, blank=True, help_text="Leave empty if the licence does not expire.")
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    notes = models.TextField(blank=True, max_length=2000)

    scope_patient_path = None
    history = HistoricalRecords()

    class Meta:
        ordering = ["instrument"]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "instrument"],
                condition=Q(deleted_at__isnull=True),
                name="instrument_licence_one_per_clinic",
            ),
            models.CheckConstraint(
                condition=Q(instrument__in=LicensedInstrument.values), name="instrument_licence_instrument_valid"
            ),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gte=models.F("valid_from")),
                name="instrument_licence_valid_until_after_from",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_instrument_display()} licence ({self.reference})"

    def is_current(self, today) -> bool:
        return (
            self.deleted_at is None
            and self.valid_from <= today
            and (self.valid_until is None or today <= self.valid_until)
        )


class InstrumentScore(ClinicOwned):
    """One instrument answered in one check-in: the answers as given and the score computed from them.

    ``total`` is the instrument's total (HBI sum, MFIS 0-84, FIQR 0-100, PGIC 1-7). ``partial`` marks
    a patient-form HBI without the clinician-examined abdominal mass (PRO-2): it must not be compared
    with full-HBI thresholds.
    """

    checkin = models.ForeignKey("symptoms.SymptomCheckIn", on_delete=models.PROTECT, related_name="instrument_scores")
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="instrument_scores")
    instrument = models.CharField(max_length=10, choices=Instrument.choices)
    recorded_at = models.DateTimeField(db_index=True)
    answers = models.JSONField(default=dict)
    total = models.DecimalField(max_digits=5, decimal_places=1)
    subscores = models.JSONField(default=dict, blank=True)
    partial = models.BooleanField(default=False)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-recorded_at"]
        indexes = [models.Index(fields=["patient", "instrument", "recorded_at"])]
        constraints = [
            models.UniqueConstraint(fields=["checkin", "instrument"], name="instrument_score_once_per_checkin"),
            models.CheckConstraint(condition=Q(instrument__in=Instrument.values), name="instrument_score_valid"),
            models.CheckConstraint(condition=Q(total__gte=0, total__lte=100), name="instrument_score_total_0_100"),
        ]

    def __str__(self) -> str:
        flag = " (partial)" if self.partial else ""
        return f"{self.instrument} {self.total}{flag} on {self.recorded_at:%Y-%m-%d}"
