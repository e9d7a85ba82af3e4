"""Check-in links: one link opens one check-in for one patient, without a password.

Only a hash of the token is stored. Opening the link (GET) never uses it up, because mail scanners
open links; submitting does, once, by a compare-and-set on ``used_at``. An expired, used or altered
link gets a plain page saying what happened and how to get a new one.
"""

import datetime as dt
import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from ldnclinic.db import ClinicOwned


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class CheckInInvitation(ClinicOwned):
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="checkin_invitations")
    for_date = models.DateField(help_text="The patient's day this check-in is for.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    checkin = models.OneToOneField(
        "symptoms.SymptomCheckIn", null=True, blank=True, on_delete=models.PROTECT, related_name="invitation"
    )

    class Meta:
        ordering = ["-for_date"]
        constraints = [
            models.UniqueConstraint(fields=["patient", "for_date"], name="one_invitation_per_patient_day"),
            models.CheckConstraint(
                condition=Q(used_at__isnull=True) | Q(checkin__isnull=False), name="used_has_checkin"
            ),
        ]

    def __str__(self) -> str:
        return f"Check-in link for {self.for_date}"

    @property
    def expired(self) -> bool:
        return timezone.now() >= self.expires_at


def invitation_for(patient, for_date: dt.date) -> tuple[CheckInInvitation, str | None]:
    """The patient's invitation for ``for_date`` and a fresh token for its link.

    Idempotent per (patient, day). A token is only ever shown once (we keep its hash), so asking
    again re-keys an unused invitation: the newest link works, older links for the day stop working.
    """
    hours = getattr(settings, "CHECKIN_LINK_HOURS", 72)
    token = secrets.token_urlsafe(32)
    invitation, created = CheckInInvitation.objects.get_or_create(
        patient=patient,
        for_date=for_date,
        defaults={"token_hash": token_hash(token), "expires_at": timezone.now() + dt.timedelta(hours=hours)},
    )
    if created:
        return invitation, token
    if invitation.used_at is not None:
        return invitation, None
    invitation.token_hash = token_hash(token)
    invitation.expires_at = timezone.now() + dt.timedelta(hours=hours)
    invitation.save(update_fields=["token_hash", "expires_at", "updated_at"])
    return invitation, token


def find(token: str) -> CheckInInvitation | None:
    if not token or len(token) > 100:
        return None
    return (
        CheckInInvitation.objects.select_related("patient", "patient__clinic")
        .filter(token_hash=token_hash(token))
        .first()
    )
