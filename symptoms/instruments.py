"""Pure scoring of the patient-reported instruments (domain.md 4.1) and when they are due (PRO-2, PRO-3).

NRS 0-10 (PRO-1), Harvey-Bradshaw Index, MFIS, FIQR and PGIC. No ORM, no clock, no I/O. Baselines and
responder rules (BASE-1, RESP-1..RESP-7) are in symptoms/rules.py.

Numbers: item answers are ints and sums of ints stay ints. Where a score divides (FIQR), it is computed
exactly as a Fraction and reported as a Decimal rounded half-up to one decimal place (see FIQRScore).
Invalid input (wrong type, out of range, a missing item where the instrument has no rule for it) raises
ValueError with the item and the allowed range in the message: a score is never guessed.
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from types import MappingProxyType

# --- PRO-1: numeric rating scales --------------------------------------------------------------------

# Item -> higher_is_worse (4.1): pain and fatigue get better by going down, sleep quality and mood by going up.
NRS_ITEMS = MappingProxyType({"pain": True, "fatigue": True, "sleep_quality": False, "mood": False})
NRS_RANGE = (0, 10)


def check_int(value: object, name: str, low: int, high: int | None) -> int:
    """Return ``value`` if it is a whole number in low..high (high None = no upper bound); else ValueError.

    bool is refused although it is an int: True would silently score 1.
    """
    upper = "" if high is None else f" to {high}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number from {low}{upper}; got {value!r}.")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be a whole number from {low}{upper}; got {value}.")
    return value


def validate_nrs(value: object, item: str = "NRS") -> int:
    """PRO-1: an NRS answer is an integer 0..10."""
    return check_int(value, item, *NRS_RANGE)


def check_nrs_item(item: str) -> bool:
    """The item's higher_is_worse flag; ValueError for an item that is not one of the four NRS."""
    try:
        return NRS_ITEMS[item]
    except KeyError:
        raise ValueError(f"Unknown NRS item {item!r}; expected one of {', '.join(NRS_ITEMS)}.") from None


# --- Harvey-Bradshaw Index (PRO-2, RESP-5) ------------------------------------------------------------

HBI_COMPLICATIONS = frozenset(
    {
        "arthralgia",
        "uveitis",
        "erythema_nodosum",
        "aphthous_ulcers",
        "pyoderma_gangrenosum",
        "anal_fissure",
        "new_fistula",
        "abscess",
    }
)
HBI_REMISSION, HBI_MILD, HBI_MODERATE, HBI_SEVERE = "remission", "mild", "moderate", "severe"


@dataclass(frozen=True)
class HBIScore:
    """A Harvey-Bradshaw total.

    ``partial`` is True when the clinician-examined abdominal mass was not scored (the patient form stores it
    NULL, PRO-2). A partial total is a lower bound of the full one, so it gets no ``band``: its band must not
    be read against the full-HBI thresholds (remission <5, mild 5-7, moderate 8-16, severe >16).
    """

    total: int
    partial: bool
    band: str | None

    @property
    def comparable(self) -> bool:
        """Whether the total may be compared with the full-HBI thresholds (RESP-5)."""
        return not self.partial


def hbi_band(total: int) -> str:
    """Full-HBI severity band (4.1 [S24])."""
    if total < 5:
        return HBI_REMISSION
    if total <= 7:
        return HBI_MILD
    if total <= 16:
        return HBI_MODERATE
    return HBI_SEVERE


def hbi_score(
    well_being: int,
    abdominal_pain: int,
    liquid_stools: int,
    abdominal_mass: int | None,
    complications: Collection[str],
) -> HBIScore:
    """Harvey-Bradshaw Index for the previous day: the sum of its five parts, one point per complication."""
    if isinstance(complications, str):
        raise ValueError("complications must be a set of complication keys, not a single string.")
    unknown = set(complications) - HBI_COMPLICATIONS
    if unknown:
        expected = ", ".join(sorted(HBI_COMPLICATIONS))
        raise ValueError(f"Unknown HBI complication(s) {', '.join(sorted(unknown))}; expected any of {expected}.")
    total = (
        check_int(well_being, "HBI general well-being", 0, 4)
        + check_int(abdominal_pain, "HBI abdominal pain", 0, 3)
        + check_int(liquid_stools, "HBI liquid stools per day", 0, None)
        + len(set(complications))
    )
    if abdominal_mass is None:
        return HBIScore(total=total, partial=True, band=None)
    total += check_int(abdominal_mass, "HBI abdominal mass", 0, 3)
    return HBIScore(total=total, partial=False, band=hbi_band(total))


