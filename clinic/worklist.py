"""The worklist's reads: what needs a clinician today, in the user's clinics, one kind at a time.

Every queryset starts from ``ldnclinic.scoping.visible_to`` (a user in two clinics sees both, each row
labelled). The page shows each kind's most urgent rows (``SHOWN``) under its exact count, and a kind's
own page (``?kind=``) shows all of them, ``PAGE_SIZE`` at a time, read the same way: a clinic with 2,000
rows of a kind reads and draws the 20 it shows, in the same number of queries as a clinic with 5.
Dates are each patient's own (``patients.services.patient_today``), in SQL too (``worklist_rows.per_zone``).

Kinds, in the order the page shows them:
- conflicts: open opioid flags (conflict, unavailable, then caution and the rest), with the earliest
  safe LDN start or why there is none (OPI-W1/W2);
- steps: the next planned step falling due in the patient's next 7 days (REM-1's evening, as
  ``titration.reminders._next_step_up_day`` computes it), soonest first, allowed or held with the
  step-up rule's reasons (1.3);
- side_effects: severe-effect review tasks (SE-4, SE-3's morning-dose suggestion), and check-ins with
  side effects recorded after the patient's last "side effects reviewed" mark;
- missed_checkins: active patients with no check-in for 8 days or more (REM-3);
- supply: supplies running out (RX-3, the refill day) and new prescriptions needed because the next
  step cannot be made from what is dispensed (RX-3);
- labs: liver reviews and lab alerts (LAB-2 tasks); efficacy: EFF-1 review tasks; tasks: the other
  open clinician tasks; reminders: reminders that failed and have not been followed by one that went.

A row leaves the list when what it asks for is done: the flag acknowledged, the task closed, the side
effects marked reviewed, the patient checking in, a reminder getting through.
"""

import math
from dataclasses import dataclass, field

from django.db.models import Aggregate, CharField
from django.utils import timezone

from ldnclinic.scoping import visible_to
from patients.models import Clinic, Patient

from . import worklist_plans as plans
from .access import can
from .worklist_rows import (
    NOTHING,
    TASK_SECTIONS,
    Found,
    Item,
    PostAction,
    Span,
    conflicts,
    missed_checkins,
    missed_items,
    open_tasks,
    reminders,
    side_effects,
    tasks_by_section,
    url,
    zones_today,
)

KINDS: tuple[tuple[str, str], ...] = (
    ("conflicts", "Open conflicts"),
    ("steps", "Steps due this week"),
    ("side_effects", "Side effects to review"),
    ("missed_checkins", "Missed check-ins"),
    ("supply", "Supplies and new prescriptions"),
    ("labs", "Liver reviews and lab alerts"),
    ("reminders", "Failed reminders"),
    ("efficacy", "Efficacy reviews due"),
    ("tasks", "Open tasks"),
)
KIND_LABELS = dict(KINDS)
MINE, UNASSIGNED, EVERYONE = "mine", "unassigned", "everyone"
ASSIGNEES = ((EVERYONE, "Everyone"), (MINE, "Mine"), (UNASSIGNED, "Unassigned"))
SHOWN = 20  # rows of each kind on the whole worklist; the rest are a link away
PAGE_SIZE = 50  # rows a page on a kind's own page

__all__ = ["ASSIGNEES", "EVERYONE", "KINDS", "KIND_LABELS", "MINE", "UNASSIGNED", "Item", "url", "worklist_for"]


@dataclass
class Section:
    key: str
    label: str
    items: list[Item] = field(default_factory=list)  # the rows shown, most urgent first
    count: int = 0  # all the rows of the kind
    page: int = 1
    pages: int = 1
    query: str = ""  # the query string of the kind's own page (the view sets it: it knows the filters)

    @property
    def more(self) -> int:
        """Rows not shown on the whole worklist (its "Show all" link)."""
        return max(0, self.count - len(self.items))

    @property
    def previous_page(self) -> int | None:
        return self.page - 1 if self.page > 1 else None

    @property
    def next_page(self) -> int | None:
        return self.page + 1 if self.page < self.pages else None


@dataclass
class Worklist:
    sections: list[Section]  # the kinds asked for, in page order
    counts: list[tuple[str, str, int]]  # (kind, label, rows) for every kind, under the assignee filter
    total: int
    multi_clinic: bool
    clinics: list[Clinic]
    kind: str = ""
    page: int = 1


class _Zones(Aggregate):
    """The distinct time zones of a clinic's patients, comma-separated (IANA names have no commas)."""

    function = "GROUP_CONCAT"
    template = "%(function)s(DISTINCT %(expressions)s)"
    output_field = CharField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, function="STRING_AGG", template="%(function)s(DISTINCT %(expressions)s, ',')"
        )


