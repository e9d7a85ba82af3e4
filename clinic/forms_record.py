"""Forms of the patient record pages. They check shapes only (a date is a date); the services in
patients/record.py and patients/services.py decide what is allowed, and their ``ValidationError``
comes back beside the field through ``RecordForm.apply``. No form writes anything."""

import json
import zoneinfo

from django import forms
from django.core.exceptions import ValidationError
from django.urls import reverse

from patients import services
from patients.flag_models import AcknowledgeReason, TaskStatus, TestResult
from patients.models import (
    Condition,
    DoseTime,
    LabTest,
    MedicationSource,
    PatientStatus,
    Release,
    Route,
    ScreenResult,
    Sex,
)
from symptoms.preference_views import ReminderPreferencesForm  # noqa: F401 - one form for staff and patients

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
TEXT = forms.Textarea(attrs={"rows": 3})
ZONES = sorted(zoneinfo.available_timezones() - {"localtime", "Factory"})
# A clinician enters what the patient or their records say; a lab result and a check-in add their own.
SOURCE_CHOICES = [(v, label) for v, label in MedicationSource.choices if v not in ("lab", "check_in")]
# A flag is resolved by hand only when its medication was entered in error (services.flag_resolve); a
# medicine the patient really took waits for its washout, or is acknowledged.
RESOLVE_CHOICES = [(reason, AcknowledgeReason(reason).label) for reason in services.RESOLVE_REASONS]
# "Active" (on LDN) comes only from starting a plan (services.patient_set_status).
STATUS_CHOICES = [(value, label) for value, label in PatientStatus.choices if value in services.MANUAL_STATUSES]


class RecordForm(forms.Form):
    def apply(self, exc: ValidationError) -> None:
        """A service's refusal beside the field it names (at the top when it names none)."""
        if hasattr(exc, "error_dict"):
            for field, errors in exc.message_dict.items():
                for error in errors:
                    self.add_error(field if field in self.fields else None, error)
        else:
            for error in exc.messages:
                self.add_error(None, error)


class PatientForm(RecordForm):
    mrn = forms.CharField(label="MRN", max_length=40)
    first_name = forms.CharField(max_length=100)
    last_name = forms.CharField(max_length=100)
    date_of_birth = forms.DateField(widget=DATE)
    sex = forms.ChoiceField(choices=Sex.choices, initial=Sex.UNKNOWN)
    email = forms.EmailField(required=False, help_text="For reminders and the patient portal.")
    mobile = forms.CharField(
        required=False, max_length=32, help_text="For text reminders, for example +44 7700 900123."
    )
    address = forms.CharField(
        required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 3}), help_text="Printed on prescriptions."
    )
    time_zone = forms.ChoiceField(choices=[(z, z) for z in ZONES], initial="Europe/London")
    dose_time = forms.ChoiceField(label="Dose time", choices=DoseTime.choices, initial=DoseTime.BEDTIME)


class NewPatientForm(PatientForm):
    conditions = forms.MultipleChoiceField(
        choices=Condition.choices, required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, clinics=(), **kwargs):
        super().__init__(*args, **kwargs)
        clinics = list(clinics)
        if len(clinics) > 1:  # only the clinics where the user may add patients
            self.fields["clinic"] = forms.TypedChoiceField(
                choices=[(c.pk, c.name) for c in clinics], coerce=int, label="Clinic"
            )
            self.order_fields(["clinic"])


