"""How symptoms asks the apps above it for what it cannot know itself, without importing them.

The check-in page shows tonight's dose and the next step's date, which titration knows. Titration
registers a provider at start-up (titration.apps); symptoms calls whatever is registered.
"""

import datetime as dt
from collections.abc import Callable

_dose_providers: list[Callable] = []


def register_dose_provider(provider: Callable) -> None:
    if provider not in _dose_providers:
        _dose_providers.append(provider)


def dose_summary(patient, today: dt.date) -> dict | None:
    """{"tonight": "3.0 mg (2 capsules of 1.5 mg)", "next_step": date | None, "held": bool} or None."""
    for provider in _dose_providers:
        summary = provider(patient, today)
        if summary:
            return summary
    return None


_calendar_providers: list[Callable] = []


def register_calendar_provider(provider: Callable) -> None:
    if provider not in _calendar_providers:
        _calendar_providers.append(provider)


def calendar(patient, today: dt.date) -> dict:
    """{"doses": [(date, Decimal mg)], "events": [(date, "summary")]} from titration, or empty lists."""
    for provider in _calendar_providers:
        result = provider(patient, today)
        if result:
            return result
    return {"doses": [], "events": []}


_treatment_providers: list[Callable] = []


def register_treatment_provider(provider: Callable) -> None:
    if provider not in _treatment_providers:
        _treatment_providers.append(provider)


def treatment_dates(patient) -> dict:
    """{"first_dose": date | None, "maintenance_started": date | None} from titration.

    ``first_dose`` is the first night the patient took LDN (weeks on LDN for PRO-2, the BASE-1 window);
    ``maintenance_started`` is when the current run at the target dose began (RESP-1, EFF-1).
    """
    for provider in _treatment_providers:
        result = provider(patient)
        if result:
            return result
    return {"first_dose": None, "maintenance_started": None}
