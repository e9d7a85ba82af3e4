"""The admin for prescribers' credentials and licence numbers (configuration for the printed prescription).

Kept apart from titration/admin.py and registered from TitrationConfig.ready(). A clinic admin keeps them,
for the prescribers of their own clinics only; everyone in the clinic may read them.
"""

from django.contrib import admin

from ldnclinic import scoping
from ldnclinic.admin import CLINIC_ADMIN, PRESCRIBER, ScopedAdmin

from .credential_models import PrescriberCredential


@admin.register(PrescriberCredential)
class PrescriberCredentialAdmin(ScopedAdmin):
    write_roles = frozenset({CLINIC_ADMIN})
    list_display = ["__str__", "licence_numbers", "clinic"]
    list_select_related = ["user", "clinic"]
    search_fields = ["user__last_name", "user__username", "licence_numbers"]
    fields = ["clinic", "user", "credentials", "licence_numbers"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":  # active prescribers of the user's own clinics, never another clinic's staff
            kwargs["queryset"] = (
                db_field.remote_field.model._default_manager.filter(
                    memberships__clinic_id__in=scoping.staff_clinic_ids(request.user),
                    memberships__role=PRESCRIBER,
                    memberships__is_active=True,
                )
                .distinct()
                .order_by("last_name", "username")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        obj._change_reason = "credentials changed" if change else "credentials added"
        super().save_model(request, obj, form, change)