# --- MFIS (PRO-2, RESP-6) -----------------------------------------------------------------------------

MFIS_ITEMS = 21
MFIS_PHYSICAL = (4, 6, 7, 10, 13, 14, 17, 20, 21)
MFIS_COGNITIVE = (1, 2, 3, 5, 11, 12, 15, 16, 18, 19)
MFIS_PSYCHOSOCIAL = (8, 9)
MFIS_SHORT_FORM = (1, 9, 10, 17, 19)  # MFIS-5


@dataclass(frozen=True)
class MFISScore:
    total: int  # 0-84
    physical: int  # 0-36
    cognitive: int  # 0-40
    psychosocial: int  # 0-8
    short_form: int  # 0-20: the MFIS-5 items read from the full form


def _mfis_answers(items: Sequence[int], numbers: Sequence[int], form: str) -> dict[int, int]:
    if isinstance(items, str | bytes) or len(items) != len(numbers):
        raise ValueError(f"{form} needs exactly {len(numbers)} answers (items {', '.join(map(str, numbers))}).")
    answers = {}
    for number, value in zip(numbers, items, strict=True):
        if value is None:
            # No missing-item rule is published for the MFIS: refuse rather than pro-rate.
            raise ValueError(f"{form} item {number} is missing; every item must be answered.")
        answers[number] = check_int(value, f"{form} item {number}", 0, 4)
    return answers


def mfis_score(items: Sequence[int]) -> MFISScore:
    """MFIS from its 21 answers (0-4) in form order: ``items[0]`` is item 1."""
    a = _mfis_answers(items, range(1, MFIS_ITEMS + 1), "MFIS")
    return MFISScore(
        total=sum(a.values()),
        physical=sum(a[n] for n in MFIS_PHYSICAL),
        cognitive=sum(a[n] for n in MFIS_COGNITIVE),
        psychosocial=sum(a[n] for n in MFIS_PSYCHOSOCIAL),
        short_form=sum(a[n] for n in MFIS_SHORT_FORM),
    )


def mfis5_score(items: Sequence[int]) -> int:
    """The 5-item MFIS given on its own: answers to items 1, 9, 10, 17, 19 in that order; 0-20."""
    return sum(_mfis_answers(items, MFIS_SHORT_FORM, "MFIS-5").values())


# --- FIQR (licensed: PRO-3 gating is done by the caller and due_instruments) --------------------------

FIQR_FUNCTION_ITEMS, FIQR_OVERALL_ITEMS, FIQR_SYMPTOM_ITEMS = 9, 2, 10
FIQR_ITEMS = FIQR_FUNCTION_ITEMS + FIQR_OVERALL_ITEMS + FIQR_SYMPTOM_ITEMS
_ONE_PLACE = Decimal("0.1")


