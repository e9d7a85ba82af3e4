"""Local reminder times to UTC across clock changes, and quiet hours (pure)."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from titration import schedule
from titration.schedule import in_quiet_hours, local_to_utc, outside_quiet_hours

LONDON, NEW_YORK = ZoneInfo("Europe/London"), ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("day", "at", "zone", "local_result"),
    [
        (dt.date(2026, 3, 29), dt.time(1, 30), LONDON, "2026-03-29 02:30+01:00"),  # in the gap: moves forward
        (dt.date(2026, 3, 8), dt.time(2, 30), NEW_YORK, "2026-03-08 03:30-04:00"),
        (dt.date(2026, 11, 1), dt.time(1, 30), NEW_YORK, "2026-11-01 01:30-04:00"),  # repeated: first one
        (dt.date(2026, 10, 25), dt.time(21, 0), LONDON, "2026-10-25 21:00+00:00"),
    ],
)
def test_one_instant_per_local_day_and_time_REM_2(day, at, zone, local_result):
    assert local_to_utc(day, at, zone).astimezone(zone).isoformat(" ", "minutes") == local_result


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (dt.time(21, 0), (dt.time(21, 0), 0)),
        (dt.time(23, 0), (dt.time(21, 45), 0)),  # an evening reminder stays on its evening
        (dt.time(6, 0), (dt.time(7, 0), 0)),
        (dt.time(22, 0), (dt.time(21, 45), 0)),
    ],
)
def test_quiet_hours_22_to_7(at, expected):
    assert outside_quiet_hours(at, dt.time(22, 0), dt.time(7, 0)) == expected


def test_quiet_hours_inside_one_day_and_none():
    assert in_quiet_hours(dt.time(13, 0), dt.time(12, 0), dt.time(14, 0))
    assert not in_quiet_hours(dt.time(14, 0), dt.time(12, 0), dt.time(14, 0))
    assert not in_quiet_hours(dt.time(3, 0), dt.time(0, 0), dt.time(0, 0))


@pytest.mark.parametrize(
    ("started", "min_days", "planned", "evening"),
    [
        (dt.date(2026, 3, 1), 7, dt.date(2026, 3, 8), dt.date(2026, 3, 8)),  # on time: its planned evening
        (dt.date(2026, 3, 4), 7, dt.date(2026, 3, 8), dt.date(2026, 3, 11)),  # started late: minimum days first
        (dt.date(2026, 3, 1), 14, dt.date(2026, 3, 8), dt.date(2026, 3, 15)),
    ],
)
def test_a_step_is_first_due_on_its_planned_evening_or_after_the_minimum_days_REM1(started, min_days, planned, evening):
    assert schedule.step_evening(started, min_days, planned) == evening


@pytest.mark.parametrize(
    ("today", "due"),
    [
        (dt.date(2026, 3, 6), dt.date(2026, 3, 8)),  # still to come
        (dt.date(2026, 3, 8), dt.date(2026, 3, 8)),  # tonight
        (dt.date(2026, 3, 9), dt.date(2026, 3, 15)),  # held past it: asked again a week on
        (dt.date(2026, 3, 15), dt.date(2026, 3, 15)),
        (dt.date(2026, 3, 16), dt.date(2026, 3, 22)),
    ],
)
def test_a_held_step_is_asked_about_again_every_seven_days_REM1(today, due):
    assert schedule.due_evening(dt.date(2026, 3, 8), today) == due
