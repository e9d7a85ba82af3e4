"""The reminder outbox: plan the coming days' rows, then claim, send and mark what is due.

Planning (``plan_patient``) is idempotent: it computes the rows a patient should have over the
horizon, creates the missing ones by idempotency key, and cancels pending rows that no longer belong
(a plan changed, a preference changed). Plan changes call it inside their own transaction, so a
rolled-back change leaves no reminder behind.

Sending (``tick``) claims due rows in chunks (``select_for_update(skip_locked=True)`` on PostgreSQL;
SQLite serialises writers), sends each, and marks it with a compare-and-set update. A row a worker
claimed and never finished (killed) goes back to pending after the lease; transient failures retry
with backoff, permanent ones become ``failed`` and show in the clinic's admin.
"""

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ldnclinic import messaging, stamps
from ldnclinic.faults import fault_point
from patients.flag_models import ClinicianTask, ConflictFlag, FlagKind, FlagStatus, TaskStatus
from patients.models import Patient, PatientStatus
from patients.today import patient_today

from . import content
from .models import PlanStatus, StepStatus, TitrationPlan
from .reminder_models import Channel, Reminder, ReminderKind, ReminderStatus
from .schedule import due_evening, local_to_utc, outside_quiet_hours, step_evening

logger = logging.getLogger(__name__)

HORIZON_DAYS = 14
CHUNK = 100
BACKOFF_SECONDS = (60, 300, 900, 3600, 3 * 3600)
PLANNED_KINDS = tuple(ReminderKind.values)


@dataclass(frozen=True)
class Wanted:
    key: str
    kind: str
    channel: str
    local_date: dt.date
    due_at: dt.datetime
    plan_id: int | None = None
    step_id: int | None = None


def channels_for(patient: Patient) -> list[str]:
    out = []
    if patient.reminders_by_email and patient.email:
        out.append(Channel.EMAIL)
    if patient.reminders_by_sms and patient.mobile:
        out.append(Channel.SMS)
    return out


def due_at(patient: Patient, day: dt.date) -> tuple[dt.date, dt.datetime]:
    """The patient's reminder time on ``day`` (moved out of quiet hours), as a UTC instant."""
    at, shift = outside_quiet_hours(patient.local_reminder_time, patient.quiet_hours_start, patient.quiet_hours_end)
    return day, local_to_utc(day + dt.timedelta(days=shift), at, patient.zone)


def _wanted_for(patient: Patient, today: dt.date, horizon: int) -> list[Wanted]:
    channels = channels_for(patient)
    if not channels or patient.deleted_at or patient.status == PatientStatus.DISCONTINUED:
        return []
    days = [today + dt.timedelta(days=n) for n in range(horizon + 1)]
    wanted: list[tuple[str, dt.date, str, int | None, int | None]] = []  # (kind, day, key part, plan, step)
    plan = (
        TitrationPlan.objects.filter(patient=patient, status=PlanStatus.ACTIVE).prefetch_related("steps").first()
        if patient.status == PatientStatus.ACTIVE
        else None
    )
    step_days = set()
    if plan is not None:
        step_day = _next_step_up_day(plan, today)
        if step_day is not None and step_day[1] <= days[-1]:
            step, day, held = step_day
            # REM-1: a step a clinician has held is not asked about: the patient is told to stay on the dose.
            kind = ReminderKind.STAY_ON_DOSE if held else ReminderKind.STEP_UP
            wanted.append((kind, day, f"step{step.pk}", plan.pk, step.pk))
            step_days.add(day)
        if patient.nightly_dose_reminders:  # REM-2 is opt-in; a step-up evening already says the dose
            wanted += [(ReminderKind.NIGHTLY_DOSE, d, "", plan.pk, None) for d in days if d not in step_days]
        wanted += [
            (ReminderKind.CHECKIN_DUE, d, "", plan.pk, None)
            for d in days
            if d > plan.start_date and (d - plan.start_date).days % 7 == 0
        ]
        refill_on = content.refill_reminder_day(plan, today)
        if refill_on and today <= refill_on <= days[-1]:
            wanted.append((ReminderKind.REFILL, refill_on, f"rx{plan.prescription_id}", plan.pk, None))
    if patient.status == PatientStatus.SCREENING:
        for flag in ConflictFlag.objects.filter(patient=patient, kind=FlagKind.CONFLICT, status=FlagStatus.OPEN):
            start = flag.earliest_safe_start
            if start and today <= start <= days[-1]:
                wanted.append((ReminderKind.WASHOUT, start, f"flag{flag.pk}", None, None))
    out = []
    for kind, day, part, plan_id, step_id in wanted:
        local_day, when = due_at(patient, day)
        for channel in channels:
            key = f"{kind}:{patient.pk}:{local_day:%Y-%m-%d}:{part}:{channel}"
            out.append(Wanted(key, kind, channel, local_day, when, plan_id, step_id))
    return out


