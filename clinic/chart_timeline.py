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
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import F, Min, OuterRef, Q, Subquery
from django.utils.text import capfirst

from patients.flag_models import ClinicianTask, ConflictFlag, SafetyGateEvent
from patients.models import LabResult, MedicationStatement, Patient, PatientCondition
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


def _differs(name: str) -> Q:
    """Null-safe "this field differs from the previous version"."""
    prev = f"prev_{name}"
    return (
        Q(**{f"{name}__isnull": True, f"{prev}__isnull": False})
        | Q(**{f"{name}__isnull": False, f"{prev}__isnull": True})
        | (Q(**{f"{name}__isnull": False, f"{prev}__isnull": False}) & ~Q(**{name: F(prev)}))
    )


@dataclass(frozen=True)
class Source:
    kind: str
    model: type
    fields: tuple[str, ...]  # what a change shows, old -> new
    lookup: Callable[[Patient], Q]
    title: Callable[[object], str]
    tone: Callable[[object], str] = lambda row: ""


def _step_lookup(patient: Patient) -> Q:
    return Q(plan_id__in=TitrationPlan.all_objects.filter(patient_id=patient.pk).values("pk"))


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
        lambda p: Q(id=p.pk),
        lambda row: "Patient record",
    ),
    Source(
        "Condition",
        PatientCondition,
        ("condition", "diagnosed_on", "deleted_at"),
        lambda p: Q(patient_id=p.pk),
        lambda row: row.get_condition_display(),
    ),
    Source(
        "Medication",
        MedicationStatement,
        ("name", "dose", "route", "release", "start_date", "last_dose_date", "source", "deleted_at"),
        lambda p: Q(patient_id=p.pk),
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
        lambda p: Q(patient_id=p.pk),
        lambda row: f"{row.get_kind_display()}: {row.medication_text}",
        _flag_tone,
    ),
    Source(
        "Task",
        ClinicianTask,
        ("status", "due_on", "completed_note"),
        lambda p: Q(patient_id=p.pk),
        lambda row: row.title,
    ),
    Source(
        "Lab",
        LabResult,
        ("value", "unit", "result", "ref_low", "ref_high", "collected_at", "deleted_at"),
        lambda p: Q(patient_id=p.pk),
        lambda row: row.test_name or row.get_test_display(),
    ),
    Source(
        "Prescription",
        CompoundedPrescription,
        ("status", "strength_value", "quantity", "days_supply", "refills", "sig", "start_on", "deleted_at"),
        lambda p: Q(patient_id=p.pk),
        _rx_title,
    ),
    Source(
        "Plan",
        TitrationPlan,
        ("status", "target_dose_mg", "start_date", "deleted_at"),
        lambda p: Q(patient_id=p.pk),
        lambda row: f"Plan to {fmt_mg(row.target_dose_mg)} mg from {row.start_date.isoformat()}",
    ),
    Source(
        "Step",
        TitrationStep,
        ("status", "dose_mg", "planned_start", "actual_start", "min_days", "sequence", "deleted_at"),
        _step_lookup,
        lambda row: f"Step {row.sequence}: {fmt_mg(row.dose_mg)} mg",
        lambda row: "warn" if row.status in ("held", "stepped_back") else "",
    ),
)


def _history_entries(source: Source, patient: Patient, since: dt.datetime, until: dt.datetime | None) -> list[Entry]:
    history = source.model.history.model
    window = Q(history_date__gte=since) & (Q(history_date__lt=until) if until else Q())
    # The version before: earlier in time, or saved in the same instant but first (a frozen clock, one transaction).
    earlier = Q(history_date__lt=OuterRef("history_date")) | Q(
        history_date=OuterRef("history_date"), history_id__lt=OuterRef("history_id")
    )
    previous = history.objects.filter(earlier, id=OuterRef("id")).order_by("-history_date", "-history_id")
    rows = history.objects.filter(source.lookup(patient), window).annotate(
        **{f"prev_{name}": Subquery(previous.values(name)[:1]) for name in source.fields}
    )
    changed = Q()
    for name in source.fields:
        changed |= _differs(name)
    rows = rows.filter(
        ~Q(history_type="~") | (~Q(history_change_reason__isnull=True) & ~Q(history_change_reason="")) | changed
    )
    rows = rows.select_related("history_user").order_by("-history_date", "-history_id")[:PER_SOURCE]
    zone = patient.zone
    entries = []
    for row in rows:
        if row.history_type == "~":
            details = tuple(
                f"{_label(source.model, name)}: "
                f"{_shown(source.model, name, getattr(row, f'prev_{name}'), zone)} → "
                f"{_shown(source.model, name, getattr(row, name), zone)}"
                for name in source.fields
                if getattr(row, name) != getattr(row, f"prev_{name}")
            )
            action = (
                "archived"
                if "deleted_at" in source.fields and row.deleted_at and not row.prev_deleted_at
                else "changed"
            )
        else:
            details = _state(source, row, zone) if row.history_type == "+" else ()
            action = ACTIONS.get(row.history_type, row.history_type)
        entries.append(
            Entry(
                when=row.history_date,
                kind=source.kind,
                title=source.title(row),
                action=action,
                details=details,
                who=_who(row.history_user),
                why=row.history_change_reason or "",
                tone=source.tone(row),
            )
        )
    return entries


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
    batches = [_history_entries(source, patient, since, until) for source in SOURCES]
    batches += [
        _gate_entries(patient, since, until),
        _checkin_entries(patient, since, until),
        _reminder_entries(patient, since, until),
    ]
    truncated = tuple(batch[0].kind for batch in batches if len(batch) >= PER_SOURCE)
    entries = sorted((e for batch in batches for e in batch), key=lambda e: e.when, reverse=True)
    # Nothing in the record is older than the patient's own first row, except check-ins entered for
    # earlier dates: the window goes back as far as either.
    first_checkin = SymptomCheckIn.objects.filter(patient_id=patient.pk).aggregate(first=Min("recorded_at"))["first"]
    earliest = min(t for t in (patient.created_at, first_checkin) if t is not None).astimezone(zone).date()
    return Timeline(
        tuple(entries), start, end, start if earliest < start else None, truncated=truncated, per_source=PER_SOURCE
    )
