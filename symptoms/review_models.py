"""A clinician's "side effects reviewed" mark (domain.md 1.4), which the clinic worklist reads.

Severe effects (SE-4) already raise a clinician task; mild and moderate ones steer the plan on their
own (SE-1, SE-2) but a clinician should still see them. Each mark says: everything this patient
reported in check-ins recorded up to ``up_to`` has been looked at, by whom and when. The worklist
shows the check-ins with side effects recorded after the patient's latest mark. Marks are kept, never
edited: the history answers "who reviewed what, when".
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from ldnclinic.db import ClinicOwned


class SideEffectReview(ClinicOwned):
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="side_effect_reviews")
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reviewed_at = models.DateTimeField(default=timezone.now)
    up_to = models.DateTimeField(help_text="Side effects in check-ins recorded up to this instant are reviewed.")

    history = HistoricalRecords()

    class Meta:
        ordering = ["-up_to"]
        indexes = [models.Index(fields=["patient", "up_to"])]
        constraints = [
            # Nobody reviews a check-in that has not been recorded yet.
            models.CheckConstraint(condition=Q(up_to__lte=F("reviewed_at")), name="side_effect_review_not_ahead"),
        ]

    def __str__(self) -> str:
        return f"Side effects reviewed up to {self.up_to:%Y-%m-%d %H:%M} by {self.reviewed_by}"
