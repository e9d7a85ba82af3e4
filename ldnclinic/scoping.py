"""The one scoping function: what may this user see?

Every queryset of patient data that reaches a view, the API or the admin passes through
``visible_to``. Staff see the rows of the clinics they are active members of; a patient sees only
rows about themselves; anyone else sees nothing. Superusers are the platform operators and see all.

Models say how to reach their clinic and patient through two class attributes:
``scope_clinic_path`` (default "clinic") and ``scope_patient_path`` (default "patient"; None when
no patient owns the row). This module reads them; it imports no app, so apps can import it.
"""

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Model, Q, QuerySet


def staff_clinic_ids(user) -> list[int]:
    if not getattr(user, "is_authenticated", False):
        return []
    cached = getattr(user, "_ldn_clinic_ids", None)
    if cached is None:
        rows = list(user.memberships.filter(is_active=True).values_list("clinic_id", "role"))
        cached = [clinic_id for clinic_id, _ in rows]
        user._ldn_clinic_ids = cached
        if getattr(user, "_ldn_clinic_roles", None) is None:  # ldnclinic.admin.clinic_roles: the same rows
            roles: dict[int, set[str]] = {}
            for clinic_id, role in rows:
                roles.setdefault(clinic_id, set()).add(role)
            user._ldn_clinic_roles = roles
    return cached


def patient_id_of(user) -> int | None:
    if not getattr(user, "is_authenticated", False):
        return None
    cached = getattr(user, "_ldn_patient_id", False)
    if cached is False:
        try:
            profile = user.patient_profile  # reverse one-to-one from Patient.user
        except ObjectDoesNotExist:
            profile = None
        cached = profile.pk if profile is not None and profile.deleted_at is None else None
        user._ldn_patient_id = cached
    return cached


def visible_to(user, queryset: QuerySet | type[Model]) -> QuerySet:
    qs = queryset._default_manager.all() if isinstance(queryset, type) else queryset
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return qs.none()
    if user.is_superuser:
        return qs
    model = qs.model
    clinic_path = getattr(model, "scope_clinic_path", "clinic")
    patient_path = getattr(model, "scope_patient_path", "patient")

    condition = Q(pk__in=[])
    clinic_ids = staff_clinic_ids(user)
    if clinic_ids:
        condition |= Q(**{f"{clinic_path}__in" if clinic_path != "pk" else "pk__in": clinic_ids})
    patient_id = patient_id_of(user)
    if patient_id is not None and patient_path is not None:
        condition |= Q(**{patient_path if patient_path == "pk" else f"{patient_path}_id": patient_id})
    return qs.filter(condition)
