"""Reads: querysets already scoped to what the user may see."""

from django.db.models import QuerySet

from ldnclinic.scoping import visible_to

from .models import Patient


def patient_list(*, user, status: str | None = None) -> QuerySet[Patient]:
    qs = visible_to(user, Patient.objects.select_related("clinic").prefetch_related("conditions"))
    if status:
        qs = qs.filter(status=status)
    return qs
