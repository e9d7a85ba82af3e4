"""The worklist's rows that come from one record each: open flags, open tasks, unreviewed side
effects, missed check-ins and failed reminders (clinic/worklist.py assembles the page and adds the
rows that come from plans). Each reader takes one or two queries, whatever the number of rows.
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import F, Max, OuterRef, Q, Subquery
from django.urls import NoReverseMatch, reverse

from ldnclinic.scoping import visible_to
from patients.flag_models import ClinicianTask, ConflictFlag, FlagKind, FlagSeverity, TaskKind
from patients.models import Patient, PatientStatus
from patients.services import patient_today
from symptoms.models import SideEffectReport, SideEffectReview, SymptomCheckIn
from titration.models import PlanStatus, TitrationPlan
from titration.reminder_models import Reminder, ReminderStatus

MISSED_CHECKIN_DAYS = 8  # REM-3: weekly check-ins, so 8 days without one is a missed week
# Unreviewed reports older than the window the side-effect rules read (titration.content) steer nothing now.
SIDE_EFFECT_LOOKBACK_DAYS = 28
FAILED_REMINDER_DAYS = 14  # a failure older than two weeks has been superseded by the patient's next contact
TASK_SECTION = {
    TaskKind.LAB_REVIEW: "labs",
    TaskKind.LAB_ALERT: "labs",
    TaskKind.EFFICACY_REVIEW: "efficacy",
    TaskKind.SIDE_EFFECT: "side_effects",
}
SEVERITY_ORDER = {FlagSeverity.HIGH: 0, FlagSeverity.MEDIUM: 1, FlagSeverity.LOW: 2}
SEVERITY_TONE = {1: "low", 2: "medium", 3: "high"}
SEVERITY_WORD = {1: "mild", 2: "moderate", 3: "severe"}


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class PostAction:
    label: str
    url: str
    fields: tuple[tuple[str, str], ...] = ()


@dataclass
class Item:
    kind: str
    patient: Patient
    title: str
    reasons: tuple[str, ...] = ()
    when: str = ""  # the date that matters, in words ("Earliest safe start 12 Mar 2026")
    tone: str = ""  # badge class: high, medium, low, ok
    badge: str = ""
    links: tuple[Link, ...] = ()  # the action's page first
    posts: tuple[PostAction, ...] = ()
    task: ClinicianTask | None = None
    sort: tuple = ()

    @property
    def chart(self) -> str | None:
        return url("patient", self.patient.pk)


def url(name: str, *args) -> str | None:
    """A clinic route's address, or None while the area that owns it has not landed."""
    try:
        return reverse(f"clinic:{name}", args=args)
    except NoReverseMatch:
        return None


def links_of(*pairs: tuple[str, str | None]) -> tuple[Link, ...]:
    return tuple(Link(label, href) for label, href in pairs if href)


def day_text(value: dt.date) -> str:
    return f"{value.day} {value:%b %Y}"


def _local(instant: dt.datetime, patient: Patient) -> dt.date:
    return instant.astimezone(patient.zone).date()


# --- Conflicts and tasks ----------------------------------------------------------------------------


def conflict_items(flags: list[ConflictFlag]) -> list[Item]:
    out = []
    for flag in flags:
        start = flag.earliest_safe_start
        note = flag.earliest_start_note
        if start is not None:
            when = f"Earliest safe LDN start {day_text(start)}"
        elif flag.kind in (FlagKind.CONFLICT, FlagKind.UNAVAILABLE):
            when = "No earliest start date"
        else:
            when = ""
        reasons = [note] if note else []
        if start is None and not note and flag.kind == FlagKind.CONFLICT:
            reasons.append("no last dose date recorded: ask the patient when they last took it")
        if flag.kind == FlagKind.UNAVAILABLE:
            reasons.append("the opioid check could not run: review the medication by hand")
        prescriber_only = flag.kind in (FlagKind.CONFLICT, FlagKind.UNAVAILABLE)
        out.append(
            Item(
                kind="conflicts",
                patient=flag.patient,
                title=f"{flag.get_kind_display()}: {flag.medication_text}",
                reasons=tuple(reasons),
                when=when,
                tone=flag.severity,
                badge=flag.get_severity_display(),
                links=links_of(("Acknowledge or override" if prescriber_only else "Review flag", url("flag", flag.pk))),
                sort=(SEVERITY_ORDER.get(flag.severity, 3), (start or dt.date.max).toordinal(), flag.pk),
            )
        )
    return out


