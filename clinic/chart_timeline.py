"""The chart's timeline: who changed what, when and why, newest first, 90 days at a time. Reads only.

Changes come from django-simple-history's rows (``history_user``, ``history_date``,
``history_change_reason``) of the patient's record, conditions, medications, flags, tasks, labs,
prescriptions, plans and steps; events come from their own rows: safety gate events (who, the
override reason), check-ins with their side effects, and reminders that were sent, failed or cancelled.

A change row shows what changed against the object's previous version, read in the same query (a
correlated subquery per field), and rows that changed nothing shown (the nightly opioid sweep re-saves
open flags to refresh their evaluation time) are left out in SQL. One query per source per window,
whatever the amount of history.
"""

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from django.db import connection
from django.db.models import Min, Q
from django.utils.text import capfirst

from patients.flag_models import ClinicianTask, ConflictFlag, SafetyGateEvent
from patients.models import LabResult, MedicationStatement, Patient, PatientCondition, User
from symptoms.models import SymptomCheckIn
from symptoms.rules import number
from titration.models import CompoundedPrescription, TitrationPlan, TitrationStep
from titration.reminder_models import Reminder, ReminderStatus
from titration.rules import fmt_mg

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


@cache
def _history_sql(vendor: str, bounded: bool) -> str:
    """One statement for every source's changes in a window: per source, each version beside the one
    before it (LAG over the object's versions, so the previous one may lie before the window), the saves
    that changed nothing shown left out, the newest PER_SOURCE kept; then who made each.

    Each version's tracked fields travel as one JSON object (``c``, the previous version's ``p``, and ``x``
    the columns the title reads), so the sources line up in one UNION ALL and the planner has one
    expression to compare instead of one per field (planning the per-field form took longer than running
    it). ``_value`` turns the JSON back into what the field holds. Built once per process: the statement
    depends on the models only; the patient, the window and the limit are parameters."""
    build, none = ("jsonb_build_object", "CAST(NULL AS jsonb)") if vendor == "postgresql" else ("json_object", "NULL")
    parts = []
    for index, source in enumerate(SOURCES):
        history = source.model.history.model

        def obj(names, history=history):
            pairs = (f"'{name}', h.{history._meta.get_field(name).column}" for name in names)
            return f"{build}({', '.join(pairs)})" if names else none

        until = " AND v.history_date < %s" if bounded else ""
        parts.append(
            f"SELECT * FROM (SELECT {index} AS src, v.* FROM ("  # noqa: S608
            "SELECT h.history_id, h.history_date, h.history_type, h.history_change_reason, h.history_user_id,"
            f" {obj(source.fields)} AS c, LAG({obj(source.fields)}) OVER w AS p, {obj(source.extra)} AS x"
            f" FROM {history._meta.db_table} h WHERE {source.lookup}"
            " WINDOW w AS (PARTITION BY h.id ORDER BY h.history_date, h.history_id)) v"
            f" WHERE v.history_date >= %s{until} AND (v.history_type <> '~'"
            " OR COALESCE(v.history_change_reason, '') <> '' OR v.p IS NULL OR v.c <> v.p)"
            f" ORDER BY v.history_date DESC, v.history_id DESC LIMIT %s) s{index}"
        )
    union = " UNION ALL ".join(parts)
    users = User._meta.db_table
    return (
        f"SELECT t.*, u.first_name, u.last_name, u.username FROM ({union}) t"  # noqa: S608
        f" LEFT JOIN {users} u ON u.id = t.history_user_id ORDER BY t.src, t.history_date DESC, t.history_id DESC"
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


def _json(value) -> dict:
    if value is None:
        return {}
    if isinstance(value, str | bytes):  # Django loads jsonb as text; SQLite gives text
        return json.loads(value, parse_float=Decimal)
    return value


def _history_batches(patient: Patient, since: dt.datetime, until: dt.datetime | None) -> list[list[Entry]]:
    """Each source's change entries in the window, newest first (one query for all of them)."""
    ops = connection.ops
    params = []
    for _ in SOURCES:
        params += [patient.pk, ops.adapt_datetimefield_value(since)]
        if until is not None:
            params.append(ops.adapt_datetimefield_value(until))
        params.append(PER_SOURCE)
    with connection.cursor() as cursor:
        cursor.execute(_history_sql(connection.vendor, until is not None), params)
        rows = cursor.fetchall()
    zone = patient.zone
    batches: list[list[Entry]] = [[] for _ in SOURCES]
    for index, _, when, history_type, reason, user_id, now, then, extra, first, last, username in rows:
        source = SOURCES[index]
        meta = source.model.history.model._meta
        now, then, extra = _json(now), _json(then), _json(extra)
        current = {name: _value(meta.get_field(name), now.get(meta.get_field(name).column)) for name in source.fields}
        before = {name: _value(meta.get_field(name), then.get(meta.get_field(name).column)) for name in source.fields}
        shown = {name: _value(meta.get_field(name), extra.get(meta.get_field(name).column)) for name in source.extra}
        version = source.model.history.model(**current, **shown)
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
        who = SYSTEM if user_id is None else (f"{first or ''} {last or ''}".strip() or username or SYSTEM)
        batches[index].append(
            Entry(
                when=_instant(when),
                kind=source.kind,
                title=source.title(version),
                action=action,
                details=details,
                who=who,
                why=reason or "",
                tone=source.tone(version),
            )
        )
    return batches


def _state(source: Source, row, zone) -> tuple[str, ...]:
    """What a new row says, in a line: its tracked fields that have a value."""
    parts = []
    for name in source.fields:
        value = getattr(row, name)
        if name == "deleted_at" or value in (None, "", False):
            continue
        parts.append(f"{_label(source.model, name)}: {_shown(source.model, name, value, zone)}")
    return ("; ".join(parts),) if parts else ()


def _gate_entries(patient: Patient, since, until) -> list[Entry]:
    rows = SafetyGateEvent.objects.filter(patient_id=patient.pk, created_at__gte=since)
    if until:
        rows = rows.filter(created_at__lt=until)
    return [
        Entry(
            when=event.created_at,
            kind="Safety gate",
            title=event.get_action_display(),
            action=event.get_outcome_display().lower(),
            details=(event.summary,),
            who=_who(event.actor),
            why=event.reason,
            tone="danger" if event.outcome == "blocked" else "warn",
        )
        for event in rows.select_related("actor").order_by("-created_at", "-pk")[:PER_SOURCE]
    ]


def _checkin_entries(patient: Patient, since, until) -> list[Entry]:
    rows = SymptomCheckIn.objects.filter(patient_id=patient.pk, recorded_at__gte=since)
    if until:
        rows = rows.filter(recorded_at__lt=until)
    entries = []
    for c in rows.prefetch_related("side_effects").order_by("-recorded_at", "-pk")[:PER_SOURCE]:
        scores = ", ".join(
            f"{label} {'–' if value is None else value}"
            for label, value in (("pain", c.pain), ("fatigue", c.fatigue), ("sleep", c.sleep_quality), ("mood", c.mood))
        )
        effects = sorted(c.side_effects.all(), key=lambda e: (-e.severity, e.effect))
        details = [f"Scores: {scores}"]
        for e in effects:
            since_text = f", since {e.started_on.isoformat()}" if e.started_on else ""
            what = f" ({e.description})" if e.description else ""
            details.append(
                f"Side effect: {e.get_effect_display()}{what}: {e.get_severity_display().lower()}{since_text}"
            )
        if c.took_dose_as_prescribed is False or c.nights_missed:
            details.append(f"Dose not taken as prescribed; nights missed: {c.nights_missed}")
        if c.opioid_use != "no":
            details.append(f"Opioid-containing medicine since the last check-in: {c.get_opioid_use_display().lower()}")
        worst = max((e.severity for e in effects), default=0)
        tone = "danger" if worst >= 3 or c.opioid_use == "yes" else "warn" if worst == 2 else ""
        entries.append(
            Entry(
                when=c.recorded_at,
                kind="Check-in",
                title="Weekly check-in",
                action="recorded",
                details=tuple(details),
                who="patient",
                why=c.notes,
                tone=tone,
            )
        )
    return entries


def _reminder_entries(patient: Patient, since, until) -> list[Entry]:
    sent = Q(status=ReminderStatus.SENT, sent_at__gte=since) & (Q(sent_at__lt=until) if until else Q())
    other = Q(status__in=[ReminderStatus.FAILED, ReminderStatus.CANCELLED], updated_at__gte=since) & (
        Q(updated_at__lt=until) if until else Q()
    )
    rows = Reminder.objects.filter(Q(patient_id=patient.pk) & (sent | other)).order_by("-updated_at", "-pk")
    entries = []
    for r in rows[:PER_SOURCE]:
        if r.status == ReminderStatus.SENT:
            details, why, when = ((r.subject,) if r.subject else ()), "", r.sent_at
        elif r.status == ReminderStatus.FAILED:
            details, why, when = (
                (f"after {r.attempts} attempt{'s' if r.attempts != 1 else ''}",),
                r.last_error,
                r.updated_at,
            )
        else:
            details, why, when = (), r.cancelled_reason, r.updated_at
        entries.append(
            Entry(
                when=when,
                kind="Reminder",
                title=f"{r.get_kind_display()} by {r.get_channel_display().lower()} for {r.local_date.isoformat()}",
                action=r.get_status_display().lower(),
                details=details,
                who=SYSTEM,
                why=why,
                tone="warn" if r.status == ReminderStatus.FAILED else "",
            )
        )
    return entries


def _midnight(day: dt.date, zone) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=zone)


