"""The weekly check-in (PRO-1) and its condition modules (PRO-2, PRO-3) as a plain form: works without
JavaScript, every field labelled."""

import uuid
from collections.abc import Collection
from dataclasses import dataclass

from django import forms

from . import instruments, services
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

    def __init__(self, *args, modules: Collection[str] = (), **kwargs):
        """``modules``: the instruments to ask besides PRO-1, decided by the server (never by the browser)."""
        super().__init__(*args, **kwargs)
        self.module_keys = tuple(modules)
        self.module_errors: dict[str, list[str]] = {}
        self._scored: dict[str, services.ScoredModule] = {}
        for instrument in self.module_keys:
            self.fields.update(module_fields(instrument))
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
        for instrument in self.module_keys:
            self._clean_module(instrument, data)
        return data

    def _clean_module(self, instrument: str, data: dict) -> None:
        names = [name for section in MODULES[instrument].sections for name in section.fields]
        if any(name in self.errors for name in names):
            return  # a field already says what is wrong (out of range, required)
        if instrument == instruments.HBI:
            answers = {
                "well_being": data["hbi_well_being"],
                "abdominal_pain": data["hbi_abdominal_pain"],
                "liquid_stools": data["hbi_liquid_stools"],
                "abdominal_mass": None,  # clinician-examined: not asked, stored NULL, score partial (PRO-2)
                "complications": data.get("hbi_complications") or [],
            }
        elif instrument == instruments.PGIC:
            answers = {"pgic": data["pgic"]}
        else:  # MFIS, FIQR: blanks go to the scoring function, which decides what it can score
            answers = {"items": [data.get(name) for name in names]}
        try:
            self._scored[instrument] = services.score_module(instrument, answers)
        except ValueError as exc:
            self.module_errors.setdefault(instrument, []).append(str(exc))
            blocking = _blocking_blanks(instrument, names, answers)
            for name in blocking:
                self.add_error(name, FIQR_PART_BLANK if instrument == instruments.FIQR else CHOOSE_ONE)
            if not blocking:
                self.add_error(names[0], str(exc))

    def module_answers(self) -> dict[str, dict]:
        """Each asked module's answers, as ``services.checkin_submit(modules=...)`` takes them."""
        return {instrument: scored.answers for instrument, scored in self._scored.items()}

    def module_blocks(self) -> list[dict]:
        """What the template needs to draw each module: legend, recall period, errors, sections of fields."""
        blocks = []
        for instrument in self.module_keys:
            module = MODULES[instrument]
            blocks.append(
                {
                    "key": instrument.lower(),
                    "legend": module.legend,
                    "recall": module.recall,
                    "css": module.css,
                    "template": module.template,
                    "errors": self.module_errors.get(instrument, []),
                    "sections": [
                        {"intro": section.intro, "fields": [self[name] for name in section.fields]}
                        for section in module.sections
                    ],
                    "fields": {name: self[name] for section in module.sections for name in section.fields},
                }
            )
        return blocks

    def side_effects(self) -> list[tuple[str, int, str]]:
        out = []
        for effect in SideEffect:
            severity = self.cleaned_data.get(f"effect_{effect.value}") or 0
            if severity:
                description = self.cleaned_data.get("other_effect", "") if effect == SideEffect.OTHER else ""
                out.append((effect.value, severity, description))
        return out


# --- Condition modules (PRO-2; FIQR only with a current licence, PRO-3) -------------------------------
# Which modules a form carries is decided by the server (selectors.checkin_modules_due) on GET and POST
# alike; the form only knows how to ask and check them. Item wording: MFIS (Fisk et al., MSQLI), HBI's
# patient part (Harvey & Bradshaw 1980) and PGIC (labels from instruments.PGIC_LABELS); FIQR from
# Bennett et al. 2009 (Arthritis Res Ther 11:R120, additional file), shown only while the clinic records
# a licence. BPI and PROMIS items are not bundled (copyright), so no module exists for them.
# Checked against published versions: MFIS items 1-21 and stem against the MSQLI form (cf. the
# awell-health/awell-score src/scores/mfis definition, same order and subscales); HBI parts, anchors and
# complication order against Harvey & Bradshaw as reproduced by badgut.org "Assessing IBD"; FIQR item
# order, domains and 0/10 anchors against Bennett 2009 and fiqr.info (FIQR wording here is paraphrased).

CHOOSE_ONE = "Please choose an answer."
FIQR_PART_BLANK = "Please answer at least one question in this part."
HBI_MAX_STOOLS = 50  # a bound for typing slips; the DB keeps any HBI total within 0-100

