"""The stored outlook of each active plan (titration/outlook.py computes it): a derived row, never the
truth, kept so the worklist can count and order plans in SQL instead of reading every plan it might show."""

from django.db import models

from ldnclinic.db import ClinicOwned


class PlanOutlook(ClinicOwned):
    """What is coming for one active plan, as of its last change. No history: it is rebuilt from the plan,
    its steps and the patient's prescriptions whenever one of them changes, and nightly."""

    plan = models.OneToOneField("titration.TitrationPlan", on_delete=models.CASCADE, related_name="outlook")
    patient = models.ForeignKey("patients.Patient", on_delete=models.CASCADE, related_name="+")
    # REM-1 and 1.3's minimum days: the first evening the next planned step may be taken, also as a day
    # number (date.toordinal) so SQL can work out the weekly re-ask of a held step in any database.
    step_on = models.DateField(null=True, blank=True)
    step_day = models.IntegerField(null=True, blank=True)
    # RX-2/RX-3: when the active prescription, refills included, runs out on the plan's schedule, and the
    # day a new prescription must reach the pharmacy (its lead time before).
    runs_out = models.DateField(null=True, blank=True)
    reorder_by = models.DateField(null=True, blank=True)
    # RX-3: the next step cannot be made from any active prescription; a new one is needed by this day.
    new_rx_by = models.DateField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["clinic", "step_day"], name="outlook_clinic_step"),
            models.Index(fields=["clinic", "reorder_by"], name="outlook_clinic_reorder"),
            models.Index(fields=["clinic", "new_rx_by"], name="outlook_clinic_new_rx"),
        ]

    def __str__(self) -> str:
        return f"outlook of plan {self.plan_id}"