class MedicationForm(RecordForm):
    name = forms.CharField(
        label="Medicine", max_length=200, help_text="As written on the box or the records, for example 'Norco 5/325'."
    )
    dose = forms.CharField(max_length=100, required=False)
    route = forms.ChoiceField(choices=Route.choices, initial=Route.ORAL)
    release = forms.ChoiceField(choices=Release.choices, initial=Release.UNKNOWN)
    start_date = forms.DateField(required=False, widget=DATE)
    last_dose_date = forms.DateField(
        label="Last dose", required=False, widget=DATE, help_text="The washout counts from the last dose (OPI-W1)."
    )
    source = forms.ChoiceField(choices=SOURCE_CHOICES, initial=MedicationSource.CLINICIAN)
    notes = forms.CharField(max_length=500, required=False)

    def __init__(self, *args, patient_id: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        # The opioid check as you type (htmx): the name, and the fields that change the washout.
        self.check_id = f"{self.prefix}-check" if self.prefix else "med-check"
        self.check = None  # the opioid check's answer for what was typed, when the page shows it
        values = {"prefix": self.prefix} if self.prefix else {}
        if patient_id:
            values["patient"] = str(patient_id)
        live = {
            "hx-get": reverse("clinic:medication-check"),
            "hx-target": f"#{self.check_id}",
            "hx-include": "closest .med-fields",
            "hx-vals": json.dumps(values),
            "hx-sync": "closest .med-fields:replace",
        }
        self.fields["name"].widget.attrs.update(
            live, **{"hx-trigger": "input changed delay:300ms", "autocomplete": "off"}
        )
        for name in ("route", "release", "last_dose_date"):
            self.fields[name].widget.attrs.update(live, **{"hx-trigger": "change"})

    def clean(self):
        data = super().clean()
        start, last = data.get("start_date"), data.get("last_dose_date")
        if start and last and last < start:
            self.add_error("last_dose_date", "The last dose cannot be before the start date.")
        return data


class BaseMedicationFormSet(forms.BaseFormSet):
    def rows(self) -> list[dict]:
        """The filled-in rows, in order (an untouched extra row is skipped)."""
        return [form.cleaned_data for form in self.forms if form.has_changed() and form.cleaned_data]


MedicationFormSet = forms.formset_factory(
    MedicationForm, formset=BaseMedicationFormSet, extra=1, max_num=30, validate_max=True
)


class ConditionForm(RecordForm):
    condition = forms.ChoiceField(choices=Condition.choices)
    diagnosed_on = forms.DateField(required=False, widget=DATE)
    notes = forms.CharField(max_length=500, required=False)


class ArchiveForm(RecordForm):
    reason = forms.CharField(
        label="Reason", max_length=300, help_text="Kept in the record, for example 'stopped in 2024'."
    )


class LabForm(RecordForm):
    test = forms.ChoiceField(choices=LabTest.choices)
    test_name = forms.CharField(label="Test name (for 'Other')", max_length=100, required=False)
    value = forms.DecimalField(max_digits=10, decimal_places=3, required=False)
    unit = forms.CharField(max_length=20, required=False, help_text="As the lab reports it: U/L, mm/h, mg/L.")
    result = forms.ChoiceField(
        label="Screen result",
        choices=[("", "—"), *ScreenResult.choices],
        required=False,
        help_text="Urine drug screen only.",
    )
    ref_low = forms.DecimalField(label="Reference range: low", max_digits=10, decimal_places=3, required=False)
    ref_high = forms.DecimalField(
        label="Reference range: high (ULN)",
        max_digits=10,
        decimal_places=3,
        required=False,
        help_text="The lab's upper limit of normal: LAB-2 compares ALT and AST with it.",
    )
    collected_at = forms.DateTimeField(label="Collected at", widget=DATETIME, help_text="In the patient's time zone.")
    lab_source = forms.CharField(label="Lab", max_length=200, required=False)


class StatusForm(RecordForm):
    status = forms.ChoiceField(
        choices=STATUS_CHOICES, help_text="A patient becomes active (on LDN) when their titration plan is started."
    )
    reason = forms.CharField(widget=TEXT, required=False, help_text="Kept in the record.")


class AcknowledgeForm(RecordForm):
    reason = forms.ChoiceField(choices=[("", "Choose a reason"), *AcknowledgeReason.choices])
    note = forms.CharField(widget=TEXT, required=False, help_text="Required for 'Other'.")
    expires_at = forms.DateTimeField(
        label="Acknowledgement expires", widget=DATETIME, required=False, help_text="The flag reopens then."
    )
    shortened_washout_days = forms.IntegerField(
        label="Shorten the washout to (days)",
        required=False,
        min_value=0,
        help_text="Prescribers only; never under 7 days, with a reason (OPI-W2).",
    )
    shortened_reason = forms.CharField(label="Reason for shortening", max_length=300, required=False)
    uds_result = forms.ChoiceField(label="Urine drug screen", choices=TestResult.choices, required=False)
    naloxone_challenge = forms.ChoiceField(label="Naloxone challenge", choices=TestResult.choices, required=False)

    def __init__(self, *args, prescriber: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not prescriber:
            del self.fields["shortened_washout_days"], self.fields["shortened_reason"]


class OverrideForm(RecordForm):
    note = forms.CharField(label="Why override", widget=TEXT, help_text="Kept in the record; the conflict stays on it.")
    expires_at = forms.DateTimeField(label="Override expires", widget=DATETIME, required=False)


class ResolveForm(RecordForm):
    reason = forms.ChoiceField(choices=RESOLVE_CHOICES, help_text="The medication is archived from the list.")
    note = forms.CharField(widget=TEXT, required=False)


class TaskCloseForm(RecordForm):
    status = forms.ChoiceField(
        label="Close as",
        choices=[(TaskStatus.DONE, "Done"), (TaskStatus.CANCELLED, "Cancelled")],
        initial=TaskStatus.DONE,
    )
    note = forms.CharField(widget=TEXT, required=False, help_text="What was done (required to close a liver review).")
