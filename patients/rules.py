"""Pure washout rules (domain.md 2.2: OPI-W1, OPI-W2). No ORM, no clock: pass ``today``."""

from dataclasses import dataclass
from datetime import date, timedelta

MINIMUM_WASHOUT_DAYS = 7  # OPI-W2: a prescriber may shorten to this, never below
DEPOT = "depot or implant: no automatic date; a prescriber must clear it manually (OPI-W1)"
UNIDENTIFIED = (
    "which opioid, and so its washout and last dose, is not known: no automatic date. Ask the patient and "
    "record the medicine, or a prescriber clears this manually (OPI-W1)"
)


class WashoutError(ValueError):
    pass


@dataclass(frozen=True)
class Washout:
    earliest_start: date | None
    days: int | None
    reason: str

    def elapsed(self, today: date) -> bool:
        """True only when a date exists and has been reached; an unknown date never elapses."""
        return self.earliest_start is not None and today >= self.earliest_start


def earliest_safe_start(
    *,
    last_dose: date | None,
    washout_days: int | None,
    shortened_to: int | None = None,
    shortened_reason: str = "",
    washout_group: str = "depot",
) -> Washout:
    """OPI-W1: last dose + the slowest ingredient's washout. OPI-W2: a prescriber may shorten to >= 7 days.

    No washout (washout_days None) or an unknown last dose gives no date, and says why: a depot or
    implant (washout group "depot"), or an opioid not identified (no group: a positive urine drug
    screen names no medicine).
    """
    if washout_days is None:
        return Washout(None, None, DEPOT if washout_group == "depot" else UNIDENTIFIED)
    if shortened_to is not None:
        if shortened_to < MINIMUM_WASHOUT_DAYS:
            raise WashoutError(f"A washout cannot be shorter than {MINIMUM_WASHOUT_DAYS} days (OPI-W2).")
        if shortened_to > washout_days:
            raise WashoutError(f"{shortened_to} days is not shorter than the {washout_days}-day washout.")
        if not shortened_reason.strip():
            raise WashoutError("Give the reason for shortening the washout (OPI-W2).")
        days, reason = shortened_to, f"shortened by a prescriber to {shortened_to} days: {shortened_reason.strip()}"
    else:
        days, reason = washout_days, f"{washout_days}-day washout after the last dose (OPI-W1)"
    if last_dose is None:
        return Washout(None, days, "last dose date unknown: no earliest start date can be given; ask the patient")
    return Washout(last_dose + timedelta(days=days), days, reason)
