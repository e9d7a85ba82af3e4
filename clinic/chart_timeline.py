"""The chart's timeline: who changed what, when and why, newest first, 90 days at a time. Reads only.

Changes come from django-simple-history's rows (``history_user``, ``history_date``,
``history_change_reason``) of the patient's record, conditions, medications, flags, tasks, labs,
prescriptions, plans and steps; events come from their own rows: safety gate events (who, the
override reason), check-ins with their side effects, and reminders that were sent, failed or cancelled.

A change row shows what changed against the object's previous version, read in the same query (the
version before it, beside it), and rows that changed nothing shown (the nightly opioid sweep re-saves
open flags to refresh their evaluation time) are left out in SQL. One statement for every source of a
window (clinic/chart_timeline_sql.py), whatever the amount of history; the values come back through JSON
and ``_value`` gives them the types the fields have.
"""

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

from django.db import connection
from django.utils.text import capfirst

from patients.flag_models import ClinicianTask, ConflictFlag, SafetyGateEvent
from patients.models import LabResult, MedicationStatement, Patient, PatientCondition
from symptoms.models import SideEffectReport, SymptomCheckIn
from symptoms.rules import number
from titration.models import CompoundedPrescription, TitrationPlan, TitrationStep
from titration.reminder_models import Reminder, ReminderStatus
from titration.rules import fmt_mg

from .chart_timeline_sql import CHECKIN_FIELDS, REMINDER_FIELDS, SIDE_EFFECT_FIELDS, timeline_sql

WINDOW_DAYS = 90
PER_SOURCE = 300  # a bound on one window's rows from one source
SYSTEM = "system"
ACTIONS = {"+": "added", "~": "changed", "-": "deleted"}


@dataclass(frozen=True)
class Entry:
    when: dt.datetime
    kind: str  # what the row is about: "Step", "Check-in", "Reminder"...
    title: str
    action: str  # added, changed, archived, sent, failed, blocked...
    details: tuple[str, ...]
    who: str
    why: str
    tone: str = ""  # "", "warn" or "danger"


@dataclass(frozen=True)
class Timeline:
    entries: tuple[Entry, ...]
    start: dt.date  # the window's first day (patient's dates)
    end: dt.date | None  # the day after its last; None: up to now
    older_before: dt.date | None  # the next window's ``before``, when anything older may exist
    days: int = WINDOW_DAYS
    per_source: int = PER_SOURCE
    truncated: tuple[str, ...] = ()  # sources with more than PER_SOURCE rows in the window: the newest shown


def _who(user) -> str:
    if user is None:
        return SYSTEM
    return user.get_full_name() or user.username


