"""The demo clinic's cast, as plain data: staff, pharmacies, and 36 patients at every stage of LDN; each
treated patient's course as day offsets from their first dose; and what is derived from a spec with the
seeded random.Random (prescription fields, symptom scores, condition-module answers).

``manage.py seed_demo`` writes it (titration/management/commands/seed_demo.py) through the services a
clinician's pages call. Each patient is a ``Spec``: who they are, what they take, and where they are in
treatment. ``course`` turns a spec into the days things happen (step-ups, weekly check-ins and the side
effects they report), from a seeded random.Random, so that every step-up it plans passes the step-up
rule (domain.md 1.3) and the side-effect rules (SE-1..SE-5) do the rest, as they would in life:

- a mild effect after a step-up holds the step (SE-1); the next check-in that no longer reports it
  ends it, a clinician resumes the step that evening, and the next step-up waits three more days;
- a moderate effect steps the dose back (SE-2) and plans the retry of the failed dose two weeks on;
- a clinician's hold (``stage="held"``) is given with its reason and blocks step-ups until resumed.

No ORM and no clock here: a course is in days from the first dose; the command places it before today.
"""

import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from patients.models import PatientStatus, Release, Role, Route
from symptoms import instruments
from symptoms.models import Severity, SideEffect
from titration import supply
from titration.models import Filler, Form, QuantityUnit, StrengthUnit

CLINIC_NAME, CLINIC_SLUG = "Demo LDN Clinic", "demo"
DEFAULT_PASSWORD = "ldn-demo-2026"  # noqa: S105 - a published demo password, printed on every run
SEED = 2026
ZONE = "Europe/London"
STAFF = [  # username, first name, last name, role
    ("demo-prescriber", "Priya", "Raman", Role.PRESCRIBER),
    ("demo-nurse", "Tom", "Okafor", Role.NURSE),
    ("demo-admin", "Helen", "Marsh", Role.CLINIC_ADMIN),
]
# The demo prescriber's credentials and licence numbers, as a printed prescription shows them (made up:
# the NPI and DEA numbers pass their check digits; the DEA number starts with the last name's initial).
PRESCRIBER_CREDENTIALS = "MD"
LICENCES = "State medical licence MD-204718\nDEA BR4839203\nNPI 1234567893"
PATIENT_USERNAME = "demo-patient"
USERNAMES = [s[0] for s in STAFF] + [PATIENT_USERNAME]
PHARMACIES = [  # name, phone, lead time (days)
    ("Riverside Compounding Pharmacy", "020 7946 0101", 4),
    ("Apothecary Lane Compounding", "020 7946 0202", 5),
    ("Northgate Specialty Pharmacy", "020 7946 0303", 7),
]

LAB_RANGES = {"ESR": ("mm/h", 0, 20), "CRP": ("mg/L", 0, 5), "ALT": ("U/L", 7, 56), "AST": ("U/L", 10, 40)}
# Section 5 in the demo: a screening patient's positive urine drug screen (a CONFLICT on his list, beside
# his tramadol) and a titrating patient's ALT at 3.5x the upper limit (a LAB-2 alert task; step-ups go on).
LAB_FINDINGS = {("James", "Whitfield"): ("UDS", "positive", 4), ("Samuel", "Osei"): ("ALT", "196", 5)}


class Med(NamedTuple):
    name: str
    dose: str
    route: str
    release: str
    source: str
    last_dose_days_before: int | None  # before the first LDN dose, or before today while screening
    notes: str