HBI_WELL_BEING = [(0, "Very well"), (1, "Slightly below par"), (2, "Poor"), (3, "Very poor"), (4, "Terrible")]
HBI_ABDOMINAL_PAIN = [(0, "None"), (1, "Mild"), (2, "Moderate"), (3, "Severe")]
# In the published index's order; the keys are instruments.HBI_COMPLICATIONS (a test keeps them equal).
HBI_COMPLICATION_LABELS = {
    "arthralgia": "Joint pain (arthralgia)",
    "uveitis": "Painful red eye with blurred vision (uveitis)",
    "erythema_nodosum": "Tender red lumps on the shins (erythema nodosum)",
    "aphthous_ulcers": "Mouth ulcers (aphthous ulcers)",
    "pyoderma_gangrenosum": "Deep skin ulcers (pyoderma gangrenosum)",
    "anal_fissure": "A tear at the back passage (anal fissure)",
    "new_fistula": "A new fistula",
    "abscess": "An abscess",
}

MFIS_CHOICES = [(0, "Never"), (1, "Rarely"), (2, "Sometimes"), (3, "Often"), (4, "Almost always")]
MFIS_STATEMENTS = (  # item 1 first; subscale membership is instruments.MFIS_PHYSICAL etc.
    "I have been less alert.",
    "I have had difficulty paying attention for long periods of time.",
    "I have been unable to think clearly.",
    "I have been clumsy and uncoordinated.",
    "I have been forgetful.",
    "I have had to pace myself in my physical activities.",
    "I have been less motivated to do anything that requires physical effort.",
    "I have been less motivated to participate in social activities.",
    "I have been limited in my ability to do things away from home.",
    "I have trouble maintaining physical effort for long periods.",
    "I have had difficulty making decisions.",
    "I have been less motivated to do anything that requires thinking.",
    "My muscles have felt weak.",
    "I have been physically uncomfortable.",
    "I have had trouble finishing tasks that require thinking.",
    "I have had difficulty organizing my thoughts when doing things at home or at work.",
    "I have been less able to complete tasks that require physical effort.",
    "My thinking has been slowed down.",
    "I have had trouble concentrating.",
    "I have limited my physical activities.",
    "I have needed to rest more often or for longer periods.",
)

FIQR_ITEMS = (  # (statement, 0 means, 10 means); items 1-9 function, 10-11 overall impact, 12-21 symptoms
    *(
        (activity, "no difficulty", "very difficult")
        for activity in (
            "Brush or comb your hair",
            "Walk continuously for 20 minutes",
            "Prepare a homemade meal",
            "Vacuum, scrub or sweep floors",
            "Lift and carry a bag full of groceries",
            "Climb one flight of stairs",
            "Change bed sheets",
            "Sit in a chair for 45 minutes",
            "Go shopping for groceries",
        )
    ),
    ("Fibromyalgia prevented me from accomplishing goals for the week", "never", "always"),
    ("I was completely overwhelmed by my fibromyalgia symptoms", "never", "always"),
    ("Your level of pain", "no pain", "unbearable pain"),
    ("Your level of energy", "lots of energy", "no energy"),
    ("Your level of stiffness", "no stiffness", "severe stiffness"),
    ("The quality of your sleep", "awoke well rested", "awoke very tired"),
    ("Your level of depression", "not depressed", "very depressed"),
    ("Your level of memory problems", "good memory", "very poor memory"),
    ("Your level of anxiety", "not anxious", "very anxious"),
    ("Your level of tenderness to touch", "no tenderness", "very tender"),
    ("Your level of balance problems", "no imbalance", "severe imbalance"),
    (
        "Your level of sensitivity to loud noises, bright lights, odours and cold",
        "no sensitivity",
        "extreme sensitivity",
    ),
)
_FIQR_DOMAINS = (  # (intro, first item, last item), sizes from instruments.FIQR_*_ITEMS
    (
        "How much did your fibromyalgia make it difficult to do each of these activities? If you did not do "
        "one in the past 7 days, rate how difficult it was the last time you did it. If you cannot do it at "
        "all, choose 10.",
        1,
        instruments.FIQR_FUNCTION_ITEMS,
    ),
    (
        "The overall impact of your fibromyalgia.",
        instruments.FIQR_FUNCTION_ITEMS + 1,
        instruments.FIQR_FUNCTION_ITEMS + instruments.FIQR_OVERALL_ITEMS,
    ),
    (
        "How strong your fibromyalgia symptoms have been.",
        instruments.FIQR_FUNCTION_ITEMS + instruments.FIQR_OVERALL_ITEMS + 1,
        instruments.FIQR_ITEMS,
    ),
)


@dataclass(frozen=True)
class Section:
    intro: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class Module:
    instrument: str
    legend: str
    recall: str
    sections: tuple[Section, ...]
    css: str = "choices"  # how _radios.html lays out the answers
    template: str = "symptoms/_module_scale.html"


