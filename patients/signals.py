"""When a medication is added or changed, check it at once (the user sees the flag in the same
request) and again in the background after commit (idempotent; catches anything the request missed)."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from ldnclinic.tasks_util import enqueue_on_commit

from . import services, tasks
from .models import MedicationStatement


@receiver(post_save, sender=MedicationStatement, dispatch_uid="medication-opioid-check")
def medication_saved(sender, instance: MedicationStatement, raw: bool = False, **kwargs) -> None:
    if raw:  # loading fixtures
        return
    services.medication_evaluate(medication=instance)
    enqueue_on_commit(tasks.evaluate_medication, instance.pk)