# fmt: off
MEDS = {
    "norco": Med("Norco 5/325", "1 tablet every 6 h as needed", Route.ORAL, Release.IR, "clinician", 3, ""),
    "tramadol": Med("Tramadol HCl 50 mg", "50 mg twice daily", Route.ORAL, Release.IR, "clinician", 6, ""),
    "tylenol3": Med("Tylenol w/ Codeine #3", "1-2 tablets as needed", Route.ORAL, Release.IR, "patient", None,
                 "Patient unsure when last taken; left over from 2024."),
    "kratom": Med("kratom powder", "about 2 g twice daily", Route.ORAL, Release.UNKNOWN, "patient", 2,
               "Patient-reported; bought online."),
    "butrans": Med("Butrans 10 mcg/hr", "1 patch every 7 days", Route.TRANSDERMAL, Release.PATCH, "records", 5,
                "Last patch removed; confirm with GP records."),
    "codeine_dental": Med("Tylenol w/ Codeine #3", "1 tablet as needed", Route.ORAL, Release.IR, "patient", 24,
                       "Short course after a dental extraction."),
    "tramadol_past": Med("Tramadol HCl 50 mg", "50 mg as needed", Route.ORAL, Release.IR, "clinician", 28,
                      "Stopped four weeks before starting LDN (washout)."),
    "sertraline": Med("Sertraline 50 mg", "50 mg once daily", Route.ORAL, Release.IR, "clinician", None, ""),
    "gabapentin": Med("Gabapentin 300 mg", "300 mg three times daily", Route.ORAL, Release.IR, "clinician", None, ""),
    "pregabalin": Med("Pregabalin 75 mg", "75 mg twice daily", Route.ORAL, Release.IR, "clinician", None, ""),
    "amitriptyline": Med("Amitriptyline 10 mg", "10 mg at night", Route.ORAL, Release.IR, "clinician", None, ""),
    "levothyroxine": Med("Levothyroxine 75 mcg", "75 mcg each morning", Route.ORAL, Release.IR, "records", None, ""),
    "azathioprine": Med("Azathioprine 100 mg", "100 mg once daily", Route.ORAL, Release.IR, "records", None, ""),
    "mesalazine": Med("Mesalazine 800 mg", "800 mg three times daily", Route.ORAL, Release.ER, "records", None, ""),
    "loperamide": Med("Imodium (loperamide) 2 mg", "2 mg as needed, up to 4 a day", Route.ORAL, Release.IR, "patient",
                      None, ""),
    "baclofen": Med("Baclofen 10 mg", "10 mg three times daily", Route.ORAL, Release.IR, "clinician", None, ""),
    "vitamin_d": Med("Vitamin D3 1000 IU", "once daily", Route.ORAL, Release.IR, "patient", None, ""),
}
# fmt: on
# A "possible opioid: verify" flag the prescriber checks before the first LDN prescription (the gate
# stops at every open flag), with what they wrote.
VERIFIED = {
    "Imodium (loperamide) 2 mg": "Loperamide stays in the gut at these doses; fine alongside LDN. Avoid more than "
    "4 a day.",
}


@dataclass(frozen=True)
class Spec:
    first: str
    last: str
    sex: str
    born: int
    # screening | declined (screened, chose not to start) | new_start | titrating | held (by a clinician) |
    # stepped_back (after a moderate side effect) | target | discontinued
    stage: str
    conditions: tuple[str, ...]
    meds: tuple[str, ...] = ()
    protocol: str = ""
    step: int = 0  # the step the patient is on (or stopped on); 0 = the last step
    responder: bool = True
    effect: str = ""  # the moderate side effect that stepped the dose back (stepped_back, discontinued)
    reason: str = ""  # a clinician's hold, or why LDN was stopped
    past_hold: bool = False  # an earlier step was held for mild vivid dreams (SE-1); moved to mornings (SE-3)
    days: tuple[int, int] = ()  # days on the current step; default by stage (DAYS_ON)
    steps: tuple[tuple[str, int], ...] = ()  # a custom plan (no protocol): (dose mg, min days)
    capsule_mg: str = ""  # capsules of this strength; default by protocol (RX-1), else 1 mg/mL liquid
    note: str = ""  # the plan's note; default: the protocol's name