def round_half_up(value: Fraction, places: Decimal = _ONE_PLACE) -> Decimal:
    """An exact Fraction as a Decimal rounded half-up (2.25 -> 2.3, not banker's 2.2)."""
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return exact.quantize(places, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class FIQRScore:
    """FIQR domain scores and total, each rounded half-up to 0.1 from the exact value.

    The total is rounded from the exact sum of the domains, so with missing items it can differ by 0.1 from
    the sum of the three rounded domains shown beside it. Without missing items function is a multiple of 1/3,
    symptoms of 1/2 and overall whole, and the rounding is the usual one-decimal FIQR display.
    """

    function: Decimal  # 0-30: sum of 9 items / 3
    overall: Decimal  # 0-20: sum of 2 items
    symptoms: Decimal  # 0-50: sum of 10 items / 2
    total: Decimal  # 0-100
    missing: int  # items left blank, pro-rated within their domain
    exact_total: Fraction  # for RESP-4's FIQR change, so a rounded total never decides a threshold


def _fiqr_domain(values: Sequence[int | None], first: int, name: str, divisor: int) -> Fraction:
    answered = []
    for offset, value in enumerate(values):
        if value is not None:
            answered.append(check_int(value, f"FIQR item {first + offset}", 0, 10))
    if not answered:
        raise ValueError(f"FIQR {name} domain has no answered item: it cannot be scored.")
    # 4.1 [S22]: a domain with x of its n items answered is scored as sum * n / x.
    return Fraction(sum(answered) * len(values), len(answered) * divisor)


def fiqr_score(items: Sequence[int | None]) -> FIQRScore:
    """FIQR from its 21 answers (0-10) in form order; None = left blank.

    Items 1-9 function, 10-11 overall impact, 12-21 symptoms. A domain with no answered item raises ValueError.
    """
    if isinstance(items, str | bytes) or len(items) != FIQR_ITEMS:
        raise ValueError(f"FIQR needs {FIQR_ITEMS} answers (None for an item left blank); got {len(items)}.")
    function = _fiqr_domain(items[:9], 1, "function", 3)
    overall = _fiqr_domain(items[9:11], 10, "overall impact", 1)
    symptoms = _fiqr_domain(items[11:], 12, "symptoms", 2)
    total = function + overall + symptoms
    return FIQRScore(
        function=round_half_up(function),
        overall=round_half_up(overall),
        symptoms=round_half_up(symptoms),
        total=round_half_up(total),
        missing=sum(v is None for v in items),
        exact_total=total,
    )


# --- PGIC (PRO-2, RESP-7) ------------------------------------------------------------------------------

PGIC_LABELS = MappingProxyType(
    {
        1: "Very much improved",
        2: "Much improved",
        3: "Minimally improved",
        4: "No change",
        5: "Minimally worse",
        6: "Much worse",
        7: "Very much worse",
    }
)


def validate_pgic(value: object) -> int:
    return check_int(value, "PGIC", 1, 7)


def pgic_label(value: int) -> str:
    return PGIC_LABELS[validate_pgic(value)]


# --- PRO-2 / PRO-3: what is due this week ------------------------------------------------------------

PGIC, MFIS, HBI, FIQR, BPI, PROMIS = "PGIC", "MFIS", "HBI", "FIQR", "BPI", "PROMIS"
INSTRUMENTS = frozenset({PGIC, MFIS, HBI, FIQR, BPI, PROMIS})
LICENSED_INSTRUMENTS = frozenset({FIQR, BPI, PROMIS})  # PRO-3 / 4.1 licence column
CONDITIONS = frozenset(
    {"fibromyalgia", "crohns", "multiple_sclerosis", "long_covid", "hashimotos", "chronic_pain", "other"}
)
MODULE_EVERY_WEEKS = 4  # PRO-2: FIQR and MFIS (4-week recall)
PGIC_EARLY_WEEKS = (4, 8)  # PRO-2: then 12 and every 12 weeks
PGIC_EVERY_WEEKS = 12
LICENSED_GENERIC_EVERY_WEEKS = 4  # [POLICY, not in domain.md]: BPI / PROMIS once licensed, for every patient


def _check_keys(keys: Collection[str], allowed: frozenset[str], what: str) -> None:
    if isinstance(keys, str):
        raise ValueError(f"{what} must be a set of keys, not a single string.")
    unknown = set(keys) - allowed
    if unknown:
        raise ValueError(f"Unknown {what} {', '.join(sorted(unknown))}; expected any of {', '.join(sorted(allowed))}.")


def due_instruments(conditions: Collection[str], weeks_on_ldn: int, licences: Collection[str]) -> set[str]:
    """Instruments due in week ``weeks_on_ldn`` besides the weekly NRS check-in (PRO-1), which is always due.

    Week 0 is the week of the first dose: MFIS, FIQR and HBI are due then, as the baselines RESP-4..RESP-6
    compare against. PGIC asks about change since starting, so it starts at week 4. Unknown condition or
    licence keys raise ValueError: a misspelt "FIQR" licence must not silently switch the FIQR off.
    """
    _check_keys(conditions, CONDITIONS, "condition(s)")
    _check_keys(licences, INSTRUMENTS, "licence(s)")
    week = check_int(weeks_on_ldn, "weeks on LDN", 0, None)
    every_4 = week % MODULE_EVERY_WEEKS == 0
    due = set()
    if week in PGIC_EARLY_WEEKS or (week > 0 and week % PGIC_EVERY_WEEKS == 0):
        due.add(PGIC)
    if "crohns" in conditions:
        due.add(HBI)  # weekly; the patient form leaves abdominal mass NULL -> partial (PRO-2)
    if "multiple_sclerosis" in conditions and every_4:
        due.add(MFIS)
    if "fibromyalgia" in conditions and every_4 and FIQR in licences:
        due.add(FIQR)
    if week % LICENSED_GENERIC_EVERY_WEEKS == 0:
        due.update({BPI, PROMIS} & set(licences))  # PRO-3: never without a recorded licence
    return due
