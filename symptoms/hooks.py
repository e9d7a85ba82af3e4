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
