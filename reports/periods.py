"""The from/to filter of an export: ISO dates (YYYY-MM-DD), both optional, from not after to."""

import datetime as dt
import re

from django.http import QueryDict

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class InvalidPeriod(ValueError):
    def __init__(self, messages: list[str]):
        super().__init__("; ".join(messages))
        self.messages = messages


def _date(query: QueryDict, name: str, errors: list[str]) -> dt.date | None:
    raw = query.get(name, "").strip()
    if not raw:
        return None
    if _ISO_DATE.fullmatch(raw):
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            pass
    shown = raw if len(raw) <= 40 else raw[:40] + "…"
    errors.append(f"“{name}” must be a date written as YYYY-MM-DD, for example 2026-01-31; got “{shown}”.")
    return None


def period(query: QueryDict) -> tuple[dt.date | None, dt.date | None]:
    errors: list[str] = []
    start, end = _date(query, "from", errors), _date(query, "to", errors)
    if start and end and start > end:
        errors.append(f"“from” ({start:%Y-%m-%d}) is after “to” ({end:%Y-%m-%d}).")
    if errors:
        raise InvalidPeriod(errors)
    return start, end