def _next_step_up_day(plan: TitrationPlan, today: dt.date):
    """REM-1: (the next step, the evening it is due, whether a clinician holds the current step). The
    evening is its planned date, or later if the current step started late; when that evening has passed
    without a step-up (held), it comes again every 7 days."""
    steps = sorted((s for s in plan.steps.all() if s.deleted_at is None), key=lambda s: s.sequence)
    current = next((s for s in reversed(steps) if s.status in (StepStatus.ACTIVE, StepStatus.HELD)), None)
    if current is None:
        return None
    if ClinicianTask.objects.filter(key=f"side-effect:{current.pk}", status=TaskStatus.OPEN).exists():
        return None  # SE-4: step-up reminders are suppressed until a clinician has reviewed
    if ConflictFlag.objects.filter(
        patient_id=plan.patient_id, status=FlagStatus.OPEN, kind__in=[FlagKind.CONFLICT, FlagKind.UNAVAILABLE]
    ).exists():
        return None  # REM-4: an open opioid conflict suspends step reminders (the prescriber has a task)
    following = next((s for s in steps if s.sequence > current.sequence and s.status == StepStatus.PLANNED), None)
    if following is None:
        return None
    evening = step_evening(current.actual_start or current.planned_start, current.min_days, following.planned_start)
    day = due_evening(evening, today)  # held past its evening: the next weekly re-ask
    return following, day, current.status == StepStatus.HELD and current.held_by_clinician


def plan_patient(patient: Patient, *, today: dt.date | None = None, horizon: int = HORIZON_DAYS) -> dict:
    """Make the patient's pending reminders match what they should be. Idempotent; one transaction."""
    now = timezone.now()
    today = today or patient_today(patient, now)
    wanted = {w.key: w for w in _wanted_for(patient, today, horizon)}
    created = cancelled = revived = 0
    with transaction.atomic():
        existing = {
            r.idempotency_key: r
            for r in Reminder.objects.select_for_update().filter(patient=patient, local_date__gte=today)
        }
        for key, reminder in existing.items():
            if key not in wanted and reminder.status == ReminderStatus.PENDING:
                reminder.status = ReminderStatus.CANCELLED
                reminder.cancelled_reason = "no longer due: the plan or the patient's preferences changed"
                reminder.save(update_fields=["status", "cancelled_reason", "updated_at"])
                cancelled += 1
        for key, w in wanted.items():
            reminder = existing.get(key)
            if reminder is None:
                Reminder.objects.get_or_create(
                    idempotency_key=key,
                    defaults={
                        "patient": patient,
                        "plan_id": w.plan_id,
                        "step_id": w.step_id,
                        "kind": w.kind,
                        "channel": w.channel,
                        "local_date": w.local_date,
                        "due_at": w.due_at,
                        "next_attempt_at": w.due_at,
                    },
                )
                created += 1
            elif reminder.status == ReminderStatus.CANCELLED or (
                reminder.status == ReminderStatus.PENDING and reminder.due_at != w.due_at
            ):
                reminder.status = ReminderStatus.PENDING  # due again, or at a new time (preferences changed)
                reminder.due_at = reminder.next_attempt_at = w.due_at
                reminder.cancelled_reason = ""
                reminder.save(update_fields=["status", "due_at", "next_attempt_at", "cancelled_reason", "updated_at"])
                revived += 1
    return {"created": created, "cancelled": cancelled, "revived": revived}


