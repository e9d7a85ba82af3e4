"""What a printed prescription says about its prescriber: credentials and licence numbers, per clinic.

Configuration, kept in the admin (titration/credential_admin.py): a prescriber's credentials ("MD", "NP")
and licence numbers (state licence, DEA, NPI) as the compounding pharmacy needs them on the prescription.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from simple_history.models import HistoricalRecords

from ldnclinic.db import ClinicOwned


class PrescriberCredential(ClinicOwned):
    clinic = models.ForeignKey("patients.Clinic", on_delete=models.PROTECT, related_name="prescriber_credentials")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="prescriber_credentials",
        verbose_name="prescriber",
    )
    credentials = models.CharField(max_length=100, help_text='As printed after the name, e.g. "MD" or "DO, MPH".')
    licence_numbers = models.TextField(
        help_text="One per line, as printed: state licence, DEA and NPI numbers (e.g. 'NPI 1234567893')."
    )

    scope_patient_path = None  # a clinic's configuration, no patient's record
    history = HistoricalRecords()

    class Meta:
        ordering = ["clinic", "user__last_name", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["user", "clinic"], name="prescriber_credential_one_per_clinic"),
        ]

    def __str__(self) -> str:
        name = self.user.get_full_name() or self.user.get_username()
        return f"{name}, {self.credentials}"

    def clean(self) -> None:
        from patients.models import Role  # below titration: allowed direction

        prescribers = Role.PRESCRIBER
        if (
            self.user_id
            and self.clinic_id
            and not self.user.memberships.filter(clinic_id=self.clinic_id, role=prescribers, is_active=True).exists()
        ):
            raise ValidationError({"user": "Choose an active prescriber of this clinic."})