F, M = "female", "male"
FM, CR, MS, LC = "fibromyalgia", "crohns", "multiple_sclerosis", "long_covid"
HT, CP = "hashimotos", "chronic_pain"
HEADACHE, INSOMNIA, DREAMS = SideEffect.HEADACHE, SideEffect.INSOMNIA, SideEffect.VIVID_DREAMS
AT_REVIEW = (85, 89)  # at the target dose: week 12 reached this week, the EFF-1 review still open
REVIEWED = (92, 130)  # past week 12 on the target dose, reviewed (EFF-1)
# fmt: off
SPECS = [
    Spec("Maria", "Lopez", F, 1971, "screening", (FM, CP), ("norco", "gabapentin")),
    Spec("James", "Whitfield", M, 1966, "screening", (CP,), ("tramadol", "sertraline")),
    Spec("Aisha", "Rahman", F, 1984, "screening", (FM,), ("tylenol3", "amitriptyline")),
    Spec("Daniel", "Kowalski", M, 1979, "screening", (LC, FM), ("kratom", "vitamin_d")),
    Spec("Grace", "O'Neill", F, 1975, "screening", (MS,), ("butrans", "baclofen"), "FIXED_4_5"),
    Spec("Hannah", "Schmidt", F, 1988, "screening", (HT,), ("codeine_dental", "levothyroxine")),
    Spec("Ruth", "Ellison", F, 1960, "declined", (FM,), ("sertraline",),
         reason="Decided not to start LDN for now: worried about vivid dreams; will think again in the spring."),
    Spec("Eleanor", "Shaw", F, 1981, "new_start", (FM,), ("pregabalin",), step=1, capsule_mg="1.5",
         steps=(("1.5", 7), ("2.0", 7), ("3.0", 7), ("4.5", 7)),
         note="Custom plan: a 2.0 mg step between 1.5 and 3.0 mg, for a patient sensitive to dose changes. The "
              "1.5 mg capsules cannot make 2.0 mg: a new prescription is needed before that step (RX-3)."),
    Spec("Emily", "Carter", F, 1982, "titrating", (FM,), ("sertraline",), "SLOW_0_5", 7),
    Spec("Olivia", "Bennett", F, 1990, "titrating", (HT, FM), ("levothyroxine",), "THYROID_0_25", 6),
    Spec("Chloe", "Nguyen", F, 1986, "titrating", (LC,), ("vitamin_d",), "SLOW_0_5", 6, past_hold=True),
    Spec("Rachel", "Adeyemi", F, 1977, "titrating", (FM, CP), ("pregabalin", "tramadol_past"), "SLOW_0_5", 8),
    Spec("Megan", "Price", F, 1993, "titrating", (HT,), ("levothyroxine",), "THYROID_0_25", 7, responder=False),
    Spec("Samuel", "Osei", M, 1969, "titrating", (MS,), ("baclofen",), "SLOW_0_5", 6),
    Spec("Laura", "Fischer", F, 1980, "held", (FM,), ("gabapentin",), "SLOW_0_5", 6,
         reason="Walking holiday abroad for two weeks: stay on 3.0 mg while away and resume on return."),
    Spec("Zoe", "Patel", F, 1991, "held", (HT,), ("levothyroxine",), "THYROID_0_25", 6,
         reason="Waiting for thyroid function tests: levothyroxine may need lowering before the next step."),
    Spec("Nadia", "Haddad", F, 1985, "stepped_back", (LC, FM), ("sertraline",), "SLOW_0_5", 7, effect=INSOMNIA),
    Spec("Peter", "Lindqvist", M, 1962, "stepped_back", (CP, FM), ("amitriptyline",), "SLOW_0_5", 7,
         effect=HEADACHE),
    Spec("Sarah", "Mitchell", F, 1978, "target", (FM,), ("sertraline",), "STD_1_5", days=REVIEWED),
    Spec("Amelia", "Brooks", F, 1983, "target", (FM, HT), ("levothyroxine",), "TRIAL_1_0", days=REVIEWED),
    Spec("Thomas", "Reid", M, 1974, "target", (CR,), ("azathioprine", "loperamide"), "FIXED_4_5", days=REVIEWED),
    Spec("Fiona", "MacLeod", F, 1970, "target", (MS, FM), ("baclofen",), "FIXED_4_5", days=AT_REVIEW),
    Spec("Lucy", "Evans", F, 1989, "target", (LC,), ("vitamin_d",), "SLOW_0_5", responder=False),
    Spec("David", "Cohen", M, 1968, "target", (CP,), ("pregabalin",), "STD_1_5", responder=False),
    Spec("Katherine", "Doyle", F, 1976, "target", (MS, FM), ("baclofen", "sertraline"), "FIXED_4_5", days=REVIEWED),
    Spec("Ahmed", "Karim", M, 1972, "target", (MS,), ("baclofen",), "FIXED_4_5", responder=False, days=REVIEWED),
    Spec("Owen", "Hughes", M, 1967, "target", (MS,), ("vitamin_d",), "STD_1_5", days=AT_REVIEW),
    Spec("Isabel", "Romero", F, 1985, "target", (MS, FM), ("amitriptyline",), "TRIAL_1_0", days=REVIEWED),
    Spec("Ruth", "Campbell", F, 1973, "target", (CR,), ("mesalazine",), "FIXED_4_5", days=REVIEWED),
    Spec("Liam", "Byrne", M, 1980, "target", (CR,), ("azathioprine",), "FIXED_4_5", days=REVIEWED),
    Spec("Sofia", "Marino", F, 1990, "target", (CR, FM), ("mesalazine", "loperamide"), "STD_1_5", responder=False,
         days=REVIEWED),
    Spec("Callum", "Fraser", M, 1965, "target", (CR,), ("azathioprine",), "FIXED_4_5", responder=False,
         days=REVIEWED),
    Spec("Ella", "Morgan", F, 1987, "discontinued", (FM,), ("amitriptyline",), "STD_1_5", 2, effect=DREAMS,
         reason="Moderate vivid dreams and insomnia at 3 mg: stepped back to 1.5 mg (SE-2) and offered morning "
                "dosing (SE-3); chose to stop."),
    Spec("Mark", "Sullivan", M, 1964, "discontinued", (CP,), ("gabapentin",), "TRIAL_1_0", responder=False,
         reason="No pain response after 16 weeks at 4.5 mg (EFF-2); discussed alternatives."),
    Spec("Joan", "Fletcher", F, 1958, "discontinued", (CR,), ("azathioprine",), "FIXED_4_5",
         reason="Knee replacement needs opioid analgesia (OPI-W3); LDN stopped, review after recovery."),
    Spec("Priyanka", "Shah", F, 1992, "discontinued", (LC,), ("vitamin_d",), "SLOW_0_5", 5,
         reason="Moved abroad; care transferred to a local clinic."),
]
# fmt: on
TREATED = ("new_start", "titrating", "held", "stepped_back", "target", "discontinued")
PATIENT_STATUS = {"screening": PatientStatus.SCREENING, "declined": PatientStatus.SCREENING}
PROTOCOL_KEYS = {spec.protocol for spec in SPECS if spec.protocol}
CHECKIN_NOTES = [
    "Good week, managed a longer walk.",
    "Flare after a busy weekend.",
    "Slept better most nights.",
    "Forgot a dose while travelling.",
    "Dreams quite vivid the first night or two.",
]
MIN_TREATED_DAYS = 85  # weekly check-ins on S+7 ... S+84 give 12 weeks on LDN
DAYS_ON = {  # days on the current step, by stage
    "new_start": (2, 2),  # started two days ago: the next step (2.0 mg) is days away (RX-3)
    "titrating": (2, 12),
    "held": (15, 20),
    "stepped_back": (15, 20),  # unused: the step-back sets the end (course)
    "target": (40, 80),
    "discontinued": (10, 14),
}
MILD_EFFECTS = ([DREAMS, HEADACHE, INSOMNIA, SideEffect.NAUSEA], [4, 2, 2, 1])
PER_PLAN = "Change the dose as your titration plan directs."
LDN_CAPSULE_MG = Decimal("4.5")  # a maintenance prescription
RESOLVED_WAIT = 3  # 1.3.3: a step-up waits three days after the check-in that no longer reports an effect
RETRY_SHOWN_AFTER = 15  # a step-back this many days ago or more: its SE-2 window has passed today


