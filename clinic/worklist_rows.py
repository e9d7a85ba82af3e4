"""The worklist's rows that come from one record each: open flags, open tasks, unreviewed side
effects, missed check-ins and failed reminders (clinic/worklist.py assembles the page, and
clinic/worklist_plans.py adds the rows that come from plans).

Each reader takes a ``Span`` (how many rows from where) and returns a ``Found``: the exact number of
rows of its kind, counted in the database, and only the rows asked for, in order of urgency, ordered
and cut in the database too. A kind costs one or two queries whatever its number of rows, and a page
with 2,000 rows of a kind reads and draws the 20 it shows.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.db.models import Case, Count, Exists, F, IntegerField, Max, OuterRef, Q, Subquery, Value, When, Window
from django.db.models.functions import RowNumber
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse

from ldnclinic.scoping import staff_clinic_ids, visible_to
from patients.flag_models import ClinicianTask, ConflictFlag, FlagKind, FlagSeverity, FlagStatus, TaskKind, TaskStatus
from patients.models import Patient, PatientStatus
from patients.today import zone_today
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
TASK_SECTIONS = ("side_effects", "labs", "efficacy", "tasks")
MORNING_DOSE_PREFIX = "morning-dose:"  # SE-3's suggestion: an "other" task shown with the side effects
SEVERITY_ORDER = {FlagSeverity.HIGH: 0, FlagSeverity.MEDIUM: 1, FlagSeverity.LOW: 2}
SEVERITY_TONE = {1: "low", 2: "medium", 3: "high"}
SEVERITY_WORD = {1: "mild", 2: "moderate", 3: "severe"}
TASK_TONE = {TaskKind.LAB_REVIEW: "high", TaskKind.SIDE_EFFECT: "high", TaskKind.OPIOID_PLAN: "high"}
TONE_RANK = {"high": 0, "medium": 1, "low": 2}


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class PostAction:
    label: str
    url: str
    fields: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ClinicName:
    pk: int
    name: str


@dataclass(frozen=True, slots=True)
class Who:
    """The patient as a row shows them: a small value, so a kept worklist is cheap to keep and to read back."""

    pk: int
    first_name: str
    last_name: str
    mrn: str
    clinic_id: int
    clinic: ClinicName

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True, slots=True)
class TaskRef:
    """The task a row is, as its buttons and its "assigned to" line need it."""

    pk: int
    kind: str
    assigned_to_id: int | None
    assignee_name: str


def who(patient: Patient | Who) -> Who:
    if isinstance(patient, Who):
        return patient
    clinic = patient.clinic  # read with the row (select_related) or set from the page's clinics
    return Who(
        patient.pk, patient.first_name, patient.last_name, patient.mrn, clinic.pk, ClinicName(clinic.pk, clinic.name)
    )


def task_ref(task: ClinicianTask | TaskRef | None) -> TaskRef | None:
    if task is None or isinstance(task, TaskRef):
        return task
    user = task.assigned_to if task.assigned_to_id else None
    name = (user.get_full_name() or user.username) if user is not None else ""
    return TaskRef(task.pk, task.kind, task.assigned_to_id, name)


@dataclass
class Item:
    kind: str
    patient: Who  # a Patient given is kept as its Who
    title: str
    reasons: tuple[str, ...] = ()
    when: str = ""  # the date that matters, in words ("Earliest safe start 12 Mar 2026")
    tone: str = ""  # badge class: high, medium, low, ok
    badge: str = ""
    links: tuple[Link, ...] = ()  # the action's page first
    posts: tuple[PostAction, ...] = ()
    task: TaskRef | None = None  # a ClinicianTask given is kept as its TaskRef
    sort: tuple = ()
    chart: str | None = None  # the patient's chart

    def __post_init__(self):
        self.patient = who(self.patient)
        self.task = task_ref(self.task)
        if self.chart is None:
            self.chart = url("patient", self.patient.pk)


@dataclass(frozen=True)
class Span:
    """Which rows of a kind to read: ``limit`` from ``offset`` (0: only count them)."""

    offset: int = 0
    limit: int = 20

    @property
    def end(self) -> int:
        return self.offset + self.limit


@dataclass
class Found:
    count: int  # every row of the kind, under the filters
    items: list[Item] = field(default_factory=list)  # the rows asked for, most urgent first


NOTHING = Found(0)

# --- Addresses ----------------------------------------------------------------------------------------

_SENTINEL = 987654321987  # stands in for a row's id while a route's address is worked out once


@lru_cache(maxsize=256)
def _address(name: str, arity: int, urlconf, prefix: str) -> str | None:
    try:
        return reverse(f"clinic:{name}", args=[_SENTINEL] * arity, urlconf=urlconf)
    except NoReverseMatch:
        return None


def url(name: str, *args) -> str | None:
    """A clinic route's address, or None while the area that owns it has not landed.

    ``reverse`` costs more than a row's whole template, and a page has hundreds of links to the same few
    routes: each route's address is worked out once per URLconf with a stand-in id, then filled in."""
    if any(not isinstance(a, int) or isinstance(a, bool) for a in args):
        try:
            return reverse(f"clinic:{name}", args=args)
        except NoReverseMatch:
            return None
    pattern = _address(name, len(args), get_urlconf(), get_script_prefix())
    if pattern is None:
        return None
    for value in args:
        pattern = pattern.replace(str(_SENTINEL), str(value), 1)
    return pattern


