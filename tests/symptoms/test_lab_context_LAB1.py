"""LAB-1: the baseline ESR (latest within 30 days before the first dose, not after it) and the week-12 ESR
(latest 70-98 days after it) shown next to the pain response. Pure: no database, no clock."""

import datetime as dt
from decimal import Decimal

import pytest

from symptoms.lab_context import EsrResult, esr_context

D = Decimal
MINUS = "\u2212"
FIRST_DOSE = dt.date(2026, 9, 15)
LATER = FIRST_DOSE + dt.timedelta(days=120)  # past the week-12 window


def esr(days: int, value="32", unit="mm/h", ref_high=None) -> EsrResult:
    """An ESR collected ``days`` after the first dose (negative: before it)."""
    return EsrResult(D(value), unit, FIRST_DOSE + dt.timedelta(days=days), D(ref_high) if ref_high else None)


@pytest.mark.parametrize(
    ("results", "baseline_day", "text"),
    [
        pytest.param(
            [esr(-30)], -30, "baseline ESR 32 mm/h (2026-08-16), 30 days before the first dose (2026-09-15)", id="30"
        ),
        pytest.param(
            [esr(-31, "28")],
            None,
            "no baseline ESR within 30 days before the first dose (2026-09-15); latest ESR 28 mm/h (2026-08-15) is "
            "31 days before the first dose, too early for a baseline",
            id="31",
        ),
        pytest.param([esr(0)], 0, "baseline ESR 32 mm/h (2026-09-15), on the day of the first dose", id="same-day"),
        pytest.param(
            [esr(1, "40")],
            None,
            "no baseline ESR within 30 days before the first dose (2026-09-15); ESRs taken after the first dose are "
            "not baselines",
            id="after",
        ),
        pytest.param([esr(-5, "12"), esr(-25, "40")], -5, "baseline ESR 12 mm/h (2026-09-10), 5 days", id="latest"),
        pytest.param([esr(-45, "9"), esr(-2, "31"), esr(3, "50")], -2, "baseline ESR 31 mm/h", id="ignores-others"),
        pytest.param(
            [esr(-45, "28"), esr(14, "50")],
            None,
            "latest ESR 28 mm/h (2026-08-01) is 45 days before the first dose, too early for a baseline",
            id="older-and-after",
        ),
        pytest.param(
            [], None, "no baseline ESR within 30 days before the first dose (2026-09-15); no ESR on file", id="none"
        ),
        pytest.param([esr(-1, "7.500")], -1, "baseline ESR 7.5 mm/h (2026-09-14), 1 day before", id="decimals"),
        pytest.param(
            [esr(-3, "45", ref_high="20")],
            -3,
            "3 days before the first dose (2026-09-15), above the lab's upper limit of 20 mm/h",
            id="above-range",
        ),
    ],
)
def test_baseline_esr_is_the_latest_within_30_days_before_first_dose_LAB1(results, baseline_day, text):
    context = esr_context(results, first_dose=FIRST_DOSE, today=LATER)
    expected = None if baseline_day is None else FIRST_DOSE + dt.timedelta(days=baseline_day)
    assert (context.baseline.collected_on if context.baseline else None) == expected
    assert text in context.baseline_text


def test_same_day_esrs_the_later_one_in_collection_order_is_the_baseline_LAB1():
    context = esr_context([esr(-4, "20"), esr(-4, "24")], first_dose=FIRST_DOSE, today=LATER)
    assert context.baseline.value == D("24")


def test_no_first_dose_yet_means_no_baseline_but_the_latest_esr_is_named_LAB1():
    context = esr_context([esr(-60, "18"), esr(-10, "22")], first_dose=None, today=FIRST_DOSE)
    assert context.baseline is None and context.week_12 is None and context.change is None
    assert context.baseline_text == "no baseline ESR yet: no first dose recorded; latest ESR 22 mm/h (2026-09-05)"
    assert context.week_12_text == ""
    assert esr_context([], first_dose=None, today=FIRST_DOSE).baseline_text == (
        "no baseline ESR yet: no first dose recorded"
    )


def test_an_esr_dated_after_today_is_not_read_LAB1():
    today = FIRST_DOSE - dt.timedelta(days=10)
    context = esr_context([esr(-20, "30"), esr(-5, "99")], first_dose=FIRST_DOSE, today=today)
    assert context.baseline.value == D("30")


@pytest.mark.parametrize(
    ("results", "week_12_day", "change", "text"),
    [
        pytest.param(
            [esr(-5, "32"), esr(84, "20")],
            84,
            D("-12"),
            f"week-12 ESR 20 mm/h (2026-12-08), day 84 after the first dose: {MINUS}12 mm/h from baseline",
            id="fall",
        ),
        pytest.param([esr(-5, "10"), esr(70, "13")], 70, D(3), "day 70 after the first dose: +3 mm/h", id="day-70"),
        pytest.param([esr(-5, "10"), esr(98, "10")], 98, D(0), "day 98 after the first dose: 0 mm/h", id="day-98"),
        pytest.param(
            [esr(-5), esr(69, "5"), esr(99, "6")],
            None,
            None,
            "no week-12 ESR: none collected 2026-11-24 to 2026-12-22, 70-98 days after the first dose",
            id="69-and-99",
        ),
        pytest.param([esr(-5), esr(75, "30"), esr(90, "25")], 90, D(-7), f"{MINUS}7 mm/h", id="latest-in-window"),
        pytest.param(
            [esr(-40), esr(84, "20")], 84, None, "day 84 after the first dose: no baseline ESR to compare", id="no-base"
        ),
        pytest.param(
            [esr(-5, "32"), esr(84, "20", unit="mm/hr")],
            84,
            None,
            "not compared, the units differ (mm/h at baseline, mm/hr now)",
            id="units-differ",
        ),
        pytest.param([esr(-5, "32"), esr(84, "20", unit="MM/H")], 84, D(-12), "", id="unit-case-insensitive"),
    ],
)
def test_week_12_esr_is_the_latest_70_to_98_days_after_first_dose_LAB1(results, week_12_day, change, text):
    context = esr_context(results, first_dose=FIRST_DOSE, today=LATER)
    expected = None if week_12_day is None else FIRST_DOSE + dt.timedelta(days=week_12_day)
    assert (context.week_12.collected_on if context.week_12 else None) == expected
    assert context.change == change
    assert text in context.week_12_text


@pytest.mark.parametrize(
    ("today_day", "text"),
    [
        (30, "week-12 ESR due 2026-11-24 to 2026-12-22, 70-98 days after the first dose"),
        (80, "no week-12 ESR yet: due 2026-11-24 to 2026-12-22"),
        (98, "no week-12 ESR yet: due"),
        (99, "no week-12 ESR: none collected 2026-11-24 to 2026-12-22"),
    ],
)
def test_week_12_esr_not_yet_taken_says_when_it_is_due_LAB1(today_day, text):
    today = FIRST_DOSE + dt.timedelta(days=today_day)
    assert text in esr_context([esr(-5)], first_dose=FIRST_DOSE, today=today).week_12_text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"value": 32.0},  # a float would carry binary error into the display
        {"value": D("-1")},
        {"collected_on": dt.datetime(2026, 9, 1, 9, tzinfo=dt.UTC)},  # a datetime, not the patient's local date
    ],
)
def test_bad_esr_inputs_are_refused_LAB1(kwargs):
    fields = {"value": D("32"), "unit": "mm/h", "collected_on": dt.date(2026, 9, 1), **kwargs}
    with pytest.raises(ValueError):
        EsrResult(**fields)
