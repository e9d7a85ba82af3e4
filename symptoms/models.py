"""Symptom check-ins (PRO-1) and the side effects reported in them (domain.md 1.4)."""

from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from ldnclinic.db import ClinicOwned, SoftDeletable

NOTES_MAX_LENGTH = 2000


class SideEffect(models.TextChoices):
    VIVID_DREAMS = "vivid_dreams", "Vivid or unusual dreams"
    INSOMNIA = "insomnia", "Insomnia / sleep disturbance"
    HEADACHE = "headache", "Headache"
    NAUSEA = "nausea", "Nausea / stomach upset"
    FATIGUE = "fatigue", "Fatigue"
    VOMITING = "vomiting", "Vomiting"
    DECREASED_APPETITE = "decreased_appetite", "Decreased appetite"
    OTHER = "other", "Other"


class Severity(models.IntegerChoices):
    NONE = 0, "None"
    MILD = 1, "Mild"
    MODERATE = 2, "Moderate"
    SEVERE = 3, "Severe"


class OpioidUse(models.TextChoices):
    NO = "no", "No"
    YES = "yes", "Yes"
    UNSURE = "unsure", "Not sure"


def _nrs(name: str) -> models.PositiveSmallIntegerField:
    return models.PositiveSmallIntegerField(name, null=True, blank=True, help_text="0–10")


NRS_FIELDS = ("pain", "fatigue", "sleep_quality", "mood")


class SymptomCheckIn(ClinicOwned, SoftDeletable):
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="checkins")
    recorded_at = models.DateTimeField(db_index=True)
    # PRO-1 numeric rating scales, 0-10; pain and fatigue: higher is worse, sleep and mood: higher is better.
    pain = _nrs("pain")
    fatigue = _nrs("fatigue")
    sleep_quality = _nrs("sleep quality")
    mood = _nrs("mood")
    took_dose_as_prescribed = models.BooleanField(null=True, blank=True)
    nights_missed = models.PositiveSmallIntegerField(default=0)
    opioid_use = models.CharField(
        "opioid-containing medicine, kratom or tianeptine since last check-in",
        max_length=10,
        choices=OpioidUse.choices,
        default=OpioidUse.NO,
    )
    notes = models.TextField(blank=True, max_length=NOTES_MAX_LENGTH)
    # The form's one-time id: the same submission sent twice (a double tap, a retry) is stored once.
    submission_id = models.UUIDField(null=True, blank=True, unique=True, editable=False)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-recorded_at"]
        indexes = [models.Index(fields=["patient", "recorded_at"])]
        constraints = [
            *[
                models.CheckConstraint(
                    condition=Q(**{f"{f}__isnull": True}) | Q(**{f"{f}__gte": 0, f"{f}__lte": 10}),
                    name=f"checkin_{f}_0_10",
                )
                for f in NRS_FIELDS
            ],
            models.CheckConstraint(
                condition=Q(nights_missed__gte=0, nights_missed__lte=7), name="checkin_nights_missed_0_7"
            ),
            models.CheckConstraint(condition=Q(opioid_use__in=OpioidUse.values), name="checkin_opioid_use_valid"),
        ]

    def __str__(self) -> str:
        return f"Check-in {self.recorded_at:%Y-%m-%d} for {self.patient}"

    def clean(self) -> None:
        # A TextField's max_length only limits the form widget; full_clean must refuse it too
        # (API and import paths validate with full_clean, not with an admin form).
        try:
            MaxLengthValidator(NOTES_MAX_LENGTH)(self.notes)
        except ValidationError as exc:
            raise ValidationError({"notes": exc.messages}) from None


class SideEffectReport(ClinicOwned):
    checkin = models.ForeignKey(SymptomCheckIn, on_delete=models.PROTECT, related_name="side_effects")
    effect = models.CharField(max_length=30, choices=SideEffect.choices)
    severity = models.PositiveSmallIntegerField(choices=Severity.choices)
    description = models.CharField(max_length=200, blank=True, help_text="What the effect is, when 'Other'.")
    started_on = models.DateField(null=True, blank=True)

    scope_patient_path = "checkin__patient"
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(severity__gte=0, severity__lte=3), name="side_effect_severity_0_3"),
            models.CheckConstraint(condition=Q(effect__in=SideEffect.values), name="side_effect_effect_valid"),
            models.UniqueConstraint(
                fields=["checkin", "effect"], condition=~Q(effect="other"), name="side_effect_once_per_checkin"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_effect_display()}: {self.get_severity_display()}"


from .calendar_feeds import CalendarFeed  # noqa: E402, F401 - a model of this app, kept in its own file
from .instrument_models import InstrumentLicence, InstrumentScore  # noqa: E402, F401 - PRO-2 / PRO-3
from .invitations import CheckInInvitation  # noqa: E402, F401 - a model of this app, kept in its own file
from .review_models import SideEffectReview  # noqa: E402, F401 - a model of this app, kept in its own file
