"""Admin screens for opioid conflict flags, the safety gate's log and clinician tasks (imported by
patients.admin). All read-only: a flag is acknowledged, overridden or resolved, and a task closed, from the
clinic pages through patients.services (who may, OPI-W2, the washout date, LAB-2's prescriber review)."""

from django.contrib import admin, messages
from django.utils.html import format_html

from ldnclinic.admin import ReadOnlyAdmin, ReadOnlyInline

from .flag_models import ClinicianTask, ConflictFlag, FlagStatus, SafetyGateEvent

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

# The acknowledgement or override, OPI-W2 shortening and tests, as recorded by patients.services.
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


@admin.register(ConflictFlag)
class ConflictFlagAdmin(ReadOnlyAdmin):
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


class OpenFlagInline(ReadOnlyInline):
    model = ConflictFlag
    fk_name = "patient"
    fields = ["badge", "medication_text", "status", "earliest_safe_start", "earliest_start_note"]
    readonly_fields = fields
    verbose_name_plural = "opioid flags"

    @admin.display(description="flag")
    def badge(self, obj):
        return flag_badge(obj)


@admin.register(SafetyGateEvent)
class SafetyGateEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "patient", "action", "outcome", "actor", "reason"]
    list_filter = ["outcome", "action"]
    list_select_related = ["patient", "actor"]
    readonly_fields = ["patient", "action", "outcome", "flags", "summary", "reason", "actor", "created_at"]


@admin.register(ClinicianTask)
class ClinicianTaskAdmin(ReadOnlyAdmin):
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
    readonly_fields = fields
