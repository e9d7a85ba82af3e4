"""Pure baseline and responder rules (domain.md 4.2 BASE-1, 4.3 RESP-1..RESP-7). No ORM, no clock, no I/O.

Instrument scoring and schedules (NRS, HBI, MFIS, FIQR, PGIC; PRO-1..PRO-3) are in symptoms/instruments.py.

Numbers: means and ratios are computed exactly as Fractions, and every threshold (10/30/50%, 2 points, 14%)
is decided on the exact value. Reported figures are Decimals truncated toward zero (ROUND_DOWN): percent to
0.1, points to 0.01. Truncation keeps the shown figure on the same side of every threshold as the exact one,
so a change of 29.96% shows as 29.9 next to the grade "minimal", never as 30.0.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from fractions import Fraction

from symptoms.instruments import HBIScore, check_int, check_nrs_item, round_half_up, validate_nrs, validate_pgic

BASELINE_WINDOW_DAYS = 14  # BASE-1
BASELINE_MIN_ENTRIES = 2  # BASE-1
RESPONSE_EVALUATION_DAYS = 84  # RESP-1: week 12 on the maintenance dose
MINIMAL, MODERATE, SUBSTANTIAL = Fraction(1, 10), Fraction(3, 10), Fraction(1, 2)  # RESP-2 [S17]
IMPORTANT_POINTS = 2  # RESP-3 [S18]
FIQR_IMPORTANT_DROP = Fraction(14, 100)  # RESP-4 secondary [S23]
HBI_RESPONSE_DROP = 3  # RESP-5 [S24]
HBI_REMISSION_BELOW = 5  # RESP-5
MFIS_IMPORTANT_DROP = 4  # RESP-6 [S25]
PGIC_RESPONDER_MAX = 2  # RESP-7 [S18]


MINUS = "\u2212"  # a real minus sign, as clinicians write a fall: −35%


def number(value: Decimal) -> str:
    """A Decimal without trailing zeros and never in exponent form: 2.50 -> "2.5", 30.0 -> "30"."""
    text = format(value.normalize(), "f")
    return "0" if text in {"-0", "0"} else text


def truncate(value: Fraction, places: str) -> Decimal:
    """An exact Fraction as a Decimal cut toward zero at ``places`` ("0.1", "0.01")."""
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return exact.quantize(Decimal(places), rounding=ROUND_DOWN)


# --- BASE-1 ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """An NRS baseline: ``value`` is the exact mean (a Fraction; an int or Decimal given by hand is converted
    exactly), ``n`` the number of values averaged, ``weak`` True when BASE-1 fell back to a single value."""

    value: Fraction
    n: int
    weak: bool

    def __post_init__(self) -> None:
        if isinstance(self.value, bool | float) or not isinstance(self.value, int | Decimal | Fraction):
            raise ValueError(f"A baseline value must be an int, Decimal or Fraction; got {self.value!r}.")
        object.__setattr__(self, "value", Fraction(self.value))
        if not 0 <= self.value <= 10:
            raise ValueError(f"A baseline NRS value must be from 0 to 10; got {self.value}.")
        check_int(self.n, "baseline entry count", 1, None)

    @property
    def display(self) -> Decimal:
        """The mean for display, rounded half-up to 0.1 (it is compared with no threshold)."""
        return round_half_up(self.value)


def baseline(values: Sequence[tuple[date, int | None]], first_dose: date) -> Baseline | None:
    """BASE-1: the mean of the item's values dated first_dose-14 <= day < first_dose, if there are >= 2.

    Otherwise the single latest value before the first dose (from any earlier date), flagged weak; None when
    nothing was recorded before the first dose. Dates are the patient's local dates, not datetimes. A None
    value (item left blank on that check-in) is skipped.
    """
    window_start = first_dose - timedelta(days=BASELINE_WINDOW_DAYS)
    before: list[tuple[date, int]] = []
    for day, value in values:
        if isinstance(day, datetime) or not isinstance(day, date):
            raise ValueError(f"Baseline entries are dated with a local date, not {day!r}.")
        if value is not None and day < first_dose:
            before.append((day, validate_nrs(value)))
    window = [value for day, value in before if day >= window_start]
    if len(window) >= BASELINE_MIN_ENTRIES:
        return Baseline(value=Fraction(sum(window), len(window)), n=len(window), weak=False)
    if not before:
        return None
    return Baseline(value=Fraction(max(before, key=lambda entry: entry[0])[1]), n=1, weak=True)


# --- RESP-1..RESP-3: change on an NRS item ------------------------------------------------------------


class Grade(StrEnum):  # RESP-2 [S17]
    NONE = "none"  # < 10% (including any worsening)
    MINIMAL = "minimal"  # 10 to < 30%
    MODERATE = "moderate"  # >= 30%: responder
    SUBSTANTIAL = "substantial"  # >= 50%: responder


def grade(improvement: Fraction) -> Grade:
    """RESP-2 grade for an exact proportional improvement (0.3 = 30% better)."""
    if improvement >= SUBSTANTIAL:
        return Grade.SUBSTANTIAL
    if improvement >= MODERATE:
        return Grade.MODERATE
    if improvement >= MINIMAL:
        return Grade.MINIMAL
    return Grade.NONE


@dataclass(frozen=True)
class Response:
    """Change on one NRS item from baseline to now, signed so that positive = better in the item's direction
    (pain and fatigue down, sleep quality and mood up).

    ``responder`` (RESP-1: improved >= 30%) and ``grade`` are None when the change is undefined (no baseline,
    baseline 0, fewer than two current values); ``reason`` says why, and otherwise describes the change.
    ``important_change`` is RESP-3's >= 2 points, defined even at baseline 0.
    """

    item: str
    percent_change: Decimal | None  # percent improvement, truncated to 0.1
    absolute_change: Decimal | None  # NRS points improvement, truncated to 0.01
    grade: Grade | None
    responder: bool | None
    reason: str
    important_change: bool | None = None
    weak_baseline: bool = False
    baseline: Fraction | None = None
    current: Fraction | None = None


def _words(item: str) -> str:
    return item.replace("_", " ")


def item_change(item: str, baseline: Baseline | None, last_two: Sequence[int | None]) -> Response:
    """RESP-1..RESP-3 for any NRS item; ``last_two`` holds the values of the last two weekly check-ins.

    The current value is their mean (RESP-1). A None (item left blank) leaves fewer than two values and the
    change undefined. More than two values raise ValueError: which two are "last" depends on an ordering only
    the caller knows (check-ins are stored newest first).
    """
    higher_is_worse = check_nrs_item(item)
    name = _words(item)
    if isinstance(last_two, str | bytes) or len(last_two) > 2:
        raise ValueError(f"Pass the {name} values of the last two weekly check-ins only (RESP-1).")
    current_values = [validate_nrs(v, name) for v in last_two if v is not None]
    weak = baseline is not None and baseline.weak
    if baseline is None:
        return Response(item, None, None, None, None, f"no {name} baseline before the first dose (BASE-1)")
    if len(current_values) < 2:
        text = f"{name} needs the last 2 weekly check-ins, {len(current_values)} answered (RESP-1)"
        return Response(item, None, None, None, None, text, weak_baseline=weak, baseline=baseline.value)
    current = Fraction(sum(current_values), 2)
    gain = baseline.value - current if higher_is_worse else current - baseline.value
    points = truncate(gain, "0.01")
    common = {
        "absolute_change": points,
        "important_change": gain >= IMPORTANT_POINTS,
        "weak_baseline": weak,
        "baseline": baseline.value,
        "current": current,
    }
    weak_note = "; weak baseline: a single pre-start value (BASE-1)" if weak else ""
    if baseline.value == 0:
        text = f"{name} baseline is 0: a percent change is undefined (RESP-1){weak_note}"
        return Response(item, None, grade=None, responder=None, reason=text, **common)
    proportion = gain / baseline.value
    percent = truncate(proportion * 100, "0.1")
    graded = grade(proportion)
    direction = "better" if gain >= 0 else "worse"
    text = (
        f"{name} {abs(percent)}% {direction} than baseline {baseline.display} "
        f"({abs(points)} points; RESP-2 grade {graded}){weak_note}"
    )
    return Response(item, percent, grade=graded, responder=proportion >= MODERATE, reason=text, **common)


def pain_response(baseline: Baseline | None, last_two: Sequence[int | None]) -> Response:
    """RESP-1 primary outcome: pain NRS, improved >= 30% from the BASE-1 baseline."""
    return item_change("pain", baseline, last_two)


def evaluated_at_week_12_on_maintenance(maintenance_started: date | None, today: date) -> bool:
    """RESP-1 is read from 12 weeks (84 days) on the maintenance dose; False before that or without one."""
    return maintenance_started is not None and (today - maintenance_started).days >= RESPONSE_EVALUATION_DAYS


# --- RESP-4: fibromyalgia composite ---------------------------------------------------------------


def fiqr_improved(baseline_total: Fraction | Decimal, current_total: Fraction | Decimal) -> bool | None:
    """RESP-4 secondary: FIQR total down >= 14% from baseline; None when the baseline is 0.

    Pass FIQRScore.exact_total where you have it; a rounded Decimal total is compared as given.
    """
    base, now = Fraction(baseline_total), Fraction(current_total)
    for value in (base, now):
        if not 0 <= value <= 100:
            raise ValueError(f"A FIQR total must be from 0 to 100; got {value}.")
    if base == 0:
        return None
    return (base - now) / base >= FIQR_IMPORTANT_DROP


@dataclass(frozen=True)
class FibromyalgiaResponse:
    responder: bool | None  # pain responder AND (fatigue or sleep quality improved >= 30%)
    fiqr_improved: bool | None  # secondary, None if no FIQR pair or baseline 0
    reason: str


def fibromyalgia_response(
    pain: Response, fatigue: Response, sleep: Response, fiqr: bool | None = None
) -> FibromyalgiaResponse:
    """RESP-4 from the three item_change results, with three-valued logic: an undefined part leaves the
    composite undefined only when it could change the answer (a pain non-responder is never a responder).

    ``fiqr`` is the secondary FIQR flag from fiqr_improved(), carried into the result unchanged.
    """
    expected = (("pain", pain), ("fatigue", fatigue), ("sleep_quality", sleep))
    for item, result in expected:
        if result.item != item:
            raise ValueError(f"fibromyalgia_response needs the {item} change here, got {result.item}.")
    other = [fatigue.responder, sleep.responder]
    if True in other:
        either = True
    elif None in other:
        either = None
    else:
        either = False
    if pain.responder is False or either is False:
        responder, why = False, "pain" if pain.responder is False else "neither fatigue nor sleep quality"
        text = f"not a composite responder: {why} not improved >= 30% (RESP-4)"
    elif pain.responder is None or either is None:
        undefined = [r.reason for r in (pain, fatigue, sleep) if r.responder is None]
        responder, text = None, "composite undefined: " + "; ".join(undefined) + " (RESP-4)"
    else:
        improved = " and ".join(_words(r.item) for r in (fatigue, sleep) if r.responder)
        responder, text = True, f"composite responder: pain and {improved} improved >= 30% (RESP-4)"
    return FibromyalgiaResponse(responder=responder, fiqr_improved=fiqr, reason=text)


# --- RESP-5..RESP-7 ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CrohnsResponse:
    response: bool | None  # HBI down >= 3; None unless both scores are full
    remission: bool | None  # current HBI < 5; None unless the current score is full
    change: int | None  # baseline - current (positive = better), full scores only
    reason: str


def crohns_response(baseline: HBIScore | None, current: HBIScore) -> CrohnsResponse:
    """RESP-5 on full HBI scores only: a partial score (abdominal mass not examined) is never compared."""
    if current.partial:
        text = "current HBI is partial (abdominal mass not examined): not compared with HBI thresholds (RESP-5)"
        return CrohnsResponse(None, None, None, text)
    remission = current.total < HBI_REMISSION_BELOW
    state = "remission" if remission else "not in remission"
    if baseline is None:
        return CrohnsResponse(None, remission, None, f"HBI {current.total}, {state}; no baseline HBI (RESP-5)")
    if baseline.partial:
        text = f"HBI {current.total}, {state}; baseline HBI is partial, so no response is computed (RESP-5)"
        return CrohnsResponse(None, remission, None, text)
    change = baseline.total - current.total
    response = change >= HBI_RESPONSE_DROP
    verdict = "response" if response else "no response"
    text = f"HBI {baseline.total} -> {current.total} ({verdict}), {state} (RESP-5)"
    return CrohnsResponse(response, remission, change, text)


def mfis_responder(baseline_total: int, current_total: int) -> bool:
    """RESP-6: MFIS total down >= 4 points (the MID)."""
    base = check_int(baseline_total, "baseline MFIS total", 0, 84)
    return base - check_int(current_total, "current MFIS total", 0, 84) >= MFIS_IMPORTANT_DROP


def pgic_responder(value: int) -> bool:
    """RESP-7: PGIC 1 (very much improved) or 2 (much improved)."""
    return validate_pgic(value) <= PGIC_RESPONDER_MAX


# --- Which instrument scores RESP-4..RESP-6 compare [POLICY] -----------------------------------------

INSTRUMENT_BASELINE_BEFORE_DAYS = BASELINE_WINDOW_DAYS  # as BASE-1: the 14 days before the first dose ...
INSTRUMENT_BASELINE_AFTER_DAYS = 7  # ... and week 0 of LDN, when PRO-2 asks MFIS, FIQR and HBI as the baseline


@dataclass(frozen=True)
class ScorePair[T]:
    """The baseline and current instrument scores, each (local date, score), or None where there is none.

    ``weak_baseline`` is True when no score falls in the baseline window and an older one stands in (as BASE-1
    falls back to a single older value).
    """

    baseline: tuple[date, T] | None
    current: tuple[date, T] | None
    weak_baseline: bool = False


def instrument_pair[T](scores: Sequence[tuple[date, T]], first_dose: date) -> ScorePair[T]:
    """The scores an instrument's change is read from (FIQR RESP-4, HBI RESP-5, MFIS RESP-6) [POLICY].

    Baseline: the latest score dated first_dose-14 <= day < first_dose+7 (the BASE-1 window and week 0, when
    PRO-2 asks the condition modules as the baseline); failing that, the latest score before that window,
    flagged weak. Current: the latest score dated from week 1 (first_dose+7) on. Scores on the same date keep
    their given order (pass them oldest first): the later one counts as the latest.
    """
    start = first_dose - timedelta(days=INSTRUMENT_BASELINE_BEFORE_DAYS)
    week_1 = first_dose + timedelta(days=INSTRUMENT_BASELINE_AFTER_DAYS)
    for day, _ in scores:
        if isinstance(day, datetime) or not isinstance(day, date):
            raise ValueError(f"Instrument scores are dated with a local date, not {day!r}.")
    ordered = sorted(scores, key=lambda entry: entry[0])  # stable: same-day scores keep their order
    window = [entry for entry in ordered if start <= entry[0] < week_1]
    earlier = [entry for entry in ordered if entry[0] < start]
    later = [entry for entry in ordered if entry[0] >= week_1]
    current = later[-1] if later else None
    if window:
        return ScorePair(window[-1], current, weak_baseline=False)
    if earlier:
        return ScorePair(earlier[-1], current, weak_baseline=True)
    return ScorePair(None, current)


# --- The responder status EFF-2 reads ---------------------------------------------------------------


def responder_status(pain: bool | None, others: Sequence[bool | None] = ()) -> bool | None:
    """Whether the patient is a responder (section 4.3) for EFF-2 [POLICY]: True when the primary RESP-1 pain
    responder or any other responder definition that applies (RESP-4 composite, RESP-5 response or remission,
    RESP-6 MFIS, RESP-7 PGIC) is met; otherwise RESP-1's own answer: False, or None when it is undefined.

    A definition met is enough: EFF-2 suggests stopping, so a patient who meets any one is not flagged.
    An undefined secondary result never makes a pain non-responder "unknown": RESP-1 is the primary outcome.
    """
    for value in (pain, *others):
        if value is not None and not isinstance(value, bool):
            raise ValueError(f"A responder result is True, False or None; got {value!r}.")
    if pain is True or True in others:
        return True
    return pain