def _task_section(task: ClinicianTask) -> str:
    if task.kind == TaskKind.OTHER and task.key.startswith("morning-dose:"):
        return "side_effects"  # SE-3's suggestion comes from the same side effects
    return TASK_SECTION.get(task.kind, "tasks")


TASK_TONE = {TaskKind.LAB_REVIEW: "high", TaskKind.SIDE_EFFECT: "high", TaskKind.OPIOID_PLAN: "high"}
TONE_RANK = {"high": 0, "medium": 1, "low": 2}


def task_items(tasks: list[ClinicianTask]) -> list[Item]:
    out = []
    for task in tasks:
        assign = url("task-assign", task.pk)
        posts = ()
        if assign:
            posts = (PostAction("Assign to me", assign, (("to", "me"),)),)
        action = "Review and close" if task.kind == TaskKind.LAB_REVIEW else "Close task"
        tone = TASK_TONE.get(task.kind, "medium")
        out.append(
            Item(
                kind=_task_section(task),
                patient=task.patient,
                title=task.title,
                reasons=(task.detail,) if task.detail and task.detail != task.title else (),
                when=f"Due {day_text(task.due_on)}" if task.due_on else "",
                tone=tone,
                badge="Task" if task.kind == TaskKind.OTHER else task.get_kind_display().split(" (")[0].split(":")[0],
                links=links_of((action, url("task", task.pk))),
                posts=posts,
                task=task,
                sort=(TONE_RANK[tone], (task.due_on or dt.date.max).toordinal(), task.pk),
            )
        )
    return out


# --- Side effects, check-ins, reminders --------------------------------------------------------------


def side_effect_items(user, now: dt.datetime, tasks: list[ClinicianTask]) -> list[Item]:
    """Check-ins with side effects recorded after the patient's last review mark, one row per patient.
    A severe report whose SE-4 task is open is that task's row instead."""
    with_task = {t.patient_id for t in tasks if t.kind == TaskKind.SIDE_EFFECT}
    last_review = SideEffectReview.objects.filter(patient=OuterRef("checkin__patient")).order_by("-up_to")
    reports = (
        visible_to(
            user,
            SideEffectReport.objects.filter(
                severity__gte=1,
                checkin__deleted_at__isnull=True,
                checkin__patient__deleted_at__isnull=True,
                checkin__recorded_at__gte=now - dt.timedelta(days=SIDE_EFFECT_LOOKBACK_DAYS),
                checkin__recorded_at__lte=now,
            ).exclude(checkin__patient__status=PatientStatus.DISCONTINUED),
        )
        .annotate(reviewed_up_to=Subquery(last_review.values("up_to")[:1]))
        .filter(Q(reviewed_up_to__isnull=True) | Q(checkin__recorded_at__gt=F("reviewed_up_to")))
        .select_related("checkin__patient__clinic")
        .order_by("checkin__recorded_at", "checkin_id", "pk")
    )
    by_patient: dict[int, list[SideEffectReport]] = defaultdict(list)
    for report in reports:
        if report.severity >= 3 and report.checkin.patient_id in with_task:
            continue
        by_patient[report.checkin.patient_id].append(report)
    out = []
    for rows in by_patient.values():
        patient = rows[0].checkin.patient
        per_checkin: dict[int, list[SideEffectReport]] = defaultdict(list)
        for report in rows:
            per_checkin[report.checkin_id].append(report)
        lines = []
        for group in reversed(per_checkin.values()):  # newest check-in first
            effects = ", ".join(_effect(r) for r in group)
            lines.append(f"{day_text(_local(group[0].checkin.recorded_at, patient))}: {effects}")
        worst = max(r.severity for r in rows)
        newest = rows[-1].checkin.recorded_at
        href = url("side-effects-reviewed", patient.pk)
        checkins = len(per_checkin)
        out.append(
            Item(
                kind="side_effects",
                patient=patient,
                title=f"Side effects in {checkins} check-in{'s' if checkins != 1 else ''} not yet reviewed",
                reasons=tuple(lines),
                when=f"Latest {day_text(_local(newest, patient))}",
                tone=SEVERITY_TONE[worst],
                badge=SEVERITY_WORD[worst].capitalize(),
                links=links_of(("Open chart", url("patient", patient.pk))),
                posts=(PostAction("Mark reviewed", href, (("up_to", newest.isoformat()),)),) if href else (),
                sort=(3 - worst, -int(newest.timestamp()), patient.pk),
            )
        )
    return out