def timeline(patient: Patient, *, today: dt.date, before: dt.date | None = None) -> Timeline:
    """The window of WINDOW_DAYS days ending before ``before`` (a patient-local date), or ending now."""
    zone = patient.zone
    end = before if before is not None and before <= today else None
    last_day = (end - dt.timedelta(days=1)) if end else today
    start = last_day - dt.timedelta(days=WINDOW_DAYS - 1)
    since, until = _midnight(start, zone), (_midnight(end, zone) if end else None)
    batches = _history_batches(patient, since, until)
    batches += [
        _gate_entries(patient, since, until),
        _checkin_entries(patient, since, until),
        _reminder_entries(patient, since, until),
    ]
    truncated = tuple(batch[0].kind for batch in batches if len(batch) >= PER_SOURCE)
    entries = sorted((e for batch in batches for e in batch), key=lambda e: e.when, reverse=True)
    # Nothing in the record is older than the patient's own first row, except check-ins entered for
    # earlier dates: the window goes back as far as either.
    if hasattr(patient, "first_checkin"):  # clinic.chart.chart_patients read it with the patient
        first_checkin = patient.first_checkin
    else:
        first_checkin = SymptomCheckIn.objects.filter(patient_id=patient.pk).aggregate(first=Min("recorded_at"))[
            "first"
        ]
    earliest = min(t for t in (patient.created_at, first_checkin) if t is not None).astimezone(zone).date()
    return Timeline(
        tuple(entries), start, end, start if earliest < start else None, truncated=truncated, per_source=PER_SOURCE
    )
