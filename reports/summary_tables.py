"""The clinic report as the page shows it: tables of counts, with a share only where the denominator
can bear one (reports.summary computes the counts)."""

from collections import Counter
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from patients.flag_models import FlagKind, GateOutcome, TaskKind
from patients.models import Condition, PatientStatus
from symptoms import outcomes
from symptoms.models import SideEffect
from titration.reminder_models import ReminderKind

from .summary import CONDITION_RULES, GRADES, STAGES, ClinicReport

MIN_DENOMINATOR = 5


@dataclass(frozen=True)
class Rate:
    """``n`` of ``of`` patients; the share only when the denominator can bear it, never a division by 0."""

    n: int
    of: int

    @property
    def share(self) -> str:
        if self.of < MIN_DENOMINATOR:
            return f"n < {MIN_DENOMINATOR}"
        percent = (Decimal(self.n) * 100 / Decimal(self.of)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
        return f"{outcomes.number(percent)}%"


@dataclass(frozen=True)
class Table:
    """What the page shows: a caption, column headings, rows whose first cell heads the row, an optional
    total row, and what to say when there are no rows."""

    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple, ...]
    total: tuple | None = None
    empty: str = "None."
    note: str = ""


# --- What the page shows --------------------------------------------------------------------------------------


def _counts(caption: str, heading: str, unit: str, choices, counts: Counter, total_label: str) -> Table:
    rows = tuple((label, counts[value]) for value, label in choices)
    return Table(caption, (heading, unit), rows, total=(total_label, sum(counts.values())))


def cohort_tables(report: ClinicReport) -> list[Table]:
    reasons = tuple(sorted(report.discontinued.items(), key=lambda item: (-item[1], item[0])))
    return [
        _counts(
            "Live patients by status (now)",
            "Status",
            "Patients",
            PatientStatus.choices,
            report.statuses,
            "All live patients",
        ),
        Table(
            "Live patients by condition (now)",
            ("Condition", "Patients"),
            tuple((label, report.conditions[value]) for value, label in Condition.choices),
            note="A patient with two conditions counts under each.",
        ),
        _counts(
            "Live patients by titration stage (now)",
            "Stage",
            "Patients",
            STAGES.items(),
            report.stages,
            "All live patients",
        ),
        Table(
            "Starts and stops in the period",
            ("Event", "Patients"),
            (
                ("Started LDN: first dose taken in the period", report.started),
                ("Discontinued in the period", sum(report.discontinued.values())),
            ),
        ),
        Table(
            "Reasons for discontinuation in the period",
            ("Reason (as recorded)", "Discontinuations"),
            reasons,
            empty="No discontinuations in the period.",
        ),
    ]


def outcome_tables(report: ClinicReport) -> list[Table]:
    evaluable = report.evaluable
    pain = Table(
        f"Pain response of the {evaluable} patient{'s' * (evaluable != 1)} with an evaluable result (RESP-1, RESP-2)",
        ("Result", "Patients", "Share"),
        (
            (
                "Pain responders: improved 30% or more (RESP-1)",
                report.pain_responders,
                Rate(report.pain_responders, evaluable).share,
            ),
            *((label, report.grades[grade], Rate(report.grades[grade], evaluable).share) for grade, label in GRADES),
        ),
    )
    conditions = Table(
        "Condition and global responders (RESP-4 to RESP-7), where they apply",
        (
            "Definition",
            "Evaluated patients it applies to",
            "With a result",
            "Responders",
            "Share of those with a result",
        ),
        tuple(
            (label, c["applies"], c["defined"], c["yes"], Rate(c["yes"], c["defined"]).share)
            for rule, label in CONDITION_RULES.items()
            if (c := report.condition_results[rule])["applies"]
        ),
        empty="No evaluated patient has a condition or global measure that applies.",
    )
    return [
        Table(
            "Week-12 results (RESP-1)",
            ("Patients", "Number"),
            (
                ("Evaluated: 12 weeks on the maintenance dose reached", report.evaluated),
                ("With an evaluable pain result", evaluable),
                ("Pain result undefined: no baseline, a baseline of 0, or too few check-ins", report.pain_undefined),
            ),
        ),
        pain,
        conditions,
        Table(
            "Efficacy review (EFF-1, EFF-2)",
            ("Patients", "Number", "Share"),
            (
                ("EFF-1 review due: 12 weeks on the maintenance dose reached", report.review_due, ""),
                (
                    "EFF-2 flag: not a responder, or status unknown (share of reviews due)",
                    report.eff2,
                    Rate(report.eff2, report.review_due).share,
                ),
                (
                    "Responders by any definition (share of evaluated)",
                    report.any_responder,
                    Rate(report.any_responder, report.evaluated).share,
                ),
            ),
        ),
    ]


def safety_tables(report: ClinicReport) -> list[Table]:
    effects = dict(SideEffect.choices)
    severe = tuple((effects.get(effect, effect), n) for effect, n in sorted(report.severe.items()))
    gates = [(GateOutcome.BLOCKED, "Blocked"), (GateOutcome.OVERRIDDEN, "Overridden by a prescriber")]
    return [
        _counts(
            "Open opioid conflict flags by kind (now)",
            "Kind",
            "Flags",
            FlagKind.choices,
            report.flags,
            "All open flags",
        ),
        _counts("Safety gate events in the period", "Outcome", "Events", gates, report.gates, "All events"),
        _counts(
            "Open clinician tasks by kind (now)", "Kind", "Tasks", TaskKind.choices, report.tasks, "All open tasks"
        ),
        Table(
            "Severe side effects reported in the period (SE-4)",
            ("Side effect", "Reports"),
            severe,
            total=("All severe reports", sum(report.severe.values())),
            empty="No severe side effect reported in the period.",
            note=f"Patients with a severe side effect: {len(report.severe_patients)}.",
        ),
        _counts(
            "Reminders that failed for good in the period (by the day they were for)",
            "Reminder",
            "Reminders",
            ReminderKind.choices,
            report.failed,
            "All failed reminders",
        ),
    ]