def plan_all(*, horizon: int = HORIZON_DAYS) -> int:
    count = 0
    patients = Patient.objects.filter(status__in=[PatientStatus.SCREENING, PatientStatus.ACTIVE])
    for patient in patients.iterator():
        try:
            plan_patient(patient, horizon=horizon)
            count += 1
        except Exception:  # noqa: BLE001 - one patient's failure must not stop the others
            logger.exception("reminder planning failed for patient %s", patient.pk)
    return count


# --- Sending -------------------------------------------------------------------------------------


def _claim(now: dt.datetime, limit: int) -> list[int]:
    with transaction.atomic():
        connection = transaction.get_connection()
        if connection.vendor == "postgresql":
            # Walk reminder_due_idx in order and stop after ``limit`` rows. Statistics taken before a
            # burst (or none: a new table, autovacuum off) make the planner expect a handful of due
            # rows and collect and sort all of them instead: 15-30 ms a claim at 50,000-100,000 due.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_sort = off")
        ids = list(
            Reminder.objects.select_for_update(skip_locked=True)
            .filter(status=ReminderStatus.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .values_list("id", flat=True)[:limit]
        )
        if ids:
            # By primary key alone: this transaction holds the rows (locked on PostgreSQL, the write
            # lock on SQLite), so they are still pending; a status condition here would let a stale
            # estimate plan a scan of every pending row (35 ms at 100,000) instead of 100 lookups.
            Reminder.objects.filter(id__in=ids).update(
                status=ReminderStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1
            )
    return ids


def release_lapsed_claims(now: dt.datetime) -> int:
    """Rows left in 'sending' by a worker that died take their turn again."""
    lease = dt.timedelta(seconds=settings.REMINDER_LEASE_SECONDS)
    return Reminder.objects.filter(status=ReminderStatus.SENDING, claimed_at__lt=now - lease).update(
        status=ReminderStatus.PENDING, next_attempt_at=now, last_error="claim lapsed (worker stopped mid-send)"
    )


def has_backlog(beyond: int, *, now: dt.datetime | None = None) -> bool:
    """More than ``beyond`` reminders are due now (one indexed query, reading ``beyond + 1`` entries)."""
    due = Reminder.objects.filter(status=ReminderStatus.PENDING, next_attempt_at__lte=now or timezone.now())
    return bool(due.order_by().values_list("id", flat=True)[beyond : beyond + 1])


def tick(*, now: dt.datetime | None = None, limit: int | None = None) -> int:
    """Send everything due now. Returns how many were sent.

    Each chunk is claimed at the clock's time (or at ``now`` when a test gives one): the claim time
    and the attempt count are the claim's token, and a row is only ever finished with its token.
    The chunk is then sent in groups of the outbox's width (one SMTP connection per message of a
    group, kept for the whole tick), each group marked sent by one statement.
    """
    clock = now
    now = now or timezone.now()
    limit = limit or settings.REMINDER_BATCH_SIZE
    release_lapsed_claims(now)
    sent = 0
    with messaging.Outbox() as outbox:
        while sent < limit:
            claimed_at = clock or timezone.now()
            ids = _claim(claimed_at, min(CHUNK, limit - sent))
            if not ids:
                break
            # Only rows this claim still holds (a row whose lease lapsed meanwhile is someone else's),
            # checked here rather than in SQL so that the query is primary-key lookups whatever the
            # planner's statistics say.
            loaded = Reminder.objects.filter(id__in=ids).select_related("patient", "plan", "step", "patient__clinic")
            reminders = [r for r in loaded if r.status == ReminderStatus.SENDING and r.claimed_at == claimed_at]
            for group in _groups(reminders, outbox.width):
                sent += deliver_group(group, claimed_at, outbox=outbox)
    return sent


# What these reminders say does not depend on which other reminders were sent before them, so several
# of one patient's may be rendered before any of them is marked. A check-in reminder's does (REM-3
# counts the check-in reminders already sent), and a kind not listed here is assumed to.
_INDEPENDENT_KINDS = frozenset(
    {
        ReminderKind.WASHOUT,
        ReminderKind.NIGHTLY_DOSE,
        ReminderKind.STEP_UP,
        ReminderKind.STAY_ON_DOSE,
        ReminderKind.REFILL,
    }
)


def _groups(reminders: list[Reminder], width: int) -> list[list[Reminder]]:
    """Split a chunk into groups of at most ``width``, rendered together and marked by one statement.
    A reminder whose message may depend on its patient's earlier sends starts a new group when the
    group already holds one of that patient's reminders, so it is rendered after they are marked."""
    groups: list[list[Reminder]] = []
    group: list[Reminder] = []
    patients: set[int] = set()
    for reminder in reminders:
        if len(group) == width or (reminder.kind not in _INDEPENDENT_KINDS and reminder.patient_id in patients):
            groups.append(group)
            group, patients = [], set()
        group.append(reminder)
        patients.add(reminder.patient_id)
    if group:
        groups.append(group)
    return groups


def deliver(reminder: Reminder, now: dt.datetime, *, outbox: messaging.Outbox | None = None) -> int:
    """Send one claimed reminder and mark it. Returns 1 if it went."""
    return deliver_group([reminder], now, outbox=outbox)


@dataclass(frozen=True)
class _Ready:
    reminder: Reminder
    outgoing: messaging.Outgoing  # what is sent, and what the row records as sent


def deliver_group(reminders: list[Reminder], now: dt.datetime, *, outbox: messaging.Outbox | None = None) -> int:
    """Send claimed reminders (at most the outbox's width) and mark them. Returns how many went.

    Over SMTP the rows are marked sent inside the SMTP transactions, after every message's data and
    before the dots that end them (``messaging.TwoPhaseSMTP``): a worker killed before that mark has
    delivered nothing, and its rows are sent again after the lease; the mark is a compare-and-set on
    each row's claim, so a worker that outlived its lease abandons those messages instead of sending
    second copies.
    """
    fault_point("after_claim")
    ready: list[_Ready] = []
    for reminder in reminders:
        patient = reminder.patient
        if reminder.channel not in channels_for(patient):
            _finish(reminder, ReminderStatus.CANCELLED, cancelled_reason="patient opted out of this channel")
            continue
        message = content.prepare(reminder, today=reminder.local_date)
        if message is None:
            _finish(reminder, ReminderStatus.CANCELLED, cancelled_reason="nothing to say any more (plan changed)")
            continue
        subject, body = message
        to = patient.email if reminder.channel == Channel.EMAIL else patient.mobile
        outgoing = messaging.Outgoing(to=to, subject=subject, body=body, key=reminder.idempotency_key)
        ready.append(_Ready(reminder, outgoing))
    if not ready:
        return 0

    def commit(indexes: list[int]) -> list[int]:
        fault_point("after_send")
        marked = _mark_sent([ready[i] for i in indexes])
        fault_point("after_mark")  # the loss window: marked sent, the dots not yet written
        return [i for i in indexes if ready[i].reminder.pk in marked]

    own_outbox = outbox is None
    outbox = outbox or messaging.Outbox(connections=len(ready))
    try:
        results = outbox.send_group([(r.outgoing, r.reminder.channel) for r in ready], commit)
    finally:
        if own_outbox:
            outbox.close()
    sent = 0
    for item, result in zip(ready, results, strict=True):
        reminder = item.reminder
        if result.abandoned:
            logger.warning("reminder %s: claim lost before sending; abandoned (its new claimant sends it)", reminder.pk)
        elif result.error is not None:
            _failed_attempt(reminder, result.error, now)
        else:
            sent += 1
            if result.note:  # sent, but the server's reply to the end of data never came
                _finish(reminder, ReminderStatus.SENT, expected=ReminderStatus.SENT, last_error=result.note[:2000])
    return sent


def _mark_sent(ready: list[_Ready]) -> set[int]:
    # A reminder that went clears its patient's failed ones from the worklist (an UPDATE sends no signal).
    stamps.bump({item.reminder.clinic_id for item in ready})
    """Mark a group sent: for each row, a compare-and-set on its claim (still 'sending', same claim
    time, same attempt), with what was sent. One statement for the group where the database has
    UPDATE ... FROM and RETURNING (PostgreSQL, SQLite 3.35+), else one update per row in one
    transaction. Returns the ids it marked."""
    now = timezone.now()
    connection = transaction.get_connection()
    if _has_update_from_returning(connection):
        return _mark_sent_in_one_statement(connection, ready, now)
    marked = set()
    with transaction.atomic():
        for item in ready:
            sent = item.outgoing
            fields = {"sent_at": now, "subject": sent.subject[:200], "body": sent.body, "last_error": ""}
            if _finish(item.reminder, ReminderStatus.SENT, **fields):
                marked.add(item.reminder.pk)
    return marked


def _has_update_from_returning(connection) -> bool:
    if connection.vendor == "sqlite":
        return connection.Database.sqlite_version_info >= (3, 35)
    return connection.vendor == "postgresql"


def _mark_sent_in_one_statement(connection, ready: list[_Ready], now: dt.datetime) -> set[int]:
    column = {f.name: connection.ops.quote_name(f.column) for f in Reminder._meta.concrete_fields}
    adapt = connection.ops.adapt_datetimefield_value
    rows = []
    for item in ready:
        r = item.reminder
        rows += [r.pk, adapt(r.claimed_at), r.attempts, item.outgoing.subject[:200], item.outgoing.body]
    # The VALUES columns are column1..column5 in PostgreSQL and SQLite alike, so the reminder's own
    # column names need no table prefix. Names come from the model; every value is a parameter.
    sql = (
        f"UPDATE {connection.ops.quote_name(Reminder._meta.db_table)} "  # noqa: S608
        f"SET {column['status']} = %s, {column['sent_at']} = %s, {column['updated_at']} = %s, "
        f"{column['last_error']} = '', {column['subject']} = v.column4, {column['body']} = v.column5 "
        f"FROM (VALUES {', '.join(['(%s, %s, %s, %s, %s)'] * len(ready))}) AS v "
        f"WHERE {column['id']} = v.column1 AND {column['claimed_at']} = v.column2 "
        f"AND {column['attempts']} = v.column3 AND {column['status']} = %s RETURNING {column['id']}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [ReminderStatus.SENT, adapt(now), adapt(now), *rows, ReminderStatus.SENDING])
        return {row[0] for row in cursor.fetchall()}


def _finish(reminder: Reminder, status: str, *, expected: str = ReminderStatus.SENDING, **fields) -> int:
    """Compare-and-set on the claim: only the worker that holds it (the row still in ``expected``,
    claimed at the same time, on the same attempt) may move the row. Returns 1 if it moved."""
    moved = Reminder.objects.filter(
        pk=reminder.pk, status=expected, claimed_at=reminder.claimed_at, attempts=reminder.attempts
    ).update(status=status, updated_at=timezone.now(), **fields)
    if moved:  # a failed reminder is a worklist row, and an UPDATE sends no signal (ldnclinic.stamps)
        stamps.bump([reminder.clinic_id])
    return moved


def _failed_attempt(reminder: Reminder, exc: messaging.SendError, now: dt.datetime) -> None:
    error = f"{'permanent' if exc.permanent else 'transient'}: {exc}"[:2000]
    # Refused at the final dot: the row was already marked sent, and nothing was delivered.
    undo = {"expected": ReminderStatus.SENT, "sent_at": None} if exc.committed else {}
    if exc.permanent or reminder.attempts >= settings.REMINDER_MAX_ATTEMPTS:
        logger.warning("reminder %s failed for good: %s", reminder.pk, error)
        _finish(reminder, ReminderStatus.FAILED, last_error=error, **undo)
        return
    delay = BACKOFF_SECONDS[min(reminder.attempts - 1, len(BACKOFF_SECONDS) - 1)]
    _finish(
        reminder,
        ReminderStatus.PENDING,
        last_error=error,
        next_attempt_at=now + dt.timedelta(seconds=delay),
        **undo,
    )
