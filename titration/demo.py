"""The demo clinic's cast, as plain data: staff, pharmacies, and 26 patients at every stage of LDN.

``manage.py seed_demo`` writes it (titration/management/commands/seed_demo.py). Each patient is a
``Spec``: who they are, what they take, and where they are in treatment; the command derives dates
(relative to today) and symptom scores (from a seeded random.Random) from it.
"""

from dataclasses import dataclass
from typing import NamedTuple

from patients.models import PatientStatus, Release, Role, Route
from symptoms.models import SideEffect

CLINIC_NAME, CLINIC_SLUG = "Demo LDN Clinic", "demo"
DEFAULT_PASSWORD = "ldn-demo-2026"  # noqa: S105 - a published demo password, printed on every run
ADMIN_URL = "http://127.0.0.1:8000/admin/"
SEED = 2026
ZONE = "Europe/London"
STAFF = [  # username, first name, last name, role
    ("demo-prescriber", "Priya", "Raman", Role.PRESCRIBER),
    ("demo-nurse", "Tom", "Okafor", Role.NURSE),
    ("demo-admin", "Helen", "Marsh", Role.CLINIC_ADMIN),
]
PATIENT_USERNAME = "demo-patient"
USERNAMES = [s[0] for s in STAFF] + [PATIENT_USERNAME]
PHARMACIES = [  # name, phone, lead time (days)
    ("Riverside Compounding Pharmacy", "020 7946 0101", 4),
    ("Apothecary Lane Compounding", "020 7946 0202", 5),
    ("Northgate Specialty Pharmacy", "020 7946 0303", 7),
]

LAB_RANGES = {"ESR": ("mm/h", 0, 20), "CRP": ("mg/L", 0, 5), "ALT": ("U/L", 7, 56), "AST": ("U/L", 10, 40)}
# Section 5 in the demo: a screening patient's positive urine drug screen (a CONFLICT on her list) and
# a titrating patient's ALT at 3.5x the upper limit (a LAB-2 alert task; step-ups go on).
LAB_FINDINGS = {("Maria", "Lopez"): ("UDS", "positive", 3), ("Samuel", "Osei"): ("ALT", "196", 5)}


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
    "tramadol_past": Med("Tramadol HCl 50 mg", "50 mg as needed", Route.ORAL, Release.IR, "clinician", 16,
                      "Stopped before starting LDN (washout)."),
    "sertraline": Med("Sertraline 50 mg", "50 mg once daily", Route.ORAL, Release.IR, "clinician", None, ""),
    "gabapentin": Med("Gabapentin 300 mg", "300 mg three times daily", Route.ORAL, Release.IR, "clinician", None, ""),
    "pregabalin": Med("Pregabalin 75 mg", "75 mg twice daily", Route.ORAL, Release.IR, "clinician", None, ""),
    "amitriptyline": Med("Amitriptyline 10 mg", "10 mg at night", Route.ORAL, Release.IR, "clinician", None, ""),
    "levothyroxine": Med("Levothyroxine 75 mcg", "75 mcg each morning", Route.ORAL, Release.IR, "records", None, ""),
    "azathioprine": Med("Azathioprine 100 mg", "100 mg once daily", Route.ORAL, Release.IR, "records", None, ""),
    "loperamide": Med("Imodium (loperamide) 2 mg", "2 mg as needed, up to 4 a day", Route.ORAL, Release.IR, "patient",
                      None, ""),
    "baclofen": Med("Baclofen 10 mg", "10 mg three times daily", Route.ORAL, Release.IR, "clinician", None, ""),
    "vitamin_d": Med("Vitamin D3 1000 IU", "once daily", Route.ORAL, Release.IR, "patient", None, ""),
}
# fmt: on


@dataclass(frozen=True)
class Spec:
    first: str
    last: str
    sex: str
    born: int
    stage: str  # screening | titrating | held | target | discontinued
    conditions: tuple[str, ...]
    meds: tuple[str, ...] = ()
    protocol: str = ""
    step: int = 0  # the step the patient is on (or stopped on); 0 = the last step
    responder: bool = True
    effect: str = ""  # held / discontinued for side effects: the effect
    reason: str = ""  # discontinued_reason
    past_hold: bool = False  # an earlier step was held for mild vivid dreams (SE-1, SE-3)


