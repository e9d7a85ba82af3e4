"""The patient's reminder preferences in the portal (/me/reminders/), and the form the clinic's page
uses too (clinic/views_record.py imports it: the clinic sits above symptoms). Both call the same
service, ``patients.record.reminder_preferences_set``; saving re-plans the pending reminders."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from patients import record
from patients.models import DoseTime, Patient

from .account_views import _patient_of

TIME = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")


class ReminderPreferencesForm(forms.Form):
    reminders_by_email = forms.BooleanField(label="Reminders by email", required=False)
    reminders_by_sms = forms.BooleanField(label="Reminders by text message (SMS)", required=False)
    nightly_dose_reminders = forms.BooleanField(
        label="A reminder every night to take the dose (REM-2)",
        required=False,
        help_text="Step-up evenings always get a reminder; this adds one on the other nights.",
    )
    dose_time = forms.ChoiceField(label="Dose taken at", choices=DoseTime.choices)
    reminder_time = forms.TimeField(
        label="Reminder time",
        required=False,
        widget=TIME,
        help_text="Local time. Empty: 21:00 for a bedtime dose, 08:00 for a morning dose.",
    )
    quiet_hours_start = forms.TimeField(label="Quiet hours start", widget=TIME)
    quiet_hours_end = forms.TimeField(
        label="Quiet hours end",
        widget=TIME,
        help_text="No reminder arrives in quiet hours: one due then comes just before they start, or when they end.",
    )

    @classmethod
    def for_patient(cls, patient: Patient, data=None) -> "ReminderPreferencesForm":
        initial = {field: getattr(patient, field) for field in record.REMINDER_FIELDS}
        return cls(data, initial=initial)

    def apply(self, exc: ValidationError) -> None:
        for field, errors in exc.message_dict.items():
            for error in errors:
                self.add_error(field if field in self.fields else None, error)


def save_preferences(request, patient: Patient, form: ReminderPreferencesForm) -> bool:
    """Validate and save through the service; the form carries any refusal beside its field."""
    if not form.is_valid():
        return False
    try:
        record.reminder_preferences_set(actor=request.user, patient=patient, **form.cleaned_data)
    except ValidationError as exc:
        form.apply(exc)
        return False
    messages.success(request, "Reminder preferences saved.")
    return True


@never_cache
@login_required(login_url="portal-login")
@require_http_methods(["GET", "POST"])
def portal_reminders(request):
    """The logged-in patient's own preferences: there is no id in the address, so no one else's."""
    patient = _patient_of(request)
    form = ReminderPreferencesForm.for_patient(patient, request.POST if request.method == "POST" else None)
    if request.method == "POST" and save_preferences(request, patient, form):
        return redirect("portal-reminders")
    return render(request, "symptoms/reminder_preferences.html", {"patient": patient, "form": form})
