"""Writes for check-ins: one transaction for the check-in and its side effects (whose commit lets
titration steer the plan and the opioid answer reach the medication list)."""

import datetime as dt

from django.db import IntegrityError, transaction
from django.utils import timezone

from .invitations import CheckInInvitation
from .models import SideEffectReport, SymptomCheckIn


class AlreadyUsed(Exception):
    pass


def checkin_submit(
    *, patient, data: dict, side_effects: list[tuple[str, int, str]], invitation: CheckInInvitation | None = None
) -> SymptomCheckIn:
    """Store one check-in. The same submission (``submission_id``) or a used link stores nothing new."""
    existing = SymptomCheckIn.objects.filter(submission_id=data["submission_id"], patient=patient).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            checkin = SymptomCheckIn(
                patient=patient,
                recorded_at=timezone.now(),
                **{
                    k: data[k]
                    for k in (
                        "pain",
                        "fatigue",
                        "sleep_quality",
                        "mood",
                        "took_dose_as_prescribed",
                        "nights_missed",
                        "opioid_use",
                        "notes",
                        "submission_id",
                    )
                },
            )
            checkin.full_clean()
            checkin.save()
            for effect, severity, description in side_effects:
                SideEffectReport.objects.create(
                    checkin=checkin, effect=effect, severity=severity, description=description
                )
            if invitation is not None:  # compare-and-set: a link is used once; a second submit rolls back
                claimed = CheckInInvitation.objects.filter(pk=invitation.pk, used_at__isnull=True).update(
                    used_at=timezone.now(), checkin=checkin
                )
                if claimed != 1:
                    raise AlreadyUsed
    except IntegrityError:  # the same submission raced itself: the first one stands
        existing = SymptomCheckIn.objects.filter(submission_id=data["submission_id"], patient=patient).first()
        if existing is None:
            raise
        return existing
    return checkin


def local_today(patient) -> dt.date:
    return timezone.now().astimezone(patient.zone).date()
