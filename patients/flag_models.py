"""Opioid conflict flags in the patient's record, and the safety gate's log (domain.md section 2).

A flag is one finding about one medication: the matcher's class, evidence and catalog version, the
washout and earliest safe LDN start (OPI-W1/W2), and its life: open, acknowledged (with a structured
reason, by whom, until when) or resolved (with the reason). One row per (medication, kind), so
re-evaluating never creates a second flag; history keeps every change.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from ldnclinic.db import ClinicOwned


class FlagKind(models.TextChoices):
    CONFLICT = "conflict", "Opioid conflict"
    CAUTION = "caution", "Possible opioid: verify"
    DUPLICATE_ANTAGONIST = "duplicate_antagonist", "Duplicate antagonist"
    OPIOID_CONTEXT = "opioid_context", "Opioid context: ask"
    UNAVAILABLE = "unavailable", "Check unavailable: review manually"


class FlagSeverity(models.TextChoices):
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


SEVERITY_OF_KIND = {
    FlagKind.CONFLICT: FlagSeverity.HIGH,
    FlagKind.UNAVAILABLE: FlagSeverity.HIGH,
    FlagKind.CAUTION: FlagSeverity.MEDIUM,
    FlagKind.DUPLICATE_ANTAGONIST: FlagSeverity.MEDIUM,
    FlagKind.OPIOID_CONTEXT: FlagSeverity.LOW,
}
# Kinds only a prescriber may acknowledge: they are the ones that can precipitate withdrawal.
PRESCRIBER_KINDS = frozenset({FlagKind.CONFLICT, FlagKind.UNAVAILABLE})


class FlagStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class AcknowledgeReason(models.TextChoices):
    NOT_TAKING = "not_taking", "Patient confirms they no longer take it"
    WASHOUT_CONFIRMED = "washout_confirmed", "Washout confirmed with the patient"
    NOT_AN_OPIOID = "not_an_opioid", "Verified: not an opioid"
    ENTERED_IN_ERROR = "entered_in_error", "Entered in error"
    UDS_NEGATIVE = "uds_negative", "Negative urine drug screen (OPI-W2)"
    NALOXONE_CHALLENGE = "naloxone_challenge", "Negative naloxone challenge (OPI-W2)"
    CLINICAL_JUDGEMENT = "clinical_judgement", "Prescriber's clinical judgement"
    OTHER = "other", "Other (explain)"


class TestResult(models.TextChoices):
    NOT_DONE = "", "Not done"
    NEGATIVE = "negative", "Negative"
    POSITIVE = "positive", "Positive"


class ConflictFlag(ClinicOwned):
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="conflict_flags")
    medication = models.ForeignKey(
        "patients.MedicationStatement", on_delete=models.PROTECT, related_name="conflict_flags"
    )
    kind = models.CharField(max_length=25, choices=FlagKind.choices)
    severity = models.CharField(max_length=10, choices=FlagSeverity.choices)
    status = models.CharField(max_length=15, choices=FlagStatus.choices, default=FlagStatus.OPEN)
    # What the matcher found, frozen at evaluation time.
    medication_text = models.CharField(max_length=300)
    ingredients = models.JSONField(default=list)
    evidence = models.JSONField(default=list)
    notes = models.JSONField(default=list)
    catalog_version = models.CharField(max_length=40)
    release = models.CharField(max_length=10, blank=True)
    washout_group = models.CharField(max_length=10, blank=True)
    washout_days = models.PositiveSmallIntegerField(null=True, blank=True)
    last_dose_date = models.DateField(null=True, blank=True)
    earliest_safe_start = models.DateField(null=True, blank=True)
    earliest_start_note = models.CharField(max_length=300, blank=True)
    # OPI-W2: a prescriber may shorten the washout to 7 days or more, with a reason; test results are recorded.
    shortened_washout_days = models.PositiveSmallIntegerField(null=True, blank=True)
    shortened_reason = models.CharField(max_length=300, blank=True)
    uds_result = models.CharField("urine drug screen", max_length=10, choices=TestResult.choices, blank=True)
    naloxone_challenge = models.CharField(max_length=10, choices=TestResult.choices, blank=True)
    # Acknowledgement or override, with a structured reason; it lapses at expires_at and the flag reopens.
    acknowledged_reason = models.CharField(max_length=25, choices=AcknowledgeReason.choices, blank=True)
    acknowledged_note = models.TextField(blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_reason = models.CharField(max_length=300, blank=True)
    evaluated_at = models.DateTimeField()

    history = HistoricalRecords()

    class Meta:
        ordering = ["status", "-evaluated_at"]
        indexes = [models.Index(fields=["patient", "status"])]
        constraints = [
            # Idempotency: evaluating twice, or two workers at once, can only ever touch one row.
            models.UniqueConstraint(fields=["medication", "kind"], name="flag_one_per_medication_kind"),
            models.CheckConstraint(condition=Q(kind__in=FlagKind.values), name="flag_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=FlagStatus.values), name="flag_status_valid"),
            models.CheckConstraint(
                condition=~Q(status="acknowledged") | (~Q(acknowledged_reason="") & Q(acknowledged_by__isnull=False)),
                name="flag_acknowledged_needs_reason_and_who",
            ),
            models.CheckConstraint(
                condition=~Q(status="resolved") | ~Q(resolved_reason=""), name="flag_resolved_needs_reason"
            ),
            models.CheckConstraint(
                condition=Q(shortened_washout_days__isnull=True) | Q(shortened_washout_days__gte=7),
                name="flag_washout_never_below_7_days",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.medication_text} ({self.get_status_display()})"

    @property
    def blocks_ldn(self) -> bool:
        return self.status == FlagStatus.OPEN


class GateAction(models.TextChoices):
    ACTIVATE_PRESCRIPTION = "activate_prescription", "Activate an LDN prescription"
    START_PLAN = "start_plan", "Start a titration plan"
    STEP_UP = "step_up", "Step up the dose"


class GateOutcome(models.TextChoices):
    BLOCKED = "blocked", "Blocked"
    OVERRIDDEN = "overridden", "Overridden by a prescriber"


class SafetyGateEvent(ClinicOwned):
    """A clinical action stopped by open flags, or let through by a prescriber's override (with reason)."""

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="safety_gate_events")
    action = models.CharField(max_length=30, choices=GateAction.choices)
    outcome = models.CharField(max_length=15, choices=GateOutcome.choices)
    flags = models.ManyToManyField(ConflictFlag, related_name="gate_events")
    summary = models.TextField()
    reason = models.TextField(blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")

    history = HistoricalRecords()  # append-only, but every clinical row answers "who, when" the same way

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(outcome="overridden") | ~Q(reason=""), name="gate_override_needs_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()}: {self.get_outcome_display()}"


class TaskKind(models.TextChoices):
    OPIOID_PLAN = "opioid_plan", "Opioid while on LDN: hold LDN / opioid plan (OPI-W3)"
    SIDE_EFFECT = "side_effect", "Severe side effect review (SE-4)"
    HOLD_REVIEW = "hold_review", "Step held over 14 days (REM-1)"
    EFFICACY_REVIEW = "efficacy_review", "Efficacy review at 12 weeks (EFF-1)"
    MISSED_CHECKINS = "missed_checkins", "Missed check-ins (REM-3)"
    LAB_ALERT = "lab_alert", "Liver tests above 3× ULN (LAB-2)"
    LAB_REVIEW = "lab_review", "Liver review: step-ups blocked (LAB-2)"
    OTHER = "other", "Other"


class TaskStatus(models.TextChoices):
    OPEN = "open", "Open"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


class ClinicianTask(ClinicOwned):
    """Something a clinician must do for a patient, raised by a rule. ``key`` makes raising it idempotent."""

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="clinician_tasks")
    kind = models.CharField(max_length=20, choices=TaskKind.choices)
    key = models.CharField(max_length=120, unique=True)
    title = models.CharField(max_length=200)
    detail = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    due_on = models.DateField(null=True, blank=True)
    # Who has taken the task on (the worklist's "mine / unassigned" filter); nobody until someone does.
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_tasks"
    )
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_note = models.TextField(blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["status", "due_on", "-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=TaskKind.values), name="task_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=TaskStatus.values), name="task_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.get_status_display()})"