F, M = "female", "male"
FM, CR, MS, LC = "fibromyalgia", "crohns", "multiple_sclerosis", "long_covid"
HT, CP = "hashimotos", "chronic_pain"
HEADACHE, INSOMNIA, DREAMS = SideEffect.HEADACHE, SideEffect.INSOMNIA, SideEffect.VIVID_DREAMS
# fmt: off
SPECS = [
    Spec("Maria", "Lopez", F, 1971, "screening", (FM, CP), ("norco", "gabapentin")),
    Spec("James", "Whitfield", M, 1966, "screening", (CP,), ("tramadol", "sertraline")),
    Spec("Aisha", "Rahman", F, 1984, "screening", (FM,), ("tylenol3", "amitriptyline")),
    Spec("Daniel", "Kowalski", M, 1979, "screening", (LC, FM), ("kratom", "vitamin_d")),
    Spec("Grace", "O'Neill", F, 1975, "screening", (MS,), ("butrans", "baclofen")),
    Spec("Hannah", "Schmidt", F, 1988, "screening", (HT,), ("codeine_dental", "levothyroxine")),
    Spec("Emily", "Carter", F, 1982, "titrating", (FM,), ("sertraline",), "SLOW_0_5", 7),
    Spec("Olivia", "Bennett", F, 1990, "titrating", (HT, FM), ("levothyroxine",), "THYROID_0_25", 6),
    Spec("Chloe", "Nguyen", F, 1986, "titrating", (LC,), ("vitamin_d",), "SLOW_0_5", 6, past_hold=True),
    Spec("Rachel", "Adeyemi", F, 1977, "titrating", (FM, CP), ("pregabalin", "tramadol_past"), "SLOW_0_5", 8),
    Spec("Megan", "Price", F, 1993, "titrating", (HT,), ("levothyroxine",), "THYROID_0_25", 7, responder=False),
    Spec("Samuel", "Osei", M, 1969, "titrating", (MS,), ("baclofen",), "SLOW_0_5", 6),
    Spec("Laura", "Fischer", F, 1980, "held", (FM,), ("gabapentin",), "SLOW_0_5", 6, effect=HEADACHE),
    Spec("Nadia", "Haddad", F, 1985, "held", (LC, FM), ("sertraline",), "SLOW_0_5", 7, effect=INSOMNIA),
    Spec("Zoe", "Patel", F, 1991, "held", (HT,), ("levothyroxine",), "THYROID_0_25", 6, effect=INSOMNIA),
    Spec("Peter", "Lindqvist", M, 1962, "held", (CP, FM), ("amitriptyline",), "SLOW_0_5", 7, effect=HEADACHE),
    Spec("Sarah", "Mitchell", F, 1978, "target", (FM,), ("sertraline",), "STD_1_5"),
    Spec("Amelia", "Brooks", F, 1983, "target", (FM, HT), ("levothyroxine",), "TRIAL_1_0"),
    Spec("Thomas", "Reid", M, 1974, "target", (CR,), ("azathioprine", "loperamide"), "FIXED_4_5"),
    Spec("Fiona", "MacLeod", F, 1970, "target", (MS, FM), ("baclofen",), "FIXED_4_5"),
    Spec("Lucy", "Evans", F, 1989, "target", (LC,), ("vitamin_d",), "SLOW_0_5", responder=False),
    Spec("David", "Cohen", M, 1968, "target", (CP,), ("pregabalin",), "STD_1_5", responder=False),
    Spec("Ella", "Morgan", F, 1987, "discontinued", (FM,), ("amitriptyline",), "STD_1_5", 2, effect=DREAMS,
         reason="Moderate vivid dreams and insomnia at 3 mg (SE-2); offered morning dosing (SE-3), chose to stop."),
    Spec("Mark", "Sullivan", M, 1964, "discontinued", (CP,), ("gabapentin",), "TRIAL_1_0", responder=False,
         reason="No pain response after 16 weeks at 4.5 mg (EFF-2); discussed alternatives."),
    Spec("Joan", "Fletcher", F, 1958, "discontinued", (CR,), ("azathioprine",), "FIXED_4_5",
         reason="Knee replacement needs opioid analgesia (OPI-W3); LDN stopped, review after recovery."),
    Spec("Priyanka", "Shah", F, 1992, "discontinued", (LC,), ("vitamin_d",), "SLOW_0_5", 5,
         reason="Moved abroad; care transferred to a local clinic."),
]
# fmt: on
PATIENT_STATUS = {"screening": PatientStatus.SCREENING, "discontinued": PatientStatus.DISCONTINUED}
PROTOCOL_KEYS = {spec.protocol for spec in SPECS if spec.protocol}
CHECKIN_NOTES = [
    "Good week, managed a longer walk.",
    "Flare after a busy weekend.",
    "Slept better most nights.",
    "Forgot a dose while travelling.",
    "Dreams quite vivid the first night or two.",
]
