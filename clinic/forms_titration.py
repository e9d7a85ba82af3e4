"""Forms of the prescription and plan pages. They validate what was typed and hand it to a service; they
never write (a ModelForm here skips the model's own validation: the service runs it, once, and its errors
come back beside the fields through ``add_service_errors``).

Every choice list is scoped to the patient: their clinic's pharmacies, their own prescriptions, each
named so that no two entries read alike.
"""

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from titration import content, rules, supply
from titration.models import (
    CompoundedPrescription,
    Pharmacy,
    PrescriptionStatus,
    StepStatus,
    TitrationProtocol,
)

OVERRIDE_HELP = "Prescribers only: why go ahead although the rules say no. It is kept in the record."


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%d")


class ServiceErrorsMixin:
    def add_service_errors(self, exc: ValidationError) -> None:
        """A service's ValidationError beside the fields it names (at the top for anything else)."""
        if hasattr(exc, "error_dict"):
            for field, messages in exc.message_dict.items():
                target = field if field in self.fields and field != NON_FIELD_ERRORS else None
                for message in messages:
                    self.add_error(target, message)
        else:
            for message in exc.messages:
                self.add_error(None, message)


def rx_label(rx: CompoundedPrescription) -> str:
    """One prescription, told apart from the patient's others: "Rx 12: 1.5 mg capsules x 30, written 5 Jan 2026
    (active)" rather than seventeen "LDN 1.000 mg/mL" entries."""
    formulation = content.formulation(rx)
    if formulation is not None:
        what = supply.describe(formulation)
    else:
        what = f"{rules.fmt_mg(rx.strength_value)} {rx.strength_unit} {rx.get_form_display().lower()}"
    quantity = f"{rules.fmt_mg(rx.quantity).removesuffix('.0')} {rx.quantity_unit}"
    return f"Rx {rx.pk}: {what} x {quantity}, written {rx.written_on:%d %b %Y} ({rx.get_status_display().lower()})"


# --- Prescriptions ----------------------------------------------------------------------------------------


class PrescriptionForm(ServiceErrorsMixin, forms.ModelForm):
    for_dose_mg = forms.DecimalField(
        label="Reckon the days supply at (mg a day)",
        required=False,
        max_digits=5,
        decimal_places=3,
        help_text="Leave empty to follow the patient's plan, or their current dose.",
        widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
    )

    class Meta:
        model = CompoundedPrescription
        fields = [
            "pharmacy",
            "form",
            "strength_value",
            "strength_unit",
            "release",
            "filler",
            "filler_other",
            "quantity",
            "quantity_unit",
            "days_supply",
            "refills",
            "sig",
            "written_on",
            "start_on",
        ]
        labels = {
            "strength_value": "Strength",
            "strength_unit": "Strength unit",
            "release": "Release",
            "filler_other": "Other filler (name it)",
            "days_supply": "Days supply (typed)",
            "start_on": "Start on",
        }
        help_texts = {
            "release": "LDN is compounded as immediate release only (RX-1).",
            "days_supply": "Computed from quantity, strength and dose when you save (RX-2); a typed value is checked.",
        }
        widgets = {
            "written_on": DateInput(),
            "start_on": DateInput(),
            "release": forms.RadioSelect,
            "sig": forms.Textarea(attrs={"rows": 2}),
            "strength_value": forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
            "quantity": forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
        }

    def __init__(self, *args, patient, **kwargs):
        super().__init__(*args, **kwargs)
        self.patient = patient
        pharmacy = self.fields["pharmacy"]
        pharmacy.queryset = Pharmacy.objects.filter(clinic_id=patient.clinic_id).order_by("name")
        pharmacy.empty_label = "Choose the compounding pharmacy"
        self.fields["days_supply"].required = False
        self.fields["filler_other"].required = False

    def _post_clean(self):
        """No model validation here: titration.prescribing.prescription_create runs it (with RX-2)."""

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {name: data.get(name) for name in [*self.Meta.fields, "for_dose_mg"]} | {
            "filler_other": data.get("filler_other") or "",
            "refills": data.get("refills") or 0,
        }


class PrescriptionActivateForm(ServiceErrorsMixin, forms.Form):
    override_reason = forms.CharField(
        label="Override reason", required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text=OVERRIDE_HELP
    )
    overridable = True


class ReasonForm(ServiceErrorsMixin, forms.Form):
    reason = forms.CharField(label="Reason", max_length=500, widget=forms.Textarea(attrs={"rows": 2}))
    overridable = False


# --- Plans --------------------------------------------------------------------------------------------------

_STEP_LINE = re.compile(r"^\s*(?P<dose>[0-9]*\.?[0-9]+)\s*(?:mg)?\s*(?:[,;x×]?\s*(?P<days>[0-9]+)\s*(?:d|days?)?)?\s*$")