def links_of(*pairs: tuple[str, str | None]) -> tuple[Link, ...]:
    return tuple(Link(label, href) for label, href in pairs if href)


def day_text(value: dt.date) -> str:
    return f"{value.day} {value:%b %Y}"


def _local(instant: dt.datetime, patient: Patient) -> dt.date:
    return instant.astimezone(patient.zone).date()


# --- Each patient's own calendar, in SQL ----------------------------------------------------------------


def zones_today(zones: Iterable[str], now: dt.datetime) -> dict[str, dt.date]:
    """{time zone: its date at ``now``}: what ``patient_today`` says for a patient there (patients.today)."""
    return {zone: zone_today(zone, now) for zone in zones}


def per_zone(today: dict[str, dt.date], zone_field: str, condition: Callable[[str, dt.date], Q]) -> Q:
    """A filter that depends on each patient's own date: ``condition(zone, that zone's date)`` for the
    patients in each time zone there is (usually one or two), OR-ed."""
    found = Q(pk__in=[])
    for zone, day in today.items():
        found |= Q(**{zone_field: zone}) & condition(zone, day)
    return found


def midnight(day: dt.date, zone: str) -> dt.datetime:
    """The first instant of ``day`` in ``zone``."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(zone))


def in_clinics(queryset, user, *paths: str):
    """``visible_to`` scopes a row by its own clinic; the rows it joins (its patient, its check-in) are in
    the same clinic, and saying so lets the database read them by clinic instead of scanning every clinic's."""
    if user.is_superuser:
        return queryset
    ids = staff_clinic_ids(user)
    return queryset.filter(**{f"{path}__clinic_id__in": ids for path in paths})


# --- Conflicts ------------------------------------------------------------------------------------------


def conflict_flags(user):
    flags = visible_to(user, ConflictFlag.objects.filter(status=FlagStatus.OPEN, patient__deleted_at__isnull=True))
    return in_clinics(flags, user, "patient")


def conflicts(user, span: Span) -> Found:
    """Open opioid flags: the most serious first, then the earliest safe start (none last)."""
    flags = conflict_flags(user)
    if not span.limit:
        return Found(flags.count())
    rank = Case(*(When(severity=s, then=Value(n)) for s, n in SEVERITY_ORDER.items()), default=Value(3))
    rows = list(
        flags.select_related("patient__clinic")
        .annotate(total=Window(Count("*")))
        .order_by(rank, F("earliest_safe_start").asc(nulls_last=True), "pk")[span.offset : span.end]
    )
    if not rows and span.offset:
        return Found(flags.count())
    return Found(rows[0].total if rows else 0, conflict_items(rows))


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


