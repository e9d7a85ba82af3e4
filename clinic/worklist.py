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
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from django.utils import timezone

from ldnclinic import stamps
from ldnclinic.scoping import visible_to
from patients.models import Clinic, Patient

from . import worklist_plans as plans
from . import worklist_rows
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
SHOWN = 10  # rows of each kind on the whole worklist; the rest are a link away
CACHE_SECONDS = 120  # a computed worklist outlives no write to its clinics, and no more than this
PAGE_SIZE = 50  # rows a page on a kind's own page

# How the rows are computed and what they hold: a cached worklist of other code is never read back.
CODE = stamps.code_digest(sys.modules[__name__], plans, worklist_rows)

__all__ = [
    "ASSIGNEES",
    "EVERYONE",
    "KINDS",
    "KIND_LABELS",
    "MINE",
    "UNASSIGNED",
    "Item",
    "url",
    "worklist_for",
    "worklist_page",
]


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


# --- The page ---------------------------------------------------------------------------------------


def worklist_for(*, user, kind: str = "", assignee: str = EVERYONE, page: int = 1) -> Worklist:
    """The user's worklist, filtered by kind ('' for all, each kind's first rows) and by whose tasks
    they are; ``page`` pages through one kind.

    Kept in the cache until a row of one of its clinics is written (``ldnclinic.stamps``), or for
    ``CACHE_SECONDS`` at most, and keyed by each patient zone's date, so a new day is a new worklist; the
    buttons a row offers are the user's own, chosen on every request."""
    return _kept(user, _scope(user), kind, assignee, max(1, page) if kind else 1)


def _kept(user, scope: tuple, kind: str, assignee: str, page: int) -> Worklist:
    clinics, ids, today, now = scope
    found = stamps.cached(
        "worklist",
        ids,
        _parts(user, kind, assignee, page, today),
        lambda: _compute(user, clinics, today, now, kind, assignee, page),
        CACHE_SECONDS,
    )
    for section in found.sections:
        section.items = [_with_actions(item, user) for item in section.items]
    return found


def worklist_page(
    *, user, kind: str, assignee: str, page: int, render: Callable[[Worklist], str], key: tuple
) -> tuple[Worklist, str]:
    """The worklist and its rows drawn by ``render``, kept together as ``worklist_for`` keeps the rows:
    drawing a hundred rows costs more than reading them back. The drawing is the user's own (their
    buttons, "assigned to you", their form tokens), so it is kept for the user, under ``key`` as well
    (what else the drawing depends on: the template's code, the form token's secret)."""
    page = max(1, page) if kind else 1
    scope = _scope(user)
    _, ids, today, _ = scope

    def draw() -> tuple[Worklist, str]:
        found = _kept(user, scope, kind, assignee, page)
        return found, render(found)

    parts = (_parts(user, kind, assignee, page, today), user.pk, key)
    return stamps.cached("worklist-page", ids, parts, draw, CACHE_SECONDS)


def _scope(user):
    """The user's clinics, their ids, each patient zone's date there, and now."""
    now = timezone.now()
    clinics = list(visible_to(user, Clinic).order_by("name", "pk"))
    ids = [c.pk for c in clinics]
    zones = stamps.cached("worklist-zones", ids, (), lambda: _zones(ids), CACHE_SECONDS)
    return clinics, ids, zones_today(zones, now), now


def _parts(user, kind: str, assignee: str, page: int, today: dict) -> tuple:
    """What a kept worklist depends on besides its clinics' data."""
    whose = user.pk if assignee == MINE else None
    return (CODE, kind, assignee, page, whose, user.is_superuser, sorted(today.items()))


def _zones(clinic_ids: list[int]) -> list[str]:
    """The time zones of the clinics' patients (each patient's today is their own)."""
    found = Patient.all_objects.filter(clinic_id__in=clinic_ids).order_by().values_list("time_zone", flat=True)
    return sorted(found.distinct())


def _compute(user, clinics: list[Clinic], today: dict, now, kind: str, assignee: str, page: int) -> Worklist:
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
        plan_rows = plans.read_plans(user, today, spans["steps"], spans["supply"])
        needed = {row[1] for row in missed_rows}
        needed |= {facts.patient_id for facts, _ in [*plan_rows.steps, *plan_rows.supply]}
    span = spans["side_effects"]
    merged = sorted(se_tasks.items + reports.items, key=lambda i: i.sort)[span.offset : span.end]
    found["side_effects"] = Found(se_tasks.count + reports.count, merged)
    patients = _patients(user, needed, clinics)
    if plan_rows is not None:
        found["missed_checkins"].items = missed_items(missed_rows, patients)
        found["steps"] = Found(plan_rows.steps_count, plans.step_items(plan_rows.steps, patients))
        found["supply"] = Found(plan_rows.supply_count, plans.supply_items(plan_rows.supply, patients))
    counts = [(key, label, found[key].count) for key, label in KINDS]
    sections = []
    for key, label in KINDS:
        if kind and key != kind:
            continue
        rows = found[key].items
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
