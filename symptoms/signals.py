"""A check-in that answers yes (or not sure) to the opioid question puts an entry to verify on the
patient's medication list; saving it runs the conflict engine (patients.signals) like any other."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from patients.models import MedicationSource, MedicationStatement

from .models import OpioidUse, SymptomCheckIn


@receiver(post_save, sender=SymptomCheckIn, dispatch_uid="checkin-opioid-answer")
def checkin_saved(sender, instance: SymptomCheckIn, raw: bool = False, **kwargs) -> None:
    if raw or instance.opioid_use not in (OpioidUse.YES, OpioidUse.UNSURE) or instance.deleted_at:
        return
    answer = "reported" if instance.opioid_use == OpioidUse.YES else "possibly taken (not sure)"
    MedicationStatement.objects.get_or_create(
        patient=instance.patient,
        source=MedicationSource.CHECK_IN,
        name=f"Opioid {answer} at check-in {instance.recorded_at:%Y-%m-%d} #{instance.pk}: verify",
        defaults={"clinic": instance.clinic, "last_dose_date": None},
    )