# --- Tasks ------------------------------------------------------------------------------------------------


def _task_section(task: ClinicianTask) -> str:
    if task.kind == TaskKind.OTHER and task.key.startswith(MORNING_DOSE_PREFIX):
        return "side_effects"  # SE-3's suggestion comes from the same side effects
    return TASK_SECTION.get(task.kind, "tasks")


def _section_sql():
    """``_task_section`` as SQL, so the database counts and cuts each section."""
    whens = [When(kind=kind, then=Value(section)) for kind, section in TASK_SECTION.items()]
    whens.append(When(kind=TaskKind.OTHER, key__startswith=MORNING_DOSE_PREFIX, then=Value("side_effects")))
    return Case(*whens, default=Value("tasks"))


def open_tasks(user, *, assigned_to=None, unassigned: bool = False):
    tasks = visible_to(user, ClinicianTask.objects.filter(status=TaskStatus.OPEN, patient__deleted_at__isnull=True))
    tasks = in_clinics(tasks, user, "patient")
    if assigned_to is not None:
        tasks = tasks.filter(assigned_to=assigned_to)
    if unassigned:
        tasks = tasks.filter(assigned_to__isnull=True)
    return tasks


def tasks_by_section(tasks, spans: dict[str, Span]) -> dict[str, Found]:
    """Every task section's count and its asked-for rows in one query: the tasks numbered within their
    section in order of urgency (the tone of the kind, then the due date, none last), and counted."""
    section = _section_sql()
    high = [kind for kind, tone in TASK_TONE.items() if tone == "high"]
    tone = Case(When(kind__in=high, then=Value(TONE_RANK["high"])), default=Value(TONE_RANK["medium"]))
    urgency = [tone, F("due_on").asc(nulls_last=True), F("pk").asc()]
    deepest = max((s.end for s in spans.values()), default=0)
    rows = list(
        tasks.annotate(
            section=section,
            position=Window(RowNumber(), partition_by=[section], order_by=urgency),
            total=Window(Count("*"), partition_by=[section]),
        )
        .filter(position__lte=max(deepest, 1))
        .select_related("patient__clinic", "assigned_to")
        .order_by("section", "position")
    )
    counts: dict[str, int] = {}
    shown: dict[str, list[ClinicianTask]] = defaultdict(list)
    for task in rows:
        counts[task.section] = task.total
        span = spans.get(task.section)
        if span is not None and span.offset < task.position <= span.end:
            shown[task.section].append(task)
    return {key: Found(counts.get(key, 0), task_items(shown[key])) for key in TASK_SECTIONS}


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


# --- Side effects -------------------------------------------------------------------------------------------


def _unreviewed_reports(user, now: dt.datetime):
    """Side effects recorded after the patient's last review mark, in the lookback; a severe report whose
    SE-4 task is open is that task's row instead, so it is left out here."""
    # After the last mark: no mark reaches the check-in (an anti-join, not a subquery per check-in).
    reviewed = SideEffectReview.objects.filter(
        patient=OuterRef("checkin__patient"), up_to__gte=OuterRef("checkin__recorded_at")
    )
    under_review = ClinicianTask.objects.filter(
        patient=OuterRef("checkin__patient"), kind=TaskKind.SIDE_EFFECT, status=TaskStatus.OPEN
    )
    reports = visible_to(
        user,
        SideEffectReport.objects.filter(
            severity__gte=1,
            checkin__deleted_at__isnull=True,
            checkin__patient__deleted_at__isnull=True,
            checkin__recorded_at__gte=now - dt.timedelta(days=SIDE_EFFECT_LOOKBACK_DAYS),
            checkin__recorded_at__lte=now,
        ).exclude(checkin__patient__status=PatientStatus.DISCONTINUED),
    )
    reports = in_clinics(reports, user, "checkin", "checkin__patient")  # check-ins by clinic and date
    return reports.filter(~Exists(reviewed)).exclude(Q(severity__gte=3) & Exists(under_review))


