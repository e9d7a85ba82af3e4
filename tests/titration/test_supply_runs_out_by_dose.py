"""supply_runs_out works a dose at a time; it must answer exactly as the day-by-day count it replaced
(RX-2, RX-3), over schedules of every shape: doses before and after dispensing, same-day changes,
pauses at 0 mg, supplies that outlast the horizon."""

import datetime as dt
import random
from decimal import Decimal

from titration import supply

D = Decimal


def day_by_day(f, dispensed_on, schedule):
    """The original definition: walk the days, take each day's dose while the supply covers it."""
    entries = sorted(schedule, key=lambda entry: entry[0])
    if not entries:
        return None
    left = supply.total_mg(f)
    horizon = max(dispensed_on, entries[-1][0]) + dt.timedelta(days=supply.SUPPLY_HORIZON_DAYS)
    day, dose, i = dispensed_on, D(0), 0
    while day < horizon:
        while i < len(entries) and entries[i][0] <= day:
            dose = entries[i][1]
            i += 1
        if dose > left:
            return day
        left -= dose
        day += dt.timedelta(days=1)
    return None


def test_runs_out_on_the_same_day_as_counting_day_by_day_RX2():
    rng = random.Random(20260601)
    doses = [D("0"), D("0.5"), D("1.0"), D("1.5"), D("2.0"), D("3.0"), D("4.5"), D("0.25")]
    start = dt.date(2026, 3, 1)
    for _ in range(1500):
        f = supply.Formulation(
            form="capsule",
            strength_value=rng.choice([D("0.5"), D("1.5"), D("4.5")]),
            strength_unit="mg/capsule",
            quantity=D(rng.choice([1, 7, 10, 30, 90, 365])),
            quantity_unit="capsules",
            days_supply=30,
        )
        schedule = [
            (start + dt.timedelta(days=rng.randint(-40, 120)), rng.choice(doses)) for _ in range(rng.randint(0, 6))
        ]
        dispensed = start + dt.timedelta(days=rng.randint(-20, 60))
        assert supply.supply_runs_out(f, dispensed, schedule) == day_by_day(f, dispensed, schedule), (
            f,
            dispensed,
            schedule,
        )
