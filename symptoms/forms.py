"""The weekly check-in (PRO-1) as a plain form: works without JavaScript, every field labelled."""

import uuid

from django import forms

from .models import NOTES_MAX_LENGTH, OpioidUse, Severity, SideEffect

NRS_QUESTIONS = {
    "pain": ("Pain over the past 7 days", "0 no pain", "10 worst pain imaginable"),
    "fatigue": ("Tiredness over the past 7 days", "0 not tired", "10 worst tiredness imaginable"),
    "sleep_quality": ("Sleep quality over the past 7 days", "0 worst sleep", "10 best sleep"),
    "mood": ("Mood over the past 7 days", "0 worst mood", "10 best mood"),
}
SCALE = [(n, str(n)) for n in range(11)]


class CheckInForm(forms.Form):
    submission_id = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)
    pain = forms.TypedChoiceField(choices=SCALE, coerce=int, widget=forms.RadioSelect)
    fatigue = forms.TypedChoiceField(choices=SCALE, coerce=int, widget=forms.RadioSelect)
    sleep_quality = forms.TypedChoiceField(choices=SCALE, coerce=int, widget=forms.RadioSelect)
    mood = forms.TypedChoiceField(choices=SCALE, coerce=int, widget=forms.RadioSelect)
    took_dose_as_prescribed = forms.TypedChoiceField(
        label="Did you take LDN as prescribed this week?",
        choices=[("yes", "Yes"), ("no", "No")],
        coerce=lambda v: v == "yes",
        widget=forms.RadioSelect,
    )
    nights_missed = forms.TypedChoiceField(
        label="How many nights did you miss?",
        choices=[(n, str(n)) for n in range(8)],
        coerce=int,
        initial=0,
        widget=forms.RadioSelect,
    )
    opioid_use = forms.ChoiceField(
        label="Since your last check-in, have you taken any opioid-containing medicine, kratom or tianeptine?",
        help_text="For example codeine, tramadol, hydrocodone, oxycodone, some cough syrups or diarrhoea medicines.",
        choices=OpioidUse.choices,
        widget=forms.RadioSelect,
    )
    other_effect = forms.CharField(label="Other side effect (what is it?)", max_length=200, required=False)
    notes = forms.CharField(
        label="Anything else for your clinic?",
        required=False,
        max_length=NOTES_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4, "maxlength": NOTES_MAX_LENGTH}),
        error_messages={"max_length": f"Please keep notes under {NOTES_MAX_LENGTH} characters."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, (label, low, high) in NRS_QUESTIONS.items():
            self.fields[name].label = label
            self.fields[name].help_text = f"{low} … {high}"
        for effect in SideEffect:
            self.fields[f"effect_{effect.value}"] = forms.TypedChoiceField(
                label=effect.label, choices=Severity.choices, coerce=int, initial=0, widget=forms.RadioSelect
            )

    def effect_fields(self):
        return [self[f"effect_{effect.value}"] for effect in SideEffect]

    def nrs_fields(self):
        return [self[name] for name in NRS_QUESTIONS]

    def clean(self):
        data = super().clean()
        if data.get(f"effect_{SideEffect.OTHER}") and not data.get("other_effect", "").strip():
            self.add_error("other_effect", "Say what the other side effect is.")
        return data

    def side_effects(self) -> list[tuple[str, int, str]]:
        out = []
        for effect in SideEffect:
            severity = self.cleaned_data.get(f"effect_{effect.value}") or 0
            if severity:
                description = self.cleaned_data.get("other_effect", "") if effect == SideEffect.OTHER else ""
                out.append((effect.value, severity, description))
        return out