def side_effects(user, now: dt.datetime, span: Span) -> Found:
    """One row per patient with unreviewed side effects: the worst first, then the newest."""
    reports = _unreviewed_reports(user, now)
    per_patient = reports.values("checkin__patient_id").annotate(
        worst=Max("severity"), newest=Max("checkin__recorded_at")
    )
    if not span.limit:
        return Found(per_patient.order_by().count())
    groups = list(
        per_patient.annotate(total=Window(Count("*"))).order_by("-worst", "-newest", "checkin__patient_id")[
            span.offset : span.end
        ]
    )
    if not groups:
        return Found(per_patient.order_by().count() if span.offset else 0)
    shown = [g["checkin__patient_id"] for g in groups]
    by_patient: dict[int, list[SideEffectReport]] = defaultdict(list)
    for report in (
        reports.filter(checkin__patient_id__in=shown)
        .select_related("checkin__patient__clinic")
        .order_by("checkin__recorded_at", "checkin_id", "pk")
    ):
        by_patient[report.checkin.patient_id].append(report)
    return Found(groups[0]["total"], [side_effect_item(by_patient[pk]) for pk in shown if by_patient[pk]])


def side_effect_item(rows: list[SideEffectReport]) -> Item:
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
    return Item(
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


def _effect(report: SideEffectReport) -> str:
    name = report.description if report.effect == "other" and report.description else report.get_effect_display()
    return f"{name} ({SEVERITY_WORD.get(report.severity, report.get_severity_display()).lower()})"


# --- Missed check-ins ---------------------------------------------------------------------------------------


def missed_checkins(user, now: dt.datetime, today: dict[str, dt.date], span: Span) -> tuple[Found, list]:
    """Active patients whose latest check-in is 8 or more of their own days ago (or who never checked in
    that long after starting), the longest first. The database decides who, in each patient's own
    calendar (``per_zone``); returns the count, and (patient id, last check-in, plan start) of the rows
    asked for, for ``missed_items`` once the page's patients are read."""
    checkins = SymptomCheckIn.objects.filter(patient=OuterRef("pk"))
    last = checkins.order_by("-recorded_at").values("recorded_at")[:1]
    recent = checkins if user.is_superuser else checkins.filter(clinic_id__in=staff_clinic_ids(user))
    started = TitrationPlan.objects.filter(patient=OuterRef("pk"), status=PlanStatus.ACTIVE).values("start_date")[:1]
    gap = dt.timedelta(days=MISSED_CHECKIN_DAYS - 1)

    def missed(zone: str, day: dt.date) -> Q:
        cutoff = midnight(day - gap, zone)  # a check-in from it on is on a day less than 8 days ago
        never = Q(plan_start__lte=day - dt.timedelta(days=MISSED_CHECKIN_DAYS)) | Q(
            plan_start__isnull=True, created_at__lt=cutoff
        )
        return ~Exists(recent.filter(recorded_at__gte=cutoff)) & (Exists(checkins) | never)

    rows = (
        visible_to(user, Patient.objects.filter(status=PatientStatus.ACTIVE))
        .annotate(plan_start=Subquery(started))
        .filter(per_zone(today, "time_zone", missed))
        .annotate(last_checkin=Subquery(last))  # for the rows found only
        .order_by()
        .values_list("pk", "time_zone", "last_checkin", "plan_start", "created_at")
    )
    found = []
    for pk, zone, last_checkin, plan_start, created_at in rows:
        day, place = today[zone], ZoneInfo(zone)
        since = (
            last_checkin.astimezone(place).date() if last_checkin else plan_start or created_at.astimezone(place).date()
        )
        found.append(((day - since).days, pk, last_checkin, since, plan_start))
    # The longest gap first: in days of each patient's calendar, which SQL cannot order across zones.
    found.sort(key=lambda row: (-row[0], row[1]))
    return Found(len(found)), found[span.offset : span.end]


def missed_items(rows: list, patients: dict[int, Patient]) -> list[Item]:
    out = []
    for days, pk, last_checkin, since, plan_start in rows:
        patient = patients[pk]
        if last_checkin is not None:
            title = f"No check-in since {day_text(since)}"
            reason = f"{days} days without a check-in (weekly, REM-3)"
        else:
            title = "No check-in yet"
            reason = f"{days} days since {'the plan started' if plan_start else 'the record was made'}"
        out.append(
            Item(
                kind="missed_checkins",
                patient=patient,
                title=title,
                reasons=(reason,),
                when=f"Last check-in {day_text(since)}" if last_checkin is not None else "Never",
                tone="high" if days >= 2 * 7 else "medium",
                badge=f"{days} days",
                links=links_of(
                    ("Contact details", url("patient-edit", patient.pk)), ("Open chart", url("patient", patient.pk))
                ),
                sort=(-days, patient.pk, 0),
            )
        )
    return out


# --- Failed reminders -----------------------------------------------------------------------------------------


def _still_failed(user, today: dict[str, dt.date]):
    """Failed reminders of the patient's last two weeks that no later reminder on their channel got past."""
    got_through = Reminder.objects.filter(
        patient=OuterRef("patient"),
        channel=OuterRef("channel"),
        status=ReminderStatus.SENT,
        sent_at__isnull=False,
        sent_at__gt=OuterRef("updated_at"),
    )
    recent = per_zone(
        today,
        "patient__time_zone",
        lambda zone, day: Q(local_date__gte=day - dt.timedelta(days=FAILED_REMINDER_DAYS)),
    )
    failed = visible_to(user, Reminder.objects.filter(status=ReminderStatus.FAILED, patient__deleted_at__isnull=True))
    return in_clinics(failed, user, "patient").filter(recent, ~Exists(got_through))


def reminders(user, today: dict[str, dt.date], span: Span) -> Found:
    """Failed reminders, one row per patient and channel, the latest failure first."""
    failed = _still_failed(user, today)
    groups = failed.values("patient_id", "channel").annotate(count=Count("pk"), latest=Max("updated_at"))
    if not span.limit:
        return Found(groups.order_by().count())
    sms_last = Case(When(channel="sms", then=Value(1)), default=Value(0), output_field=IntegerField())
    shown = list(
        groups.annotate(total=Window(Count("*"))).order_by("-latest", "patient_id", sms_last)[span.offset : span.end]
    )
    if not shown:
        return Found(groups.order_by().count() if span.offset else 0)
    latest: dict[tuple[int, str], Reminder] = {}
    for reminder in (
        failed.filter(patient_id__in={g["patient_id"] for g in shown})
        .select_related("patient__clinic")
        .order_by("updated_at", "pk")
    ):
        latest[(reminder.patient_id, reminder.channel)] = reminder
    items = [
        reminder_item(latest[(g["patient_id"], g["channel"])], g["count"])
        for g in shown
        if (g["patient_id"], g["channel"]) in latest
    ]
    return Found(shown[0]["total"], items)


def reminder_item(latest: Reminder, count: int) -> Item:
    patient = latest.patient
    what = f"{count} {latest.get_channel_display().lower()} reminder{'s' if count != 1 else ''} failed"
    error = latest.last_error.removeprefix("permanent: ").removeprefix("transient: ") or "no detail"
    return Item(
        kind="reminders",
        patient=patient,
        title=what,
        reasons=(f"latest: {latest.get_kind_display()} for {day_text(latest.local_date)}: {error}",),
        when=f"Failed {day_text(_local(latest.updated_at, patient))}",
        tone="medium",
        badge=latest.get_channel_display(),
        links=links_of(
            ("Reminder preferences", url("reminder-preferences", patient.pk)),
            ("Contact details", url("patient-edit", patient.pk)),
        ),
        sort=(-int(latest.updated_at.timestamp()), patient.pk, int(latest.channel == "sms")),
    )