def parse_custom_steps(text: str) -> list[rules.StepSpec]:
    """One step per line: "1.5" or "1.5 7" or "1.5 mg, 7 days" (days default 7). Errors name the line."""
    steps, problems = [], []
    for n, line in enumerate((ln for ln in text.splitlines() if ln.strip()), 1):
        match = _STEP_LINE.match(line)
        if not match:
            problems.append(f'Line {n} "{line.strip()}": write the dose in mg, then the days (e.g. "1.5 7").')
            continue
        try:
            dose = Decimal(match["dose"])
        except InvalidOperation:
            problems.append(f"Line {n}: {match['dose']} is not a dose in mg.")
            continue
        steps.append(rules.StepSpec(dose, int(match["days"] or rules.MIN_DAYS_DEFAULT)))
    if problems:
        raise ValidationError(problems)
    return steps


class PlanForm(ServiceErrorsMixin, forms.Form):
    protocol = forms.ModelChoiceField(
        queryset=TitrationProtocol.objects.none(),
        required=False,
        empty_label="Custom steps (below)",
        help_text="A protocol template (domain.md 1.2), or leave it on custom steps and write them below.",
    )
    custom_steps = forms.CharField(
        label="Custom steps",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text='One step per line: the dose in mg, then the days at it (3 to 14, default 7), e.g. "1.5 7".',
    )
    start = forms.DateField(label="Start date", widget=DateInput())
    target_mg = forms.DecimalField(
        label="Target dose (mg)",
        required=False,
        max_digits=5,
        decimal_places=3,
        help_text="Empty: the last step's dose.",
        widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
    )
    prescription = forms.ModelChoiceField(
        queryset=CompoundedPrescription.objects.none(),
        required=False,
        empty_label="No prescription yet",
        help_text="The patient's own prescriptions; what the patient measures at each step is read from it.",
    )
    note = forms.CharField(label="Note", required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, patient, **kwargs):
        super().__init__(*args, **kwargs)
        self.patient = patient
        self.fields["protocol"].queryset = TitrationProtocol.objects.filter(is_active=True).order_by("key")
        self.fields["protocol"].label_from_instance = lambda p: f"{p.name} ({p.key})"
        rx = self.fields["prescription"]
        rx.queryset = CompoundedPrescription.objects.filter(
            patient_id=patient.pk, status__in=[PrescriptionStatus.DRAFT, PrescriptionStatus.ACTIVE]
        ).order_by("-written_on", "-pk")
        rx.label_from_instance = rx_label

    def clean_custom_steps(self):
        text = self.cleaned_data.get("custom_steps") or ""
        return parse_custom_steps(text) if text.strip() else None

    def clean(self):
        data = super().clean()
        protocol, custom = data.get("protocol"), data.get("custom_steps")
        if "custom_steps" not in self.errors:
            if protocol is None and not custom:
                self.add_error("protocol", "Choose a protocol, or write custom steps below.")
            elif protocol is not None and custom:
                self.add_error("custom_steps", "Choose a protocol or write custom steps, not both.")
        return data

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "protocol": data.get("protocol"),
            "custom_steps": data.get("custom_steps"),
            "start": data["start"],
            "target_mg": data.get("target_mg"),
            "prescription": data.get("prescription"),
        }


# --- A running plan's actions (each posts to clinic:plan-action) -------------------------------------------


def _reason(required: bool = True) -> forms.CharField:
    return forms.CharField(
        label="Reason" if required else "Reason (optional)",
        required=required,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


def _override() -> forms.CharField:
    return forms.CharField(
        label="Override reason", required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text=OVERRIDE_HELP
    )


class PlanActionForm(ServiceErrorsMixin, forms.Form):
    overridable = False

    def __init__(self, *args, plan, today: dt.date, **kwargs):
        super().__init__(*args, **kwargs)
        self.plan = plan
        for name in ("on", "start"):
            if name in self.fields:
                self.fields[name].initial = today


class StartForm(PlanActionForm):
    start = forms.DateField(label="First dose on", widget=DateInput())
    override_reason = _override()
    overridable = True


class HoldForm(PlanActionForm):
    reason = _reason()


class ResumeForm(PlanActionForm):
    reason = _reason()


class StepUpForm(PlanActionForm):
    on = forms.DateField(label="Step up on", widget=DateInput())
    override_reason = _override()
    overridable = True


class StepBackForm(PlanActionForm):
    on = forms.DateField(label="Step back on", widget=DateInput())
    reason = _reason()


class SkipForm(PlanActionForm):
    step = forms.ModelChoiceField(queryset=None, label="Step to skip", empty_label="Choose a planned step")
    reason = _reason()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["step"]
        field.queryset = self.plan.steps.filter(status=StepStatus.PLANNED).order_by("sequence")
        field.label_from_instance = lambda s: (
            f"Step {s.sequence}: {rules.fmt_mg(s.dose_mg)} mg from {s.planned_start:%d %b %Y}"
        )


class CustomDoseForm(PlanActionForm):
    dose_mg = forms.DecimalField(
        label="New dose (mg)",
        max_digits=5,
        decimal_places=3,
        widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
    )
    on = forms.DateField(label="From", widget=DateInput())
    reason = _reason()
    override_reason = _override()
    overridable = True


class CompleteForm(PlanActionForm):
    reason = _reason()


class DiscontinueForm(PlanActionForm):
    reason = _reason()
