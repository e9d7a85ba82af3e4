from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.forms.models import BaseInlineFormSet

from ldnclinic import scoping
from ldnclinic.admin import CLINIC_ADMIN, ReadOnlyInline, ScopedAdmin, ScopedInline

from . import labs
from .flag_admin import OpenFlagInline, announce_flags
from .flag_models import ClinicianTask, TaskKind, TaskStatus
from .models import Clinic, LabResult, LabTest, MedicationStatement, Membership, Patient, PatientCondition, User


def login_choices(request, owned: Q):
    """Logins a clinic user may attach: their clinic's own (``owned``) and logins not attached to any
    clinic or patient yet (made by the operator). Never another clinic's staff or patients."""
    if request.user.is_superuser:
        return User.objects.all()
    unattached = Q(memberships__isnull=True, patient_profile__isnull=True)
    return User.objects.filter(owned | unattached).distinct()


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Logins are managed by the platform operator (superuser) only."""

    def has_module_permission(self, request):
        return request.user.is_superuser

    has_view_permission = has_add_permission = has_change_permission = has_delete_permission = (
        lambda self, request, obj=None: request.user.is_superuser
    )


@admin.register(Clinic)
class ClinicAdmin(ScopedAdmin):
    write_roles = frozenset({CLINIC_ADMIN})
    list_display = ["name", "slug", "time_zone"]
    search_fields = ["name"]

    def has_add_permission(self, request):
        return request.user.is_superuser


@admin.register(Membership)
class MembershipAdmin(ScopedAdmin):
    write_roles = frozenset({CLINIC_ADMIN})
    list_display = ["user", "clinic", "role", "is_active"]
    list_filter = ["role", "is_active"]
    autocomplete_fields = []

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":  # staff of the user's clinics; never a patient login
            owned = Q(memberships__clinic_id__in=scoping.staff_clinic_ids(request.user))
            kwargs["queryset"] = login_choices(request, owned)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ConditionFormSet(BaseInlineFormSet):
    """One row per condition: each row is checked against the record (patient_condition_once), and here
    against the other rows of the same save, which the database would refuse with no message."""

    def clean(self):
        super().clean()
        seen = set()
        for form in self.forms:
            condition = (getattr(form, "cleaned_data", None) or {}).get("condition")
            if not condition or self._should_delete_form(form):
                continue
            if condition in seen:
                label = dict(form.fields["condition"].choices).get(condition, condition)
                raise ValidationError(f"{label} is listed twice: keep one row.")
            seen.add(condition)


class ConditionInline(ScopedInline):
    model = PatientCondition
    formset = ConditionFormSet
    fields = ["condition", "diagnosed_on", "notes"]


class MedicationInline(ScopedInline):
    model = MedicationStatement
    fields = ["name", "dose", "route", "release", "start_date", "last_dose_date", "source"]


@admin.display(description="result")
def lab_result(obj: LabResult) -> str:
    return obj.shown_result


class LabInline(ReadOnlyInline):
    """The patient's labs on their page, newest first, read-only: each row's "Change" link and the page's
    "Add a lab result" button open the lab form, where saving runs LAB-2 and the screen (signals). Rows
    posted for this inline are ignored (ReadOnlyInline): a lab is never added or changed from here."""

    model = LabResult
    fields = readonly_fields = ["test_shown", lab_result, "reference_range", "collected_at", "lab_source"]
    ordering = ["-collected_at"]
    verbose_name_plural = "lab results (LAB-1, LAB-2, urine drug screen)"

    @admin.display(description="test")
    def test_shown(self, obj: LabResult) -> str:
        return obj.test_name or obj.get_test_display()


@admin.register(Patient)
class PatientAdmin(ScopedAdmin):
    # symptoms adds "Invite to patient portal" to ``actions`` at start-up (symptoms/account_admin.py; patients
    # cannot import symptoms); its button is in templates/admin/patients/patient/change_form.html.
    list_display = ["mrn", "last_name", "first_name", "date_of_birth", "status", "clinic"]
    list_filter = ["status", "conditions__condition", "dose_time"]
    search_fields = ["mrn", "last_name", "first_name", "email"]
    list_select_related = ["clinic"]
    inlines = [OpenFlagInline, ConditionInline, MedicationInline, LabInline]
    fieldsets = [
        (None, {"fields": ["clinic", "mrn", "first_name", "last_name", "date_of_birth", "sex"]}),
        ("Contact", {"fields": ["email", "mobile", "time_zone", "dose_time"]}),
        ("Status", {"fields": ["status", "discontinued_reason", "severe_hepatic_impairment"]}),
        ("Patient login", {"fields": ["user"]}),
    ]
    # The status changes through patients.services.patient_set_status (the clinic's patient page), which
    # records why; a new patient starts in screening.
    readonly_fields = ["status", "discontinued_reason"]
    raw_id_fields = ["user"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":  # patient logins of the user's clinics; never a staff login
            owned = Q(patient_profile__clinic_id__in=scoping.staff_clinic_ids(request.user))
            kwargs["queryset"] = login_choices(request, owned)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else [i for i in self.inlines if i is not OpenFlagInline]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        patient = self.get_object(request, object_id)
        if patient is not None and request.method == "GET":
            announce_flags(request, patient.conflict_flags.all())
            announce_labs(request, patient)
        return super().change_view(request, object_id, form_url, extra_context)

    def response_change(self, request, obj):
        announce_flags(request, obj.conflict_flags.all())  # medications saved inline were just checked
        announce_labs(request, obj)
        return super().response_change(request, obj)


@admin.register(MedicationStatement)
class MedicationStatementAdmin(ScopedAdmin):
    list_display = ["name", "patient", "dose", "route", "release", "last_dose_date", "source"]
    list_filter = ["route", "release", "source"]
    search_fields = ["name", "patient__mrn", "patient__last_name"]
    list_select_related = ["patient"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)  # saving runs the opioid check (patients.signals)
        announce_flags(request, obj.conflict_flags.all())


@admin.register(PatientCondition)
class PatientConditionAdmin(ScopedAdmin):
    list_display = ["patient", "condition", "diagnosed_on"]
    list_filter = ["condition"]
    list_select_related = ["patient"]


def announce_labs(request, patient: Patient) -> None:
    """LAB-2 where the patient or a lab result is opened or saved: open liver reviews (they block
    step-ups), alerts, and liver tests missing from the record."""
    for task in ClinicianTask.objects.filter(
        patient=patient, kind__in=[TaskKind.LAB_REVIEW, TaskKind.LAB_ALERT], status=TaskStatus.OPEN
    ).order_by("pk"):
        level = messages.ERROR if task.kind == TaskKind.LAB_REVIEW else messages.WARNING
        messages.add_message(request, level, f"{task.detail}. Close the task when reviewed.")
    missing = labs.liver_check(patient).missing
    if missing:
        tests = " and ".join(missing)
        messages.warning(request, f"No {tests} on file: baseline liver tests are due for every patient (LAB-2).")


@admin.register(LabResult)
class LabResultAdmin(ScopedAdmin):
    list_display = ["patient", "test", lab_result, "reference_range", "collected_at"]
    list_filter = ["test"]
    list_select_related = ["patient"]
    fields = [
        "patient",
        "test",
        "test_name",
        "value",
        "unit",
        "ref_low",
        "ref_high",
        "result",
        "collected_at",
        "lab_source",
    ]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)  # saving runs LAB-2 and the screen (patients.signals)
        announce_labs(request, obj.patient)
        if obj.test == LabTest.UDS:
            announce_flags(request, obj.patient.conflict_flags.all())
