from django import forms
from django.contrib import admin

from ldnclinic.admin import CLINIC_ADMIN, PRESCRIBER, ReadOnlyAdmin, ReadOnlyInline, ScopedAdmin
from patients.models import Clinic
from patients.today import clinic_today

from .instrument_models import InstrumentLicence, InstrumentScore
from .models import SideEffectReport, SymptomCheckIn


class SideEffectInline(ReadOnlyInline):
    model = SideEffectReport
    fields = ["effect", "severity", "description", "started_on"]
    readonly_fields = fields
    show_change_link = False


class InstrumentScoreInline(ReadOnlyInline):
    """The condition modules answered in this check-in (PRO-2), as the patient gave them: read-only."""

    model = InstrumentScore
    fields = ["instrument", "total", "partial", "subscores", "answers"]
    readonly_fields = fields
    show_change_link = False
    verbose_name_plural = "condition modules answered (partial = HBI without the clinician-examined abdominal mass)"


@admin.register(SymptomCheckIn)
class SymptomCheckInAdmin(ReadOnlyAdmin):
    """What the patient reported, as they reported it: read-only for every role (a side effect saved here
    would hold or step back the plan, SE-1..SE-5, with no clinician's reason)."""

    list_display = ["patient", "recorded_at", "pain", "fatigue", "sleep_quality", "mood", "opioid_use"]
    list_filter = ["opioid_use", "took_dose_as_prescribed"]
    date_hierarchy = "recorded_at"
    list_select_related = ["patient"]
    inlines = [SideEffectInline, InstrumentScoreInline]
    search_fields = ["patient__mrn", "patient__last_name"]


@admin.register(InstrumentScore)
class InstrumentScoreAdmin(ReadOnlyAdmin):
    """Scores come only from patients' check-ins (symptoms.services.checkin_submit): nobody adds or edits one."""

    list_display = ["recorded_at", "patient", "instrument", "total", "partial"]
    list_filter = ["instrument", "partial"]
    list_select_related = ["patient"]
    date_hierarchy = "recorded_at"
    search_fields = ["patient__mrn", "patient__last_name"]
    fields = ["patient", "checkin", "instrument", "recorded_at", "total", "partial", "subscores", "answers"]
    readonly_fields = fields


# --- PRO-3: the clinic's licences for instruments that need one ----------------------------------------

LICENCE_WRITERS = frozenset({CLINIC_ADMIN, PRESCRIBER})
LICENCE_HELP = (
    "A current licence (valid today and not archived) switches the instrument on for this clinic's patients "
    "(PRO-3); an expired or archived one switches it off. FIQR: ldnclinic includes its questions, and "
    "patients with fibromyalgia are asked them every 4 weeks while the licence is current. BPI and PROMIS: "
    "ldnclinic includes none of their questions (they are copyrighted), so recording a BPI or PROMIS licence "
    "shows patients nothing in the check-in; it only records the permission."
)


class InstrumentLicenceForm(forms.ModelForm):
    # The model's clinic is not editable (ClinicOwned): it is chosen here, among the clinics where the user
    # may record licences, and set on the instance before validation.
    clinic = forms.ModelChoiceField(queryset=Clinic.objects.none(), help_text="The clinic that holds the licence.")

    class Meta:
        model = InstrumentLicence
        fields = ["instrument", "scope", "holder", "reference", "valid_from", "valid_until", "notes"]
        help_texts = {"instrument": LICENCE_HELP}

    def clean(self):
        data = super().clean()
        if "clinic" in self.fields and data.get("clinic") is not None:
            self.instance.clinic = data["clinic"]
        clinic_id, instrument = self.instance.clinic_id, data.get("instrument")
        if clinic_id and instrument:
            taken = InstrumentLicence.objects.filter(clinic_id=clinic_id, instrument=instrument)
            if taken.exclude(pk=self.instance.pk).exists():
                self.add_error(
                    "instrument", "This clinic already has this instrument's licence recorded: change that one."
                )
        return data


@admin.register(InstrumentLicence)
class InstrumentLicenceAdmin(ScopedAdmin):
    form = InstrumentLicenceForm
    exclude = ["clinic"]  # the model field (not editable); the form's own "clinic" choice stands in for it
    write_roles = LICENCE_WRITERS
    list_display = ["instrument", "clinic", "scope", "reference", "valid_from", "valid_until", "current", "recorded_by"]
    list_filter = ["instrument", "scope"]
    list_select_related = ["clinic", "recorded_by"]

    def _licence_clinics(self, request):
        if request.user.is_superuser:
            return Clinic.objects.all()
        return Clinic.objects.filter(
            memberships__user=request.user, memberships__is_active=True, memberships__role__in=self.write_roles
        ).distinct()

    def has_change_permission(self, request, obj=None) -> bool:
        # The role must be held in the licence's own clinic, not just in some clinic.
        if not super().has_change_permission(request, obj):
            return False
        return obj is None or self._licence_clinics(request).filter(pk=obj.clinic_id).exists()

    def get_fieldsets(self, request, obj=None):
        fields = ["clinic", "instrument", "scope", "holder", "reference", "valid_from", "valid_until", "notes"]
        if obj is not None:
            fields.append("recorded_by")
        return [(None, {"fields": fields, "description": LICENCE_HELP})]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))  # all of them on a history page
        return [*fields, "clinic", "recorded_by"] if obj is not None else fields

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if "clinic" in form.base_fields:
            clinics = self._licence_clinics(request)
            form.base_fields["clinic"].queryset = clinics
            if len(clinics) == 1:
                form.base_fields["clinic"].initial = clinics[0].pk
        return form

    def save_model(self, request, obj, form, change):
        obj.recorded_by = request.user  # who recorded the terms as they now stand; history keeps earlier ones
        super().save_model(request, obj, form, change)

    @admin.display(boolean=True, description="current today")
    def current(self, obj) -> bool:
        return obj.is_current(clinic_today(obj.clinic))  # the clinic's day
