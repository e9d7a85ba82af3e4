import datetime as dt

from django.contrib import admin
from django.template.loader import render_to_string
from django.utils.html import format_html, format_html_join

from ldnclinic.admin import CLINIC_ADMIN, NURSE, PRESCRIBER, ReadOnlyAdmin, ReadOnlyInline, ScopedAdmin
from patients import services as patient_services
from patients.flag_admin import announce_flags
from symptoms import lab_context, outcomes, selectors

from . import content, rules
from .efficacy import efficacy_messages
from .models import (
    CompoundedPrescription,
    Pharmacy,
    ProtocolStep,
    Reminder,
    TitrationPlan,
    TitrationProtocol,
    TitrationStep,
)


@admin.register(Pharmacy)
class PharmacyAdmin(ScopedAdmin):
    write_roles = frozenset({PRESCRIBER, NURSE, CLINIC_ADMIN})
    list_display = ["name", "phone", "fax", "email", "clinic"]
    search_fields = ["name"]


@admin.register(CompoundedPrescription)
class CompoundedPrescriptionAdmin(ReadOnlyAdmin):
    """Read-only: prescriptions are written, activated, completed and cancelled from the clinic pages
    (titration.services, through the opioid gate and RX-1/RX-2)."""

    list_display = ["patient", "__str__", "quantity", "quantity_unit", "days_supply", "status", "written_on"]
    list_filter = ["status", "form"]
    list_select_related = ["patient", "pharmacy"]
    search_fields = ["patient__mrn", "patient__last_name"]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        rx = self.get_object(request, object_id)
        if rx is not None:  # open conflicts shown loudly wherever the patient's LDN is opened
            announce_flags(request, rx.patient.conflict_flags.all())
        return super().change_view(request, object_id, form_url, extra_context)


class ProtocolStepInline(admin.TabularInline):
    model = ProtocolStep
    extra = 0

    def has_add_permission(self, request, obj=None):
        return request.user.is_superuser

    has_change_permission = has_delete_permission = has_add_permission

    def has_view_permission(self, request, obj=None):
        return True


@admin.register(TitrationProtocol)
class TitrationProtocolAdmin(ScopedAdmin):
    """Templates are shared by every clinic; only the platform operator edits them."""

    write_roles = frozenset()
    list_display = ["key", "name", "source", "is_active"]
    inlines = [ProtocolStepInline]

    def get_queryset(self, request):
        return TitrationProtocol.objects.all() if self._is_member(request) else TitrationProtocol.objects.none()


class StepInline(ReadOnlyInline):
    """The plan's steps as they stand (hold, step back, step up, skip and custom dose are actions on the
    clinic's plan page, titration.services)."""

    model = TitrationStep
    fields = ["sequence", "dose_mg", "patient_measures", "planned_start", "min_days", "actual_start", "status", "note"]
    readonly_fields = fields
    show_change_link = False

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        self._rx = content.active_prescription(obj) if obj is not None else None
        return formset

    @admin.display(description="the patient measures")
    def patient_measures(self, step):
        if not step.pk:
            return "-"
        amount = content.measured(step.dose_mg, getattr(self, "_rx", None))
        return amount.text if amount else "not from the active prescription (RX-2)"


# --- Response to LDN (BASE-1, RESP-1..RESP-7) and the efficacy review (EFF-1, EFF-2) ----------------------------

RESPONSE_PANEL = "response_to_ldn"


def response_column(outcome: outcomes.PatientOutcome, today: dt.date) -> str:
    """The list column: the pain grade and change, provisional before week 12, and an EFF-2 flag."""
    flagged = rules.efficacy_flag(outcome.maintenance_started, today, outcome.responder) is not None
    return f"{outcome.summary}, EFF-2: review" if flagged else outcome.summary


# --- LAB-1: baseline ESR next to the pain response ------------------------------------------------------------


def lab1_panel(outcome: outcomes.PatientOutcome, esr: lab_context.EsrContext):
    """The pain response and the ESR context side by side, above the rest of the panel; all escaped."""
    pain = outcome.summary if outcome.summary != "—" else "not available yet (see the table below)"
    esr_lines = [(text,) for text in (esr.baseline_text, esr.week_12_text) if text]
    return format_html(
        '<div class="ldn-lab1"><h3>Pain response and baseline ESR (LAB-1)</h3>'
        '<ul><li><strong>Pain response (RESP-1):</strong> {}</li>{}</ul><p class="help">{}</p></div>',
        pain,
        format_html_join("", "<li>{}</li>", esr_lines),
        "Context, not a responder criterion: in the fibromyalgia pilot (Younger and Mackey 2009), baseline ESR "
        "explained most of the variance in response, higher ESR with greater symptom reduction.",
    )


