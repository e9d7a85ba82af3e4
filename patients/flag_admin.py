"""Admin screens for opioid conflict flags and the safety gate's log (imported by patients.admin)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from django.utils.html import format_html

from ldnclinic.admin import CLINICAL_WRITERS, ScopedAdmin, ScopedInline, clinic_roles

from . import services
from .flag_models import (
    AcknowledgeReason,
    ClinicianTask,
    ConflictFlag,
    FlagStatus,
    SafetyGateEvent,
    TaskKind,
    TaskStatus,
)
from .models import Role

ENGINE_FIELDS = [
    "patient",
    "medication",
    "kind",
    "severity",
    "status",
    "medication_text",
    "ingredients",
    "evidence",
    "notes",
    "catalog_version",
    "release",
    "washout_group",
    "washout_days",
    "last_dose_date",
    "earliest_safe_start",
    "earliest_start_note",
    "acknowledged_by",
    "acknowledged_at",
    "resolved_at",
    "resolved_reason",
    "evaluated_at",
]

# What a clinician may write on a flag: the acknowledgement or override, OPI-W2 shortening and tests.
ACK_FIELDS = [
    "acknowledged_reason",
    "acknowledged_note",
    "expires_at",
    "shortened_washout_days",
    "shortened_reason",
    "uds_result",
    "naloxone_challenge",
]


def flag_badge(flag: ConflictFlag) -> str:
    return format_html('<span class="ldn-flag-{}">{}</span>', flag.severity, flag.get_kind_display())


def flag_message(flag: ConflictFlag) -> str:
    start = (
        f"earliest LDN start {flag.earliest_safe_start:%d %b %Y}"
        if flag.earliest_safe_start
        else (flag.earliest_start_note or "; ".join(flag.notes))
    )
    found = f" [{', '.join(flag.ingredients)}]" if flag.ingredients else ""
    return f"{flag.get_kind_display().upper()}: {flag.medication_text}{found} — {start}"


def announce_flags(request, flags) -> None:
    """Open flags are shown loudly wherever the patient or the medication is opened or saved."""
    for flag in flags:
        if flag.status != FlagStatus.OPEN:
            continue
        level = messages.ERROR if flag.severity == "high" else messages.WARNING
        messages.add_message(request, level, flag_message(flag))


class AcknowledgeForm(forms.ModelForm):
    class Meta:
        model = ConflictFlag
        fields = ACK_FIELDS

    def clean(self):
        data = super().clean()
        reason = data.get("acknowledged_reason")
        if not reason:
            if self.instance.status == FlagStatus.OPEN and self.has_changed():
                raise ValidationError({"acknowledged_reason": "Choose the reason for acknowledging this flag."})
            return data
        try:
            # The service checks the rules (who may acknowledge what, OPI-W2) and writes the flag.
            self.instance = services.flag_acknowledge(
                actor=self.request_user,
                flag=self.instance,
                reason=reason,
                note=data.get("acknowledged_note", ""),
                expires_at=data.get("expires_at"),
                shortened_washout_days=data.get("shortened_washout_days"),
                shortened_reason=data.get("shortened_reason", ""),
            )
        except PermissionDenied as exc:
            raise ValidationError(str(exc)) from None
        return data


@admin.register(ConflictFlag)
class ConflictFlagAdmin(ScopedAdmin):
    form = AcknowledgeForm
    write_roles = CLINICAL_WRITERS
    actions = []
    list_display = ["patient", "badge", "medication_text", "status", "earliest_safe_start", "catalog_version"]
    list_filter = ["status", "kind", "severity"]
    search_fields = ["medication_text", "patient__mrn", "patient__last_name"]
    list_select_related = ["patient"]
    readonly_fields = ENGINE_FIELDS
    fieldsets = [
        ("Finding", {"fields": ENGINE_FIELDS[:14]}),
        ("Washout (OPI-W1, OPI-W2)", {"fields": ["earliest_safe_start", "earliest_start_note"]}),
        (
            "Acknowledge or override",
            {"fields": [*ACK_FIELDS, "acknowledged_by", "acknowledged_at"]},
        ),
        ("Resolution", {"fields": ["resolved_at", "resolved_reason", "evaluated_at"]}),
    ]

    @admin.display(description="flag", ordering="kind")
    def badge(self, obj):
        return flag_badge(obj)

    def has_add_permission(self, request, *args):
        return False  # flags come from the engine, never by hand

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.request_user = request.user
        if "acknowledged_reason" in form.base_fields:  # absent on a read-only view
            form.base_fields["acknowledged_reason"].choices = [("", "---------"), *AcknowledgeReason.choices]
        return form

    def save_model(self, request, obj, form, change):
        if not form.cleaned_data.get("acknowledged_reason"):
            super().save_model(request, obj, form, change)  # test results only
        else:
            messages.success(request, f"Acknowledged: {obj.get_acknowledged_reason_display()}.")


class OpenFlagInline(ScopedInline):
    model = ConflictFlag
    fk_name = "patient"
    fields = ["badge", "medication_text", "status", "earliest_safe_start", "earliest_start_note"]
    readonly_fields = fields
    verbose_name_plural = "opioid flags"

    @admin.display(description="flag")
    def badge(self, obj):
        return flag_badge(obj)

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SafetyGateEvent)
class SafetyGateEventAdmin(ScopedAdmin):
    actions = []
    list_display = ["created_at", "patient", "action", "outcome", "actor", "reason"]
    list_filter = ["outcome", "action"]
    list_select_related = ["patient", "actor"]
    readonly_fields = ["patient", "action", "outcome", "flags", "summary", "reason", "actor", "created_at"]

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# Closing one of these lifts a block on the patient's LDN (a liver review blocks step-ups, LAB-2):
# a prescriber of the patient's clinic closes it, and says what they reviewed.
PRESCRIBER_TASKS = frozenset({TaskKind.LAB_REVIEW})


class TaskForm(forms.ModelForm):
    class Meta:
        model = ClinicianTask
        fields = ["status", "completed_note"]

    def clean(self):
        data = super().clean()
        task = self.instance
        closing = data.get("status") in (TaskStatus.DONE, TaskStatus.CANCELLED) and "status" in self.changed_data
        if closing and task.kind in PRESCRIBER_TASKS:
            if Role.PRESCRIBER not in clinic_roles(self.request.user).get(task.clinic_id, set()):
                raise ValidationError(
                    "Only a prescriber of this clinic can close this review: it lifts a step-up block."
                )
            if not (data.get("completed_note") or "").strip():
                self.add_error("completed_note", "Say what you reviewed (for example the repeat result or the plan).")
        return data


@admin.register(ClinicianTask)
class ClinicianTaskAdmin(ScopedAdmin):
    actions = []
    form = TaskForm
    list_display = ["title", "patient", "kind", "status", "due_on", "created_at"]
    list_filter = ["status", "kind"]
    list_select_related = ["patient"]
    search_fields = ["title", "patient__mrn", "patient__last_name"]
    fields = [
        "patient",
        "kind",
        "title",
        "detail",
        "due_on",
        "status",
        "completed_note",
        "completed_by",
        "completed_at",
    ]
    readonly_fields = ["patient", "kind", "title", "detail", "due_on", "completed_by", "completed_at"]

    def has_add_permission(self, request, *args):
        return False  # tasks are raised by rules

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.request = request
        return form

    def save_model(self, request, obj, form, change):
        if "status" in form.changed_data and obj.status != "open":
            obj.completed_by, obj.completed_at = request.user, timezone.now()
        super().save_model(request, obj, form, change)
