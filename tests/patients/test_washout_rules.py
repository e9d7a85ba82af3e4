"""Washout dates (OPI-W1, OPI-W2): table-driven, no database."""

from datetime import date

import pytest

from patients.rules import WashoutError, earliest_safe_start

LAST = date(2026, 3, 1)


@pytest.mark.parametrize(
    ("washout_days", "expected"),
    [(10, date(2026, 3, 11)), (14, date(2026, 3, 15))],
)
def test_earliest_start_is_last_dose_plus_washout_OPI_W1(washout_days, expected):
    washout = earliest_safe_start(last_dose=LAST, washout_days=washout_days)
    assert washout.earliest_start == expected
    assert washout.days == washout_days
    assert not washout.elapsed(expected.replace(day=expected.day - 1))
    assert washout.elapsed(expected)


def test_an_unidentified_opioid_gives_no_date_and_says_to_identify_it_OPI_W1():
    washout = earliest_safe_start(last_dose=None, washout_days=None, washout_group="")
    assert washout.earliest_start is None and washout.days is None
    assert "which opioid" in washout.reason and "depot" not in washout.reason and "manually" in washout.reason
    assert not washout.elapsed(date(2030, 1, 1))


def test_depot_gives_no_date_and_needs_a_prescriber_OPI_W1():
    washout = earliest_safe_start(last_dose=LAST, washout_days=None)
    assert washout.earliest_start is None
    assert "manually" in washout.reason
    assert not washout.elapsed(date(2030, 1, 1))


def test_unknown_last_dose_gives_no_date_and_says_so_OPI_W1():
    washout = earliest_safe_start(last_dose=None, washout_days=10)
    assert washout.earliest_start is None
    assert "unknown" in washout.reason
    assert not washout.elapsed(date(2030, 1, 1))


def test_prescriber_may_shorten_to_seven_days_with_a_reason_OPI_W2():
    washout = earliest_safe_start(last_dose=LAST, washout_days=14, shortened_to=7, shortened_reason="negative UDS")
    assert washout.earliest_start == date(2026, 3, 8)
    assert "negative UDS" in washout.reason


@pytest.mark.parametrize(
    ("shortened_to", "reason", "message"),
    [(6, "urgent", "shorter than 7"), (15, "x", "not shorter"), (7, "  ", "reason")],
)
def test_shortening_below_seven_or_without_reason_is_refused_OPI_W2(shortened_to, reason, message):
    with pytest.raises(WashoutError, match=message):
        earliest_safe_start(last_dose=LAST, washout_days=14, shortened_to=shortened_to, shortened_reason=reason)