def _shown(model, name: str, value, zone) -> str:
    if value is None or value == "":
        return "—"
    f = model._meta.get_field(name)
    if f.choices:
        return str(dict(f.flatchoices).get(value, value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return f"{fmt_mg(value)} mg" if name.endswith("_mg") else number(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    text = str(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _label(model, name: str) -> str:
    return capfirst(str(model._meta.get_field(name).verbose_name).removesuffix(" mg"))


@dataclass(frozen=True)
class Source:
    kind: str
    model: type
    fields: tuple[str, ...]  # what a change shows, old -> new
    lookup: str  # SQL over the history table ``h``, one %s: the patient's id
    title: Callable[[object], str]
    tone: Callable[[object], str] = lambda row: ""
    extra: tuple[str, ...] = ()  # the other columns ``title`` and ``tone`` read


BY_PATIENT = "h.patient_id = %s"


def _rx_title(row) -> str:
    return f"LDN {number(row.strength_value)} {row.strength_unit} {row.get_form_display().lower()}"


def _flag_tone(row) -> str:
    return "danger" if row.kind in ("conflict", "unavailable") and row.status == "open" else ""


SOURCES = (
    Source(
        "Patient",
        Patient,
        (
            "status",
            "discontinued_reason",
            "first_name",
            "last_name",
            "date_of_birth",
            "mrn",
            "dose_time",
            "time_zone",
            "reminders_by_email",
            "reminders_by_sms",
            "nightly_dose_reminders",
            "reminder_time",
            "quiet_hours_start",
            "quiet_hours_end",
            "severe_hepatic_impairment",
            "deleted_at",
        ),
        "h.id = %s",
        lambda row: "Patient record",
    ),
    Source(
        "Condition",
        PatientCondition,
        ("condition", "diagnosed_on", "deleted_at"),
        BY_PATIENT,
        lambda row: row.get_condition_display(),
    ),
    Source(
        "Medication",
        MedicationStatement,
        ("name", "dose", "route", "release", "start_date", "last_dose_date", "source", "deleted_at"),
        BY_PATIENT,
        lambda row: row.name,
    ),
    Source(
        "Flag",
        ConflictFlag,
        (
            "status",
            "acknowledged_reason",
            "expires_at",
            "shortened_washout_days",
            "last_dose_date",
            "earliest_safe_start",
            "resolved_reason",
        ),
        BY_PATIENT,
        lambda row: f"{row.get_kind_display()}: {row.medication_text}",
        _flag_tone,
        ("kind", "medication_text"),
    ),
    Source(
        "Task",
        ClinicianTask,
        ("status", "due_on", "completed_note"),
        BY_PATIENT,
        lambda row: row.title,
        extra=("title",),
    ),
    Source(
        "Lab",
        LabResult,
        ("value", "unit", "result", "ref_low", "ref_high", "collected_at", "deleted_at"),
        BY_PATIENT,
        lambda row: row.test_name or row.get_test_display(),
        extra=("test", "test_name"),
    ),
    Source(
        "Prescription",
        CompoundedPrescription,
        ("status", "strength_value", "quantity", "days_supply", "refills", "sig", "start_on", "deleted_at"),
        BY_PATIENT,
        _rx_title,
        extra=("strength_unit", "form"),
    ),
    Source(
        "Plan",
        TitrationPlan,
        ("status", "target_dose_mg", "start_date", "deleted_at"),
        BY_PATIENT,
        lambda row: f"Plan to {fmt_mg(row.target_dose_mg)} mg from {row.start_date.isoformat()}",
    ),
    Source(
        "Step",
        TitrationStep,
        ("status", "dose_mg", "planned_start", "actual_start", "min_days", "sequence", "deleted_at"),
        # Every plan the patient ever had, archived ones too (their steps' history is still the record's).
        f"h.plan_id IN (SELECT p.id FROM {TitrationPlan._meta.db_table} p WHERE p.patient_id = %s)",  # noqa: S608
        lambda row: f"Step {row.sequence}: {fmt_mg(row.dose_mg)} mg",
        lambda row: "warn" if row.status in ("held", "stepped_back") else "",
    ),
)


def _instant(value) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)  # SQLite keeps UTC without an offset


def _value(field, value):
    """A value read through JSON (``_history_sql``) as the field holds it, the way the ORM would give it."""
    if value is None:
        return None
    kind = field.get_internal_type()
    if kind == "BooleanField":
        return bool(value)  # true/false, or SQLite's 1/0
    if kind == "DateTimeField":
        return _instant(value)
    if kind == "DateField":
        return dt.date.fromisoformat(value[:10])
    if kind == "TimeField":
        return dt.time.fromisoformat(value)
    if kind == "DecimalField":
        return Decimal(value).quantize(Decimal(1).scaleb(-field.decimal_places))
    if kind.endswith("IntegerField"):
        return int(value)
    return value


def _json(value):
    if value is None:
        return {}
    if isinstance(value, str | bytes):  # Django loads jsonb as text; SQLite gives text
        return json.loads(value, parse_float=Decimal)
    return value


def _state(source: Source, row, zone) -> tuple[str, ...]:
    """What a new row says, in a line: its tracked fields that have a value."""
    parts = []
    for name in source.fields:
        value = getattr(row, name)
        if name == "deleted_at" or value in (None, "", False):
            continue
        parts.append(f"{_label(source.model, name)}: {_shown(source.model, name, value, zone)}")
    return ("; ".join(parts),) if parts else ()


def _read(
    patient: Patient, since: dt.datetime, until: dt.datetime | None
) -> tuple[list[list[Entry]], dt.datetime | None]:
    """Each source's entries in the window, newest first, and the patient's first check-in: one
    statement for all of them (``chart_timeline_sql``)."""
    statement, wanted = timeline_sql(connection.vendor, until is not None, SOURCES)
    ops = connection.ops
    given = {
        "patient": patient.pk,
        "since": ops.adapt_datetimefield_value(since),
        "until": ops.adapt_datetimefield_value(until) if until is not None else None,
        "limit": PER_SOURCE,
    }
    with connection.cursor() as cursor:
        cursor.execute(statement, [given[name] for name in wanted])
        rows = cursor.fetchall()
    zone = patient.zone
    readers = [*(partial(_change, source) for source in SOURCES), _gate, _checkin, _reminder]
    batches: list[list[Entry]] = [[] for _ in readers]
    first_checkin = None
    for index, _, at, history_type, why, user_id, now, then, extra, _, first, last, username in rows:
        if index == len(readers):
            first_checkin = _instant(at) if at is not None else None
            continue
        who = SYSTEM if user_id is None else (f"{first or ''} {last or ''}".strip() or username or SYSTEM)
        entry = readers[index](_instant(at), history_type, why or "", who, _json(now), _json(then), _json(extra), zone)
        batches[index].append(entry)
    return batches, first_checkin


def _fields(model, values: dict, names) -> dict:
    meta = model._meta
    return {name: _value(meta.get_field(name), values.get(meta.get_field(name).column)) for name in names}


def _change(source: Source, when, history_type, why, who, now, then, extra, zone) -> Entry:
    history = source.model.history.model
    current, before = _fields(history, now, source.fields), _fields(history, then, source.fields)
    version = history(**current, **_fields(history, extra, source.extra))
    if history_type == "~":
        details = tuple(
            f"{_label(source.model, name)}: "
            f"{_shown(source.model, name, before[name], zone)} → "
            f"{_shown(source.model, name, current[name], zone)}"
            for name in source.fields
            if current[name] != before[name]
        )
        archived = "deleted_at" in source.fields and current["deleted_at"] and not before["deleted_at"]
        action = "archived" if archived else "changed"
    else:
        details = _state(source, version, zone) if history_type == "+" else ()
        action = ACTIONS.get(history_type, history_type)
    return Entry(when, source.kind, source.title(version), action, details, who, why, source.tone(version))


def _gate(when, _type, why, who, values, *_) -> Entry:
    event = SafetyGateEvent(**_fields(SafetyGateEvent, values, ("action", "outcome", "summary")))
    return Entry(
        when=when,
        kind="Safety gate",
        title=event.get_action_display(),
        action=event.get_outcome_display().lower(),
        details=(event.summary,),
        who=who,
        why=why,
        tone="danger" if event.outcome == "blocked" else "warn",
    )


def _checkin(when, _type, why, _who, values, reports, *_) -> Entry:
    c = SymptomCheckIn(**_fields(SymptomCheckIn, values, CHECKIN_FIELDS))
    scores = ", ".join(
        f"{label} {'–' if value is None else value}"
        for label, value in (("pain", c.pain), ("fatigue", c.fatigue), ("sleep", c.sleep_quality), ("mood", c.mood))
    )
    effects = [SideEffectReport(**_fields(SideEffectReport, e, SIDE_EFFECT_FIELDS)) for e in reports or ()]
    effects.sort(key=lambda e: (-e.severity, e.effect))
    details = [f"Scores: {scores}"]
    for e in effects:
        since_text = f", since {e.started_on.isoformat()}" if e.started_on else ""
        what = f" ({e.description})" if e.description else ""
        details.append(f"Side effect: {e.get_effect_display()}{what}: {e.get_severity_display().lower()}{since_text}")
    if c.took_dose_as_prescribed is False or c.nights_missed:
        details.append(f"Dose not taken as prescribed; nights missed: {c.nights_missed}")
    if c.opioid_use != "no":
        details.append(f"Opioid-containing medicine since the last check-in: {c.get_opioid_use_display().lower()}")
    worst = max((e.severity for e in effects), default=0)
    tone = "danger" if worst >= 3 or c.opioid_use == "yes" else "warn" if worst == 2 else ""
    return Entry(when, "Check-in", "Weekly check-in", "recorded", tuple(details), "patient", why, tone)


def _reminder(when, _type, _why, _who, values, *_) -> Entry:
    r = Reminder(**_fields(Reminder, values, REMINDER_FIELDS))
    if r.status == ReminderStatus.SENT:
        details, why = ((r.subject,) if r.subject else ()), ""
    elif r.status == ReminderStatus.FAILED:
        details, why = (f"after {r.attempts} attempt{'s' if r.attempts != 1 else ''}",), r.last_error
    else:
        details, why = (), r.cancelled_reason
    return Entry(
        when=when,
        kind="Reminder",
        title=f"{r.get_kind_display()} by {r.get_channel_display().lower()} for {r.local_date.isoformat()}",
        action=r.get_status_display().lower(),
        details=details,
        who=SYSTEM,
        why=why,
        tone="warn" if r.status == ReminderStatus.FAILED else "",
    )


def _midnight(day: dt.date, zone) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=zone)


def timeline(patient: Patient, *, today: dt.date, before: dt.date | None = None) -> Timeline:
    """The window of WINDOW_DAYS days ending before ``before`` (a patient-local date), or ending now."""
    zone = patient.zone
    end = before if before is not None and before <= today else None
    last_day = (end - dt.timedelta(days=1)) if end else today
    start = last_day - dt.timedelta(days=WINDOW_DAYS - 1)
    since, until = _midnight(start, zone), (_midnight(end, zone) if end else None)
    batches, first_checkin = _read(patient, since, until)
    truncated = tuple(batch[0].kind for batch in batches if len(batch) >= PER_SOURCE)
    entries = sorted((e for batch in batches for e in batch), key=lambda e: e.when, reverse=True)
    # Nothing in the record is older than the patient's own first row, except check-ins entered for
    # earlier dates: the window goes back as far as either.
    earliest = min(t for t in (patient.created_at, first_checkin) if t is not None).astimezone(zone).date()
    return Timeline(
        tuple(entries), start, end, start if earliest < start else None, truncated=truncated, per_source=PER_SOURCE
    )