@admin.register(TitrationPlan)
class TitrationPlanAdmin(ReadOnlyAdmin):
    """Read-only: plans are made from a protocol (with a preview), started, held, resumed, stepped and
    ended from the clinic pages (titration.services, which apply 1.3 and the opioid gate)."""

    list_display = [
        "patient",
        "protocol",
        "target_dose_mg",
        "start_date",
        "status",
        "current_dose",
        "hold_reason",
        "ldn_response",
    ]
    list_filter = ["status", "protocol"]
    list_select_related = ["patient", "protocol"]
    inlines = [StepInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("steps")

    def _current(self, plan):
        live = [s for s in plan.steps.all() if s.deleted_at is None and s.status in ("active", "held")]
        return max(live, key=lambda s: s.sequence, default=None)

    @admin.display(description="current dose")
    def current_dose(self, plan):
        step = self._current(plan)
        return f"{content.fmt_mg(step.dose_mg)} ({step.get_status_display().lower()})" if step else "-"

    @admin.display(description="why held or stepped back")
    def hold_reason(self, plan):
        step = self._current(plan)
        return step.note if step else ""  # a held step's reason, or the step-back that made this step

    def get_changelist_instance(self, request):
        # One bulk read for the page's patients (RESP-1..RESP-7), kept on the plan rows themselves: the
        # ModelAdmin is shared between requests, the rows are not.
        changelist = super().get_changelist_instance(request)
        plans = list(changelist.result_list)  # evaluates the page once; the list template reuses these rows
        if plans:
            patients = {plan.patient_id: plan.patient for plan in plans}
            dates = content.treatment_dates_for(list(patients))
            found = outcomes.outcomes_on_own_dates(patients.values(), dates=dates)
            for plan in plans:
                plan._ldn_outcome, plan._ldn_today = found[plan.patient_id]
        return changelist

    @admin.display(description="response")
    def ldn_response(self, plan):
        outcome = getattr(plan, "_ldn_outcome", None)
        today = getattr(plan, "_ldn_today", None) or patient_services.patient_today(plan.patient)
        if outcome is None:  # a row not read through the changelist: read it on its own
            outcome = outcomes.patient_outcome(plan.patient, today=today)
        return response_column(outcome, today)

    @admin.display(description="Response to LDN")
    def response_to_ldn(self, plan):
        if plan is None or plan.pk is None:
            return "-"
        today = patient_services.patient_today(plan.patient)
        outcome = outcomes.patient_outcome(plan.patient, today=today)
        esr = lab_context.esr_context(
            selectors.esr_results_for([plan.patient])[plan.patient_id], first_dose=outcome.first_dose, today=today
        )
        context = {"outcome": outcome, "efficacy": efficacy_messages(outcome, today)}
        panel = render_to_string("admin/titration/titrationplan/response_panel.html", context)
        return format_html("{}{}", lab1_panel(outcome, esr), panel)

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and RESPONSE_PANEL not in fields:
            fields.append(RESPONSE_PANEL)
        return fields

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        rest = [
            (name, {**opts, "fields": [f for f in opts["fields"] if f != RESPONSE_PANEL]}) for name, opts in fieldsets
        ]
        description = "Read only: baseline, change and responder status from the patient's check-ins (domain.md 4)."
        return [*rest, ("Response to LDN", {"fields": [RESPONSE_PANEL], "description": description})]


@admin.register(Reminder)
class ReminderAdmin(ReadOnlyAdmin):
    """The outbox as the clinic sees it: what went, what is waiting, and what failed (and why)."""

    list_display = ["due_at", "patient", "kind", "channel", "status", "attempts", "last_error"]
    list_filter = ["status", "kind", "channel"]
    list_select_related = ["patient"]
    search_fields = ["patient__mrn", "patient__last_name"]
    readonly_fields = [f.name for f in Reminder._meta.fields if f.name not in {"id", "clinic"}]
