"""Admin forms that put LDN actions through the opioid gate (patients.services.opioid_gate).

Making a prescription active, starting a plan, or making a later step active are the actions an open
conflict blocks; a prescriber may proceed by writing an override reason. Both the block and the
override are recorded as SafetyGateEvents.
"""

from django import forms
from django.core.exceptions import ValidationError

from patients.flag_models import GateAction
from patients.services import ConflictBlocked

from . import services

OVERRIDE_HELP = "Prescribers only: why proceed although the patient has open opioid flags (kept in the record)."


def _run_gate(user, patient, action: str, override_reason: str) -> None:
    try:
        services.gate(actor=user, patient=patient, action=action, override_reason=override_reason)
    except ConflictBlocked as exc:
        raise ValidationError(exc.message) from None


class GatedForm(forms.ModelForm):
    override_reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text=OVERRIDE_HELP)
    gate_action: str = ""
    request_user = None

    def becomes_active(self, data) -> bool:
        return data.get("status") == "active" and (
            self.instance._state.adding or self.initial.get("status") != "active"
        )

    def clean(self):
        data = super().clean()
        patient = data.get("patient") or getattr(self.instance, "patient", None)
        if not self.errors and patient is not None and self.becomes_active(data):
            _run_gate(self.request_user, patient, self.gate_action, data.get("override_reason", ""))
        return data


class PrescriptionForm(GatedForm):
    gate_action = GateAction.ACTIVATE_PRESCRIPTION


class PlanForm(GatedForm):
    gate_action = GateAction.START_PLAN


class StepFormSet(forms.BaseInlineFormSet):
    """A later step made active is a step-up (domain.md 1.3 condition 2: no open opioid conflict)."""

    request_user = None

    def clean(self):
        super().clean()
        plan = self.instance
        if plan is None or plan.pk is None or plan.status != "active":
            return
        first_sequence = min((f.cleaned_data.get("sequence") or 0 for f in self.forms if f.cleaned_data), default=0)
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            stepping_up = (
                data.get("status") == "active"
                and form.initial.get("status") != "active"
                and (data.get("sequence") or 0) > first_sequence
            )
            if stepping_up:
                _run_gate(self.request_user, plan.patient, GateAction.STEP_UP, self.data.get("override_reason", ""))
                return