def _effect(report: SideEffectReport) -> str:
    name = report.description if report.effect == "other" and report.description else report.get_effect_display()
    return f"{name} ({SEVERITY_WORD.get(report.severity, report.get_severity_display()).lower()})"


def missed_checkin_items(patients, now: dt.datetime) -> list[Item]:
    """Active patients whose latest check-in is 8 or more of their own days ago (or who never checked in
    that long after starting). The database narrows to a week without one; each patient's calendar decides."""
    last = SymptomCheckIn.objects.filter(patient=OuterRef("pk")).order_by("-recorded_at").values("recorded_at")[:1]
    started = TitrationPlan.objects.filter(patient=OuterRef("pk"), status=PlanStatus.ACTIVE).values("start_date")[:1]
    rows = (
        patients.filter(status=PatientStatus.ACTIVE)
        .annotate(last_checkin=Subquery(last), plan_start=Subquery(started))
        .filter(Q(last_checkin__isnull=True) | Q(last_checkin__lt=now - dt.timedelta(days=MISSED_CHECKIN_DAYS - 2)))
        .select_related("clinic")
        .order_by("pk")
    )
    out = []
    for patient in rows:
        today = patient_today(patient)
        if patient.last_checkin is not None:
            since = _local(patient.last_checkin, patient)
            title = f"No check-in since {day_text(since)}"
        else:
            since = patient.plan_start or _local(patient.created_at, patient)
            title = "No check-in yet"
        days = (today - since).days
        if days < MISSED_CHECKIN_DAYS:
            continue
        reason = f"{days} days without a check-in (weekly, REM-3)"
        if patient.last_checkin is None:
            reason = f"{days} days since {'the plan started' if patient.plan_start else 'the record was made'}"
        out.append(
            Item(
                kind="missed_checkins",
                patient=patient,
                title=title,
                reasons=(reason,),
                when=f"Last check-in {day_text(since)}" if patient.last_checkin is not None else "Never",
                tone="high" if days >= 2 * 7 else "medium",
                badge=f"{days} days",
                links=links_of(
                    ("Contact details", url("patient-edit", patient.pk)), ("Open chart", url("patient", patient.pk))
                ),
                sort=(-days, patient.pk, 0),
            )
        )
    return out


def reminder_items(user, now: dt.datetime) -> list[Item]:
    """Failed reminders of the last two weeks, one row per patient and channel, until a later reminder
    on that channel gets through (the address was fixed) or they age out."""
    since = (now - dt.timedelta(days=FAILED_REMINDER_DAYS + 1)).date()
    failed = list(
        visible_to(
            user,
            Reminder.objects.filter(
                status=ReminderStatus.FAILED, local_date__gte=since, patient__deleted_at__isnull=True
            ),
        )
        .select_related("patient__clinic")
        .order_by("updated_at", "pk")
    )
    if not failed:
        return []
    last_sent = {
        (row["patient_id"], row["channel"]): row["last"]
        for row in Reminder.objects.filter(
            patient_id__in={r.patient_id for r in failed}, status=ReminderStatus.SENT, sent_at__isnull=False
        )
        .values("patient_id", "channel")
        .annotate(last=Max("sent_at"))
        .order_by()
    }
    groups: dict[tuple[int, str], list[Reminder]] = defaultdict(list)
    for reminder in failed:
        patient = reminder.patient
        if reminder.local_date < patient_today(patient) - dt.timedelta(days=FAILED_REMINDER_DAYS):
            continue
        sent = last_sent.get((patient.pk, reminder.channel))
        if sent is not None and sent > reminder.updated_at:
            continue
        groups[(patient.pk, reminder.channel)].append(reminder)
    out = []
    for (patient_id, channel), rows in groups.items():
        latest = rows[-1]
        patient = latest.patient
        count = len(rows)
        what = f"{count} {latest.get_channel_display().lower()} reminder{'s' if count != 1 else ''} failed"
        error = latest.last_error.removeprefix("permanent: ").removeprefix("transient: ") or "no detail"
        out.append(
            Item(
                kind="reminders",
                patient=patient,
                title=what,
                reasons=(f"latest: {latest.get_kind_display()} for {day_text(latest.local_date)}: {error}",),
                when=f"Failed {day_text(_local(latest.updated_at, patient))}",
                tone="medium",
                badge=latest.get_channel_display(),
                links=links_of(
                    ("Reminder preferences", url("reminder-preferences", patient_id)),
                    ("Contact details", url("patient-edit", patient_id)),
                ),
                sort=(-int(latest.updated_at.timestamp()), patient_id, int(channel == "sms")),
            )
        )
    return out