MODULES = {
    instruments.HBI: Module(
        instruments.HBI,
        "Your Crohn's disease",
        "These questions are about yesterday.",
        (Section("", ("hbi_well_being", "hbi_abdominal_pain", "hbi_liquid_stools", "hbi_complications")),),
        css="stack",
        template="symptoms/_module_hbi.html",
    ),
    instruments.MFIS: Module(
        instruments.MFIS,
        "How fatigue has affected you",
        "These questions are about the past 4 weeks, not just this week.",
        (
            Section(
                "For each statement, choose how often fatigue has affected you in this way. "
                "Because of my fatigue during the past 4 weeks…",
                tuple(f"mfis_{n}" for n in range(1, instruments.MFIS_ITEMS + 1)),
            ),
        ),
    ),
    instruments.FIQR: Module(
        instruments.FIQR,
        "Your fibromyalgia",
        "These questions are about the past 7 days.",
        tuple(
            Section(intro, tuple(f"fiqr_{n}" for n in range(first, last + 1))) for intro, first, last in _FIQR_DOMAINS
        ),
        css="scale",
    ),
    instruments.PGIC: Module(
        instruments.PGIC,
        "Overall change",
        "This question is about the time since you started LDN.",
        (Section("", ("pgic",)),),
        css="stack",
    ),
}


def _choice(choices, *, label: str, required: bool = True, help_text: str = "") -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        label=label,
        help_text=help_text,
        choices=choices,
        coerce=int,
        empty_value=None,
        required=required,
        widget=forms.RadioSelect,
        error_messages={"required": CHOOSE_ONE},
    )


def module_fields(instrument: str) -> dict[str, forms.Field]:
    """The form fields that ask ``instrument``'s items."""
    if instrument == instruments.HBI:
        return {
            "hbi_well_being": _choice(HBI_WELL_BEING, label="How was your general well-being yesterday?"),
            "hbi_abdominal_pain": _choice(
                HBI_ABDOMINAL_PAIN, label="How bad was your tummy (abdominal) pain yesterday?"
            ),
            "hbi_liquid_stools": forms.IntegerField(
                # HBI counts liquid stools only; "or very soft" is the CDAI's wording, not Harvey & Bradshaw's.
                label="How many liquid (watery) stools did you have yesterday?",
                help_text="Enter 0 if none.",
                min_value=0,
                max_value=HBI_MAX_STOOLS,
                widget=forms.NumberInput(attrs={"inputmode": "numeric", "min": 0, "max": HBI_MAX_STOOLS}),
                error_messages={
                    "required": "Please enter a number (0 if none).",
                    "invalid": f"Please enter a whole number from 0 to {HBI_MAX_STOOLS}.",
                    "min_value": f"Please enter a whole number from 0 to {HBI_MAX_STOOLS}.",
                    "max_value": f"Please enter a number up to {HBI_MAX_STOOLS}, and call your clinic today.",
                },
            ),
            "hbi_complications": forms.MultipleChoiceField(
                label="Do you have any of these at the moment?",
                help_text="Tick all that apply; leave them all empty if none.",
                choices=list(HBI_COMPLICATION_LABELS.items()),
                required=False,
                widget=forms.CheckboxSelectMultiple,
            ),
        }
    if instrument == instruments.MFIS:
        return {
            f"mfis_{n}": _choice(MFIS_CHOICES, label=statement, required=False)
            for n, statement in enumerate(MFIS_STATEMENTS, start=1)
        }
    if instrument == instruments.FIQR:
        return {
            f"fiqr_{n}": _choice(SCALE, label=text, required=False, help_text=f"0 {low} … 10 {high}")
            for n, (text, low, high) in enumerate(FIQR_ITEMS, start=1)
        }
    if instrument == instruments.PGIC:
        return {
            "pgic": _choice(
                list(instruments.PGIC_LABELS.items()),
                label="Since you started LDN, how would you describe the change (if any) in your overall condition?",
            )
        }
    raise ValueError(f"{instrument} has no items in ldnclinic.")  # BPI, PROMIS: PRO-3


def _blocking_blanks(instrument: str, names: list[str], answers: dict) -> list[str]:
    """The blank items that kept ``instrument`` from being scored, to mark beside each of them."""
    items = answers.get("items")
    if items is None:
        return []
    if instrument == instruments.FIQR:  # a domain with no answered item cannot be scored (4.1 [S22])
        return [
            names[n - 1]
            for _, first, last in _FIQR_DOMAINS
            if all(v is None for v in items[first - 1 : last])
            for n in range(first, last + 1)
        ]
    return [name for name, value in zip(names, items, strict=True) if value is None]  # MFIS: every item