# --- The page ---------------------------------------------------------------------------------------


def worklist_for(*, user, kind: str = "", assignee: str = EVERYONE, page: int = 1) -> Worklist:
    """The user's worklist, filtered by kind ('' for all, each kind's first rows) and by whose tasks
    they are; ``page`` pages through one kind."""
    now = timezone.now()
    clinics = list(visible_to(user, Clinic).annotate(zones=_Zones("patients__time_zone")).order_by("name", "pk"))
    today = zones_today({z for c in clinics for z in (c.zones or "").split(",") if z}, now)
    page = max(1, page) if kind else 1
    spans = {
        key: Span((page - 1) * PAGE_SIZE, PAGE_SIZE) if kind == key else Span(0, 0 if kind else SHOWN)
        for key, _ in KINDS
    }
    tasks_only = assignee == MINE  # "mine" is the tasks assigned to the user: no other row is anyone's
    found: dict[str, Found] = {}
    tasks = open_tasks(user, assigned_to=user if tasks_only else None, unassigned=assignee == UNASSIGNED)
    task_spans = {key: spans[key] for key in TASK_SECTIONS}
    # Side effects mix tasks with reports: each gives its first rows up to the span's end, merged below.
    task_spans["side_effects"] = Span(0, spans["side_effects"].end)
    found.update(tasks_by_section(tasks, task_spans))
    se_tasks = found.pop("side_effects")
    needed: set[int] = set()
    if tasks_only:
        for key in ("conflicts", "steps", "missed_checkins", "supply", "reminders"):
            found[key] = NOTHING
        reports = NOTHING
        missed_rows, plan_rows = [], None
    else:
        found["conflicts"] = conflicts(user, spans["conflicts"])
        reports = side_effects(user, now, Span(0, spans["side_effects"].end))
        found["missed_checkins"], missed_rows = missed_checkins(user, now, today, spans["missed_checkins"])
        found["reminders"] = reminders(user, today, spans["reminders"])
        plan_rows = plans.read_plans(user, today)
        steps_shown = plans.shown(plan_rows.steps, spans["steps"])
        supply_shown = plans.shown(plan_rows.supply, spans["supply"])
        needed = {row[1] for row in missed_rows}
        needed |= {state.patient_id for _, state in steps_shown} | {state.patient_id for _, state, _ in supply_shown}
    span = spans["side_effects"]
    merged = sorted(se_tasks.items + reports.items, key=lambda i: i.sort)[span.offset : span.end]
    found["side_effects"] = Found(se_tasks.count + reports.count, merged)
    patients = _patients(user, needed, clinics)
    if plan_rows is not None:
        found["missed_checkins"].items = missed_items(missed_rows, patients)
        found["steps"] = Found(len(plan_rows.steps), plans.step_items(steps_shown, patients))
        found["supply"] = Found(len(plan_rows.supply), plans.supply_items(supply_shown, patients))
    counts = [(key, label, found[key].count) for key, label in KINDS]
    sections = []
    for key, label in KINDS:
        if kind and key != kind:
            continue
        rows = [_with_actions(item, user) for item in found[key].items]
        pages = max(1, math.ceil(found[key].count / PAGE_SIZE)) if kind else 1
        sections.append(Section(key, label, rows, found[key].count, page if kind else 1, pages))
    return Worklist(
        sections=sections,
        counts=counts,
        total=sum(n for _, _, n in counts),
        multi_clinic=len(clinics) > 1,
        clinics=clinics,
        kind=kind,
        page=page,
    )


def _patients(user, ids: set[int], clinics: list[Clinic]) -> dict[int, Patient]:
    """The patients of the rows shown that did not come with their own record (plans, missed check-ins)."""
    if not ids:
        return {}
    found = visible_to(user, Patient.objects.filter(pk__in=ids)).in_bulk()
    by_id = {c.pk: c for c in clinics}
    for patient in found.values():
        if patient.clinic_id in by_id:  # the clinic rows already read
            patient.clinic = by_id[patient.clinic_id]
    return found


def _with_actions(item: Item, user) -> Item:
    """Offer the row's buttons only to the roles that may press them (the services check again):
    reviewing side effects and taking on tasks are a prescriber's or a nurse's."""
    if not item.posts:
        return item
    if not can(user, item.patient.clinic_id, "task_assign" if item.task is not None else "side_effects_review"):
        item.posts = ()
    elif item.task is not None and item.task.assigned_to_id == user.pk:
        item.posts = tuple(
            PostAction("Hand back", p.url, (("to", "nobody"),)) if p.label == "Assign to me" else p for p in item.posts
        )
    return item
