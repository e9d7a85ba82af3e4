"""The one "today": the date on the calendar where the patient (or the clinic) is.

Dose steps, reminders, check-in weeks and outcome windows are all counted in the patient's own days.
The server runs in UTC, so at 23:30 UTC in British Summer Time it is already tomorrow in London, and
on the nights the clocks change a local day is 23 or 25 hours long. Never use ``date.today()``,
``timezone.localdate()`` or ``timezone.now().date()`` for a patient or a clinic: call these.
"""

import datetime as dt
import zoneinfo

from django.utils import timezone


def zone_today(zone: dt.tzinfo | str, now: dt.datetime | None = None) -> dt.date:
    """The date in ``zone`` (a tzinfo or an IANA name) at ``now`` (default: this moment)."""
    if isinstance(zone, str):
        zone = zoneinfo.ZoneInfo(zone)
    return (now or timezone.now()).astimezone(zone).date()


def patient_today(patient, now: dt.datetime | None = None) -> dt.date:
    """Today for this patient, in their own time zone (``patient.zone``)."""
    return zone_today(patient.zone, now)


def clinic_today(clinic, now: dt.datetime | None = None) -> dt.date:
    """Today at the clinic, in its time zone: for what belongs to the clinic (a licence, a report period)."""
    return zone_today(clinic.time_zone, now)
