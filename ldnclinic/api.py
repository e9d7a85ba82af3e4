"""API plumbing shared by every app: permissions (deny by default) and the v1 router."""

from rest_framework.permissions import BasePermission

from . import scoping


class IsClinicStaff(BasePermission):
    """The default permission: an authenticated, active member of at least one clinic.

    Patients and users without a membership are refused unless a view opts in to something else.
    """

    message = "This needs a clinic staff login."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        return user.is_superuser or bool(scoping.staff_clinic_ids(user))
