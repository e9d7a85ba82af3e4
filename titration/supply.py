"""Pure formulation rules (domain.md 1.6, RX-1..RX-3): can a dose be given from a compounded
formulation, how long a supply lasts, when to reorder. No ORM, no clock (pass dates), no I/O.

Form and unit strings are the values of titration.models Form, StrengthUnit and QuantityUnit.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from .rules import LDN_HARD_MAX_MG, Reason, check_dose, fmt_mg

CAPSULE, TABLET, TROCHE = "capsule", "tablet", "troche"
LIQUID, DROPS, CREAM, EYE_DROPS = "liquid", "sublingual_drops", "cream", "eye_drops"
PER_UNIT_FORMS = {CAPSULE: "capsule", TABLET: "tablet", TROCHE: "troche"}  # form -> what one unit is called

# (form, strength unit) -> the quantity unit it is dispensed in (RX-1). Anything else is refused.
FORM_UNITS = {
    (CAPSULE, "mg/capsule"): "capsules",
    (TABLET, "mg/tablet"): "tablets",
    (TROCHE, "mg/troche"): "troches",
    (LIQUID, "mg/mL"): "mL",
    (DROPS, "mg/drop"): "mL",
    (DROPS, "mg/mL"): "mL",
    (CREAM, "mg/mL"): "mL",
    (CREAM, "mg/g"): "g",
    (EYE_DROPS, "%"): "mL",
}

# Oral liquid by oral syringe: a 1 mL oral syringe reads 0.05 mL (most read 0.01), so 0.25 mg of the usual
# 1 mg/mL liquid is 0.25 mL; domain.md 1.1 needs 0.25 mg liquid steps. Below 0.1 mL a syringe is too inexact.
LIQUID_ML_STEP = Decimal("0.05")
LIQUID_ML_MIN = Decimal("0.1")
CREAM_STEP = Decimal("0.1")  # mL or g, metered dispenser
# Drops per mL when the pharmacy gives none: the USP medicine dropper delivers about 20 drops of water per mL.
DROPS_PER_ML_DEFAULT = Decimal(20)
SUPPLY_WARN_DAYS = 7  # RX-3
SUPPLY_HORIZON_DAYS = 365  # supply_runs_out looks no further than this past the last dose change
DEFAULT_LEAD_TIME_DAYS = 5  # titration.models.Pharmacy.lead_time_days default


@dataclass(frozen=True)
class Formulation:
    form: str
    strength_value: Decimal
    strength_unit: str
    quantity: Decimal
    quantity_unit: str
    days_supply: int
    drops_per_ml: Decimal = DROPS_PER_ML_DEFAULT  # sublingual drops only: mg/drop strength, mL quantity

    def __post_init__(self) -> None:
        dispensed_in = FORM_UNITS.get((self.form, self.strength_unit))
        if dispensed_in is None:
            raise ValueError(f"A {self.form} is not measured in {self.strength_unit} (RX-1).")
        if self.quantity_unit != dispensed_in:
            raise ValueError(f"A {self.form} of {self.strength_unit} is dispensed in {dispensed_in} (RX-1).")
        for name in ("strength_value", "quantity", "drops_per_ml"):
            value = getattr(self, name)
            if isinstance(value, int) and not isinstance(value, bool):  # an unsaved model may still hold an int
                value = Decimal(value)
                object.__setattr__(self, name, value)
            if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
                raise ValueError(f"{name} must be a positive exact decimal; got {value!r}.")
        if isinstance(self.days_supply, bool) or not isinstance(self.days_supply, int) or self.days_supply < 1:
            raise ValueError(f"days_supply must be a whole number of days, at least 1; got {self.days_supply!r}.")


@dataclass(frozen=True)
class Measure:
    amount: Decimal
    unit: str  # "capsules", "tablets", "troches", "mL", "g" or "drops"
    text: str  # "2 capsules of 1.5 mg"


def describe(f: Formulation) -> str:
    """ "1.5 mg capsules", "1.0 mg/mL liquid", "0.2% eye drops"."""
    if f.form in PER_UNIT_FORMS:
        return f"{fmt_mg(f.strength_value)} mg {PER_UNIT_FORMS[f.form]}s"
    if f.form == EYE_DROPS:
        return f"{fmt_mg(f.strength_value)}% eye drops"
    return f"{fmt_mg(f.strength_value)} {f.strength_unit} {f.form.replace('_', ' ')}"


def _whole(value: Decimal) -> str:
    return format(value.quantize(Decimal(1)), "f") if value == value.to_integral_value() else fmt_mg(value)


def _multiple(amount: Decimal, step: Decimal, minimum: Decimal) -> bool:
    return amount >= minimum and amount % step == 0


def measure(dose_mg: Decimal, f: Formulation, *, allow_split: bool = False) -> Measure | None:
    """RX-2: how one dose is given from ``f``, or None when it cannot be.

    Capsules, tablets, troches: whole units (``allow_split``: halves, tablets only). Oral liquid: dose /
    concentration in mL, exact to the syringe's 0.05 mL and at least 0.1 mL. Sublingual drops: whole drops
    (mg/mL drops at ``drops_per_ml``). Cream: mL or g exact to 0.1. Eye drops: never (not systemic LDN).
    """
    check_dose(dose_mg)
    strength = fmt_mg(f.strength_value)
    if f.form in PER_UNIT_FORMS:
        count = dose_mg / f.strength_value
        step = Decimal("0.5") if allow_split and f.form == TABLET else Decimal(1)
        if not _multiple(count, step, step):
            return None
        count = count.quantize(Decimal(1)) if count % 1 == 0 else count.quantize(Decimal("0.1"))
        noun = PER_UNIT_FORMS[f.form] + ("" if count == 1 else "s")
        return Measure(count, f"{PER_UNIT_FORMS[f.form]}s", f"{_whole(count)} {noun} of {strength} mg")
    if f.form == LIQUID or f.form == CREAM:
        amount = dose_mg / f.strength_value
        step, minimum = (LIQUID_ML_STEP, LIQUID_ML_MIN) if f.form == LIQUID else (CREAM_STEP, CREAM_STEP)
        if not _multiple(amount, step, minimum):
            return None
        amount = Decimal(fmt_mg(amount))
        return Measure(amount, f.quantity_unit, f"{fmt_mg(amount)} {f.quantity_unit} of {strength} {f.strength_unit}")
    if f.form == DROPS:
        per_drop = f.strength_value if f.strength_unit == "mg/drop" else f.strength_value / f.drops_per_ml
        drops = dose_mg / per_drop
        if not _multiple(drops, Decimal(1), Decimal(1)):
            return None
        drops = drops.quantize(Decimal(1))
        noun = "drop" if drops == 1 else "drops"
        if f.strength_unit == "mg/drop":
            return Measure(drops, "drops", f"{drops} {noun} of {strength} mg/drop")
        text = f"{drops} {noun} of {strength} mg/mL ({_whole(f.drops_per_ml)} drops/mL)"
        return Measure(drops, "drops", text)
    return None  # eye drops: not systemic, never part of titration (domain.md 1.6)


def daily_units(dose_mg: Decimal, f: Formulation, *, allow_split: bool = False) -> Decimal | None:
    """How much of the dispensed quantity (in ``f.quantity_unit``) a day's dose uses; None if not deliverable.

    LDN is once daily, so this is one dose: capsules, tablets, troches, mL or g; drops are converted to mL.
    """
    m = measure(dose_mg, f, allow_split=allow_split)
    if m is None:
        return None
    if m.unit == "drops":
        return m.amount / f.drops_per_ml
    return m.amount


def total_mg(f: Formulation) -> Decimal:
    """mg of naltrexone dispensed: quantity x strength (mg/drop drops: mL x drops/mL x mg/drop)."""
    if f.form == EYE_DROPS:
        raise ValueError("Eye drops are not systemic LDN: they have no supply for titration (domain.md 1.6).")
    if f.strength_unit == "mg/drop":
        return f.quantity * f.drops_per_ml * f.strength_value
    return f.quantity * f.strength_value


def supply_days(f: Formulation, dose_mg: Decimal) -> int:
    """RX-2: days_supply = floor(quantity x strength / daily dose), in mg (whether the dose can be measured from
    this strength is measure()'s question; when it can, mg and units agree)."""
    check_dose(dose_mg)
    return int(total_mg(f) // dose_mg)


def _check_schedule_dose(dose_mg: Decimal) -> None:
    # 0 mg is allowed in a schedule: a pause, which uses nothing.
    if not isinstance(dose_mg, Decimal) or not dose_mg.is_finite() or not 0 <= dose_mg <= LDN_HARD_MAX_MG:
        raise ValueError(f"A scheduled dose is 0 to {fmt_mg(LDN_HARD_MAX_MG)} mg; got {dose_mg!r}.")


def supply_runs_out(f: Formulation, dispensed_on: date, schedule: Sequence[tuple[date, Decimal]]) -> date | None:
    """The first day, from ``dispensed_on``, whose dose the remaining supply cannot cover.

    ``schedule`` is (date the dose starts, mg per day); each dose lasts until the next one starts (same-day
    entries: the last one wins), and nothing is used before the first. None when the supply still covers the
    last dose 365 days after it starts (or after dispensing, if that is later), or the schedule is empty.
    """
    entries = sorted(schedule, key=lambda entry: entry[0])
    for _, dose_mg in entries:
        _check_schedule_dose(dose_mg)
    if not entries:
        return None
    left = total_mg(f)
    horizon = max(dispensed_on, entries[-1][0]) + timedelta(days=SUPPLY_HORIZON_DAYS)
    # A dose at a time rather than a day at a time (the worklist asks this of every active plan): from
    # ``day``, with ``left`` mg, a dose D runs out on the first k with D > left - k*D, k = left // D.
    day, dose_mg, i = dispensed_on, Decimal(0), 0
    while day < horizon:
        while i < len(entries) and entries[i][0] <= day:
            dose_mg = entries[i][1]
            i += 1
        until = min(entries[i][0], horizon) if i < len(entries) else horizon  # the next dose starts
        days = (until - day).days
        if dose_mg > 0:
            lasts = int(left // dose_mg)
            if lasts < days:
                return day + timedelta(days=lasts)
            left -= dose_mg * days
        day = until
    return None


def reorder_by(needed_on: date, lead_time_days: int = DEFAULT_LEAD_TIME_DAYS) -> date:
    """The day a new prescription must reach the pharmacy for the supply to be there on ``needed_on``."""
    if isinstance(lead_time_days, bool) or not isinstance(lead_time_days, int) or lead_time_days < 0:
        raise ValueError(f"A pharmacy lead time is a whole number of days, 0 or more; got {lead_time_days!r}.")
    return needed_on - timedelta(days=lead_time_days)


def rx_warnings(
    f: Formulation,
    dose_mg: Decimal,
    next_dose_mg: Decimal | None,
    supply_left_days: int,
    *,
    allow_split: bool = False,
) -> tuple[Reason, ...]:
    """RX-3: warn when under 7 days of supply are left, or the next step cannot be made from the dispensed
    strength. Also RX-2: the current dose itself cannot be given from it."""
    reasons = []
    where = describe(f)
    if measure(dose_mg, f, allow_split=allow_split) is None:
        why = ": eye drops are not systemic LDN" if f.form == EYE_DROPS else ""
        reasons.append(
            Reason("RX-2", f"the current dose {fmt_mg(dose_mg)} mg cannot be given from {where}{why} (RX-2)")
        )
    if supply_left_days <= 0:
        reasons.append(Reason("RX-3", "no supply left: a new prescription is needed now (RX-3)"))
    elif supply_left_days < SUPPLY_WARN_DAYS:
        days = "1 day" if supply_left_days == 1 else f"{supply_left_days} days"
        reasons.append(Reason("RX-3", f"only {days} of supply left: a new prescription is due (RX-3)"))
    if next_dose_mg is not None and measure(next_dose_mg, f, allow_split=allow_split) is None:
        text = f"the next step {fmt_mg(next_dose_mg)} mg cannot be made from {where}: a new strength or form is needed"
        reasons.append(Reason("RX-3", f"{text} (RX-3)"))
    return tuple(reasons)