@dataclass
class Course:
    """One treated patient's course in days from the first dose (day 0)."""

    steps: list[int]  # the day each step up to the current one began (steps[0] == 0)
    end: int  # the last day on LDN: today for a patient still on it
    checkins: list[int]  # weekly check-ins (PRO-1)
    effects: dict[int, list[tuple[str, int]]] = field(default_factory=dict)  # check-in day -> (effect, severity)
    resumes: list[int] = field(default_factory=list)  # check-ins after which a side-effect hold (SE-1) is resumed
    hold: int | None = None  # a clinician's hold
    morning: int | None = None  # the check-in after which the patient moves the dose to the morning (SE-3)
    stepped_back: int | None = None  # the check-in whose moderate effect steps the dose back (SE-2)


def _next_checkin(day: int) -> int:
    return (day // 7 + 1) * 7


def course(spec: Spec, min_days: list[int], rng: random.Random) -> Course:
    """The days of ``spec``'s course. ``min_days``: each planned step's min days (DOSE-2)."""
    current = spec.step or len(min_days)
    durations = [m + rng.randint(0, 4) for m in min_days[: current - 1]]  # each patient's own pace
    days_on_current = rng.randint(*(spec.days or DAYS_ON[spec.stage]))
    if spec.stage == "discontinued" and current == len(min_days):
        days_on_current = 112 if not spec.responder else rng.randint(50, 70)
    if spec.stage not in ("discontinued", "new_start") and not spec.days:  # on LDN: 12 weeks of check-ins or more
        short = MIN_TREATED_DAYS + rng.randint(0, 20) - sum(durations) - days_on_current
        for _ in range(max(short, 0)):
            if durations:
                durations[rng.randrange(len(durations))] += 1
            else:
                days_on_current += 1
    out = Course(steps=[0], end=0, checkins=[])
    reported: dict[int, tuple[str, int]] = {}  # step index -> (check-in day, the mild effect it reports)
    for index in range(current):
        if index:
            out.steps.append(out.steps[-1] + durations[index - 1])
        if index == 0:
            continue
        began, last = out.steps[index], index == current - 1
        report = _next_checkin(began)
        if last and (spec.effect or spec.stage == "held"):
            continue  # the moderate effect is placed below; a clinician's hold comes on a quiet step
        if not last and report >= began + durations[index]:
            continue  # no check-in at this dose
        forced = spec.past_hold and index == current - 3
        effect = rng.choices(*MILD_EFFECTS)[0]
        if forced or rng.random() < (0.25 if last else 0.5):  # fewer on the current step: a held demo is a dull one
            reported[index] = (report, DREAMS if forced else effect)
            if not last:  # the next step-up waits until the effect has gone (1.3.3)
                durations[index] = max(durations[index], report + 7 + RESOLVED_WAIT - began)
    began = out.steps[-1]
    if spec.effect:  # a moderate effect at the first check-in on the current dose steps it back (SE-2)
        out.stepped_back = _next_checkin(began)
        if spec.stage == "stepped_back":  # long enough ago that its SE-2 window has passed: the retry is due
            out.end = out.stepped_back + RETRY_SHOWN_AFTER + rng.randint(0, 3)
        else:  # stopped a week or so after the step-back
            out.end = out.stepped_back + rng.randint(8, 10)
        out.effects[out.stepped_back] = [(spec.effect, Severity.MODERATE)]
        if spec.effect == DREAMS:
            out.effects[out.stepped_back].append((INSOMNIA, Severity.MODERATE))
    else:
        out.end = began + days_on_current
    if spec.stage == "held":
        out.hold = began + rng.randint(4, 6)  # before the step-up fell due
    # The last check-in is the day before the end: today's may not have happened yet, and a stopped
    # patient stopped in the day.
    last_checkin = out.end - 1
    out.checkins = list(range(7, last_checkin + 1, 7))
    for day, effect in reported.values():
        if day <= last_checkin:
            out.effects.setdefault(day, []).append((effect, Severity.MILD))
            if day + 7 <= last_checkin:  # the next check-in no longer reports it: the hold ends (SE-1)
                out.resumes.append(day + 7)
            if spec.past_hold and effect == DREAMS:
                out.morning = day
    return out


def _mg(value: Decimal) -> str:
    return f"{value.normalize():f}"


def prescription(spec: Spec, dose_mg: Decimal, rng: random.Random) -> dict:
    """The first prescription, written for the plan's first dose (prescription_create reckons its days
    supply over the plan, RX-2). RX-1: capsules where every step is a whole number of capsules, otherwise
    1 mg/mL liquid."""
    capsule = spec.capsule_mg or {"STD_1_5": "1.5", "FIXED_4_5": "4.5"}.get(spec.protocol)
    quantity = {"STD_1_5": 90, "FIXED_4_5": 30}.get(spec.protocol, 60) if capsule else rng.choice([100, 150])
    then = "" if spec.protocol == "FIXED_4_5" else PER_PLAN
    return _formulation(Decimal(capsule) if capsule else None, quantity, dose_mg, then) | {"refills": rng.randint(2, 5)}


def _formulation(capsule_mg: Decimal | None, quantity: int, dose_mg: Decimal, then: str) -> dict:
    if capsule_mg:
        count = _mg(dose_mg / capsule_mg)
        sig = f"Take {count} capsule{'s' * (count != '1')} ({_mg(dose_mg)} mg) by mouth at bedtime."
        fields = {"form": Form.CAPSULE, "strength_unit": StrengthUnit.MG_PER_CAPSULE, "filler": Filler.MCC}
        fields |= {"strength_value": capsule_mg, "quantity_unit": QuantityUnit.CAPSULES}
    else:
        sig = f"Take {_mg(dose_mg)} mL ({_mg(dose_mg)} mg) by mouth at bedtime with the oral syringe."
        fields = {"form": Form.LIQUID, "strength_unit": StrengthUnit.MG_PER_ML, "filler": Filler.NONE}
        fields |= {"strength_value": Decimal(1), "quantity_unit": QuantityUnit.ML}
    return fields | {"quantity": Decimal(quantity), "sig": f"{sig} {then}".strip()}


def renewals(
    first: dict, schedule: list[tuple[dt.date, Decimal]], until: dt.date, lead: int, target_mg: Decimal, rng
) -> list[dict]:
    """The new prescriptions a patient on LDN needs before ``until`` (today, or the day they stopped): each
    written a few days before the pharmacy's lead time runs into the day the last one runs out (RX-3), for
    the dose of that day; on the target dose, 90 capsules of 4.5 mg (RX-1). ``schedule``: (day, mg)."""
    out, current = [], first
    while True:
        f = supply.Formulation(
            form=current["form"],
            strength_value=current["strength_value"],
            strength_unit=current["strength_unit"],
            quantity=current["quantity"],
            quantity_unit=current["quantity_unit"],
            days_supply=1,
        )
        runs_out = supply.supply_runs_out(f, current["start_on"], schedule)
        written = None if runs_out is None else runs_out - dt.timedelta(days=lead + rng.randint(1, 3))
        if written is None or written >= until:
            return out
        dose = next(mg for day, mg in reversed(schedule) if day <= runs_out)
        if dose >= target_mg:
            fields = _formulation(LDN_CAPSULE_MG, 90, dose, "")
        else:
            capsule = current["strength_value"] if current["form"] == Form.CAPSULE else None
            fields = _formulation(capsule, 90 if capsule else 300, dose, PER_PLAN)
        current = fields | {"refills": rng.randint(0, 2), "written_on": written, "start_on": runs_out}
        out.append(current)


def scores(spec: Spec, rng: random.Random) -> tuple[dict, dict]:
    """A patient's baseline scores, and their change at full effect: pain and fatigue fall, sleep and
    mood rise; little of either for non-responders."""
    base = {k: rng.randint(6, 8) for k in ("pain", "fatigue")} | {
        k: rng.randint(3, 5) for k in ("sleep_quality", "mood")
    }
    gain = {
        "pain": -base["pain"] * (rng.uniform(0.38, 0.55) if spec.responder else rng.uniform(0.0, 0.1)),
        "fatigue": -base["fatigue"] * (rng.uniform(0.25, 0.45) if spec.responder else rng.uniform(0.0, 0.1)),
        "sleep_quality": rng.uniform(2.0, 3.5) if spec.responder else rng.uniform(0.0, 0.5),
        "mood": rng.uniform(1.5, 3.0) if spec.responder else rng.uniform(0.0, 0.5),
    }
    return base, gain


def effect_text(effect: str, severity: int) -> str:
    return "Started a night or two after the last dose change." if severity == 1 else "Most nights this week."


def modules(spec: Spec, week: int | None, ramp: float, rng: random.Random, asked: set) -> dict:
    """PRO-2 condition modules answered with the check-in, on their schedule (``due_instruments``; no
    licences, so no FIQR): HBI weekly for Crohn's (patient part: partial), MFIS every 4 weeks for MS,
    PGIC from week 4. ``week`` is None before the first dose: the modules once, as the baseline."""
    due = instruments.due_instruments(set(spec.conditions), week or 0, set())
    if week is None:
        due -= {instruments.PGIC} | (asked & {instruments.MFIS})  # one baseline MFIS; PGIC needs a start
    asked.update(due)
    effect = ramp if spec.responder else ramp * 0.15  # 0 before LDN works, 1 at full effect

    def level(before: float, after: float, high: int) -> int:
        return min(max(round(before + (after - before) * effect + rng.gauss(0, 0.4)), 0), high)

    answers = {
        instruments.HBI: lambda: {
            "well_being": level(2.4, 0.6, 4),
            "abdominal_pain": level(2.0, 0.5, 3),
            "liquid_stools": level(5.5, 1.5, 30),
            "complications": ["arthralgia"] if rng.random() < 0.6 - 0.4 * effect else [],
        },
        instruments.MFIS: lambda: {"items": [level(2.6, 1.5, 4) for _ in range(instruments.MFIS_ITEMS)]},
        instruments.PGIC: lambda: {"pgic": level(4.0, 1.6, 7) or 1},
    }
    return {instrument: answers[instrument]() for instrument in sorted(due & set(answers))}
