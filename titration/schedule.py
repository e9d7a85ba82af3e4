"""Pure time rules for reminders: a patient's local wall-clock time to a UTC instant, across daylight
saving changes, and quiet hours. No ORM, no clock."""

import datetime as dt
from zoneinfo import ZoneInfo

UTC = dt.UTC


def local_to_utc(day: dt.date, at: dt.time, zone: ZoneInfo) -> dt.datetime:
    """The UTC instant of ``at`` on ``day`` in ``zone``.

    On the day clocks go forward a wall time in the gap does not exist: it moves forward by the gap
    (01:30 becomes 02:30 in London). On the day clocks go back a repeated wall time is taken at its
    first occurrence. Either way there is exactly one instant per (day, time).
    """
    # fold=0 gives both behaviours: a gap time is read with the offset before the change (so it lands
    # after the jump), and a repeated time is its first occurrence.
    return dt.datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def in_quiet_hours(at: dt.time, start: dt.time, end: dt.time) -> bool:
    """Quiet hours may cross midnight (22:00-07:00)."""
    if start == end:
        return False
    if start < end:
        return start <= at < end
    return at >= start or at < end


def outside_quiet_hours(at: dt.time, start: dt.time, end: dt.time) -> tuple[dt.time, int]:
    """Move a reminder time out of quiet hours: an evening time moves to just before quiet hours start
    (same evening: a 'tonight' reminder must arrive tonight); a night or morning time moves to when quiet
    hours end. Returns the time and the day offset (0 or 1)."""
    if not in_quiet_hours(at, start, end):
        return at, 0
    if at >= dt.time(12, 0) and start >= dt.time(12, 0):
        before = (dt.datetime.combine(dt.date(2000, 1, 1), start) - dt.timedelta(minutes=15)).time()
        return before, 0
    return end, (1 if at >= dt.time(12, 0) else 0)


def step_evening(current_started: dt.date, min_days: int, following_planned: dt.date) -> dt.date:
    """REM-1 and 1.3's minimum days: the first evening the next step may be taken, its planned date, or
    later when the current step started late."""
    return max(following_planned, current_started + dt.timedelta(days=min_days))


def due_evening(evening: dt.date, today: dt.date) -> dt.date:
    """REM-1: a step whose evening has passed without a step-up (held) is asked about again every 7 days,
    so it is due on the next of those evenings on or after ``today``."""
    if evening >= today:
        return evening
    return evening + dt.timedelta(weeks=-(-(today - evening).days // 7))
