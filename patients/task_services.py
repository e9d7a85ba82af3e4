"""Writes for who has taken a clinician task on (the worklist's "Assign to me").

Kept apart from patients/services.py, which holds the task's clinical life (close, cancel); this only
says whose it is, with who changed it and when on the history row.
"""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from .flag_models import ClinicianTask, TaskStatus
from .models import Membership, Role

ASSIGNABLE_ROLES = (Role.PRESCRIBER, Role.NURSE)


def _clinical_member(user, clinic_id: int) -> bool:
    if user is None or not getattr(user, "is_active", False):
        return False
    return Membership.objects.filter(
        user_id=user.pk, clinic_id=clinic_id, is_active=True, role__in=ASSIGNABLE_ROLES
    ).exists()


def task_assign(*, actor, task: ClinicianTask, assignee) -> ClinicianTask:
    """Give an open task to a prescriber or nurse of its clinic, or to nobody (``assignee=None``).

    The actor must be a prescriber or nurse of the task's clinic (PermissionDenied); a closed task, or
    an assignee who is not clinical staff of that clinic, is refused (ValidationError). Assigning to
    the person who already has it changes nothing.
    """
    if not _clinical_member(actor, task.clinic_id):
        raise PermissionDenied("Only a prescriber or nurse of the patient's clinic can take on or hand back a task.")
    if assignee is not None and not _clinical_member(assignee, task.clinic_id):
        raise ValidationError({"assigned_to": "A task can go only to a prescriber or nurse of the patient's clinic."})
    with transaction.atomic():
        task = ClinicianTask.objects.select_for_update(of=("self",)).select_related("assigned_to").get(pk=task.pk)
        if task.status != TaskStatus.OPEN:
            raise ValidationError(f"This task is {task.get_status_display().lower()}: only an open task is assigned.")
        if task.assigned_to_id == (assignee.pk if assignee is not None else None):
            return task
        task.assigned_to = assignee
        task._history_user = actor
        task._change_reason = f"assigned to {assignee.get_username()}" if assignee is not None else "unassigned"
        task.save(update_fields=["assigned_to", "updated_at"])
    return task
