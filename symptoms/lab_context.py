"""LAB-1: baseline ESR shown next to the pain response (domain.md 5). Pure: no ORM, no clock, no I/O.

In the fibromyalgia pilot, baseline ESR explained most of the variance in response (higher ESR, greater
symptom reduction) [S1]. It is context for the clinician reading the response, not a responder criterion:
nothing here changes RESP-1..RESP-7.

- Baseline ESR: the latest ESR collected at most 30 days before the first dose and not after it; one taken
  on the first-dose day counts (drawn before the bedtime dose).
- Week-12 ESR: the latest ESR collected 70 to 98 days after the first dose (week 12, give or take 2 weeks),
  and its change from the baseline when both are in the same unit.
- Dates are the patient's local dates; results collected after ``today`` are not read. Which results exist
  (archived ones left out, only the patient's own clinic) is the caller's read.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from .rules import MINUS, number

BASELINE_MAX_DAYS_BEFORE = 30  # domain.md 5: "baseline (<= 30 d before start)"
WEEK_12_FROM_DAY, WEEK_12_TO_DAY = 70, 98  # days after the first dose: week 12 +/- 2 weeks


def _amount(value: Decimal, unit: str) -> str:
    return f"{number(value)} {unit}".strip()


def signed(change: Decimal, unit: str) -> str:
    """A change as clinicians write it: "−12 mm/h" (a fall), "+3 mm/h", "0 mm/h"."""
    sign = "+" if change > 0 else MINUS if change < 0 else ""
    return f"{sign}{_amount(abs(change), unit)}"


def _days(n: int) -> str:
    return f"{n} day{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class EsrResult:
    """One ESR as the lab reported it; ``ref_high`` is the lab's upper reference limit, if given."""

    value: Decimal
    unit: str
    collected_on: date  # the patient's local date
    ref_high: Decimal | None = None

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, int | Decimal):
            raise ValueError(f"An ESR value must be a Decimal; got {self.value!r}.")
        object.__setattr__(self, "value", Decimal(self.value))
        if self.value < 0:
            raise ValueError(f"An ESR value cannot be negative; got {self.value}.")
        if isinstance(self.collected_on, datetime) or not isinstance(self.collected_on, date):
            raise ValueError(f"An ESR is dated with a local date, not {self.collected_on!r}.")

    @property
    def above_range(self) -> bool:
        return self.ref_high is not None and self.value > self.ref_high

    @property
    def text(self) -> str:
        """ "32 mm/h (2026-09-01)"."""
        return f"{_amount(self.value, self.unit)} ({self.collected_on.isoformat()})"


@dataclass(frozen=True)
class EsrContext:
    first_dose: date | None
    baseline: EsrResult | None
    week_12: EsrResult | None
    change: Decimal | None  # week 12 minus baseline, in their shared unit; None when not comparable
    baseline_text: str
    week_12_text: str  # empty before there is a first dose


def _latest(results: Sequence[EsrResult]) -> EsrResult | None:
    # Same-day results: the later one in the caller's order (collected_at, pk) wins.
    return max(reversed(results), key=lambda r: r.collected_on, default=None) if results else None


def _same_unit(a: EsrResult, b: EsrResult) -> bool:
    return a.unit.strip().casefold() == b.unit.strip().casefold()


def esr_context(results: Sequence[EsrResult], *, first_dose: date | None, today: date) -> EsrContext:
    """LAB-1 for one patient: their ESR results (any order), their first LDN dose, and their local today."""
    results = [r for r in results if r.collected_on <= today]
    if first_dose is None:
        text = "no baseline ESR yet: no first dose recorded"
        latest = _latest(results)
        if latest is not None:
            text += f"; latest ESR {latest.text}"
        return EsrContext(None, None, None, None, text, "")

    def before(r: EsrResult) -> int:
        return (first_dose - r.collected_on).days

    baseline = _latest([r for r in results if 0 <= before(r) <= BASELINE_MAX_DAYS_BEFORE])
    if baseline is not None:
        days = before(baseline)
        when = "on the day of the first dose" if days == 0 else f"{_days(days)} before the first dose"
        baseline_text = f"baseline ESR {baseline.text}, {when} ({first_dose.isoformat()})"
        if baseline.above_range:
            baseline_text += f", above the lab's upper limit of {number(baseline.ref_high)} {baseline.unit}"
    else:
        baseline_text = (
            f"no baseline ESR within {BASELINE_MAX_DAYS_BEFORE} days before the first dose ({first_dose.isoformat()})"
        )
        older = _latest([r for r in results if before(r) > BASELINE_MAX_DAYS_BEFORE])
        if older is not None:
            baseline_text += (
                f"; latest ESR {older.text} is {_days(before(older))} before the first dose, too early for a baseline"
            )
        elif any(before(r) < 0 for r in results):
            baseline_text += "; ESRs taken after the first dose are not baselines"
        else:
            baseline_text += "; no ESR on file before it"

    window_from = first_dose + timedelta(days=WEEK_12_FROM_DAY)
    window_to = first_dose + timedelta(days=WEEK_12_TO_DAY)
    week_12 = _latest([r for r in results if window_from <= r.collected_on <= window_to])
    change = None
    window = (
        f"{window_from.isoformat()} to {window_to.isoformat()}, "
        f"{WEEK_12_FROM_DAY}-{WEEK_12_TO_DAY} days after the first dose"
    )
    if week_12 is not None:
        day = (week_12.collected_on - first_dose).days
        week_12_text = f"week-12 ESR {week_12.text}, day {day} after the first dose"
        if baseline is None:
            week_12_text += ": no baseline ESR to compare with"
        elif not _same_unit(baseline, week_12):
            week_12_text += f": not compared, the units differ ({baseline.unit} at baseline, {week_12.unit} now)"
        else:
            change = week_12.value - baseline.value
            week_12_text += f": {signed(change, baseline.unit)} from baseline"
    elif today < window_from:
        week_12_text = f"week-12 ESR due {window}"
    elif today <= window_to:
        week_12_text = f"no week-12 ESR yet: due {window}"
    else:
        week_12_text = f"no week-12 ESR: none collected {window}"
    return EsrContext(first_dose, baseline, week_12, change, baseline_text, week_12_text)
