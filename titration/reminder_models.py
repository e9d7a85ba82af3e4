"""Reminders as an outbox (domain.md section 6): every reminder is a row before it is a message.

The database is the truth: a row has a due time in UTC (computed from the patient's zone and
reminder time), a status and a unique idempotency key. A beat tick claims due rows with a
compare-and-set update, sends, and marks them; nothing is scheduled with Celery ETAs, so losing
Redis loses nothing.
"""

from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from ldnclinic.db import ClinicOwned


class ReminderKind(models.TextChoices):
    STEP_UP = "step_up", "Step-up tonight (REM-1)"
    STAY_ON_DOSE = "stay_dose", "Stay on your dose: step held (REM-1)"
    NIGHTLY_DOSE = "nightly_dose", "Nightly dose (REM-2)"
    CHECKIN_DUE = "checkin_due", "Check-in due (REM-3)"
    WASHOUT = "washout", "Washout countdown (REM-5)"
    REFILL = "refill", "Refill or new prescription due (RX-3)"


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"


class ReminderStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Reminder(ClinicOwned):
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="reminders")
    plan = models.ForeignKey(
        "titration.TitrationPlan", null=True, blank=True, on_delete=models.PROTECT, related_name="reminders"
    )
    step = models.ForeignKey(
        "titration.TitrationStep", null=True, blank=True, on_delete=models.PROTECT, related_name="reminders"
    )
    kind = models.CharField(max_length=20, choices=ReminderKind.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    local_date = models.DateField(help_text="The patient's calendar day the reminder is for.")
    due_at = models.DateTimeField(db_index=True, help_text="UTC")
    next_attempt_at = models.DateTimeField(db_index=True, help_text="UTC; later than due_at after a retry")
    status = models.CharField(max_length=10, choices=ReminderStatus.choices, default=ReminderStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=160, unique=True)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True, help_text="What was sent, kept as sent.")
    cancelled_reason = models.CharField(max_length=300, blank=True)

    # History records creation and planning changes (cancelled, rescheduled). Sending moves status by
    # compare-and-set UPDATEs, which history does not see: the row itself keeps attempts, claim and
    # sent times, the last error and what was sent.
    history = HistoricalRecords()

    class Meta:
        ordering = ["due_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="reminder_due_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=ReminderKind.values), name="reminder_kind_valid"),
            models.CheckConstraint(condition=Q(channel__in=Channel.values), name="reminder_channel_valid"),
            models.CheckConstraint(condition=Q(status__in=ReminderStatus.values), name="reminder_status_valid"),
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False), name="reminder_sent_has_time"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.channel} for {self.local_date} ({self.get_status_display()})"
