"""Pure dose and titration rules (domain.md section 1): DOSE-1, DOSE-2 plans, the step-up rule 1.3,
side effects SE-1..SE-5, efficacy EFF-1/EFF-2. No ORM, no clock (pass ``today``), no I/O.

Formulations, deliverability and supply (RX-1..RX-3) live in titration/supply.py.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal

LDN_TARGET_MG = Decimal("4.5")
LDN_HARD_MAX_MG = Decimal("5.0")  # DOSE-1: above this is not LDN
LDN_VERY_LOW_MG = Decimal("0.5")
MIN_DAYS_DEFAULT = 7
MIN_DAYS_RANGE = (3, 14)  # step-up rule 1.3 condition 1

SIDE_EFFECT_WAIT_DAYS = 3  # 1.3.3: no moderate/severe in the last 3 days; resolved >= 3 days ago [S11][POLICY]
SIDE_EFFECT_WINDOW_DAYS = 14  # SE-1..SE-4 read the current dose's reports of the last 14 days (two weekly check-ins)
MILD_PERSISTS_DAYS = 6  # SE-2 "two consecutive weekly check-ins": reports >= 6 days apart (a day-early check-in counts)
VOMITING_DAYS = 2  # SE-4
STEP_BACK_FLOOR_MG = Decimal("0.25")  # SE-5
EFFICACY_REVIEW_DAYS = 84  # EFF-1: 12 weeks on the maintenance dose

NONE, MILD, MODERATE, SEVERE = 0, 1, 2, 3  # as symptoms.models.Severity
SEVERITY_WORDS = {NONE: "no", MILD: "mild", MODERATE: "moderate", SEVERE: "severe"}
SLEEP_EFFECTS = ("insomnia", "vivid_dreams")  # SE-3
_EFFECT_WORDS = {
    "vivid_dreams": "vivid dreams",
    "decreased_appetite": "decreased appetite",
    "other": "other side effect",
}


class DoseError(ValueError):
    pass


class PlanError(ValueError):
    """A plan that cannot be built: no steps, a step's min days outside 3..14, a dose lower than the one before."""


def check_dose(dose_mg: Decimal) -> list[str]:
    """DOSE-1: refuse a dose outside 0 < dose <= 5.0 mg; return warnings for the edges."""
    if not isinstance(dose_mg, Decimal):
        raise DoseError("A dose must be an exact decimal number of mg.")
    if not dose_mg.is_finite() or dose_mg <= 0:
        raise DoseError("A dose must be more than 0 mg.")
    if dose_mg > LDN_HARD_MAX_MG:
        raise DoseError(f"{dose_mg} mg is above {LDN_HARD_MAX_MG} mg: that is not low-dose naltrexone.")
    warnings = []
    if dose_mg > LDN_TARGET_MG:
        warnings.append(f"{dose_mg} mg is above the usual maximum of {LDN_TARGET_MG} mg.")
    if dose_mg < LDN_VERY_LOW_MG:
        warnings.append(f"{dose_mg} mg is in the very-low-dose range (below {LDN_VERY_LOW_MG} mg).")
    return warnings


def fmt_mg(value: Decimal) -> str:
    """How a clinician writes an amount: 3 -> "3.0", 0.250 -> "0.25", 4.500 -> "4.5"."""
    text = format(value.normalize(), "f")
    return text if "." in text else f"{text}.0"


def check_min_days(min_days: int) -> None:
    """1.3 condition 1: a step lasts 3 to 14 days before the next step-up."""
    low, high = MIN_DAYS_RANGE
    if isinstance(min_days, bool) or not isinstance(min_days, int) or not low <= min_days <= high:
        raise PlanError(f"A step must last {low} to {high} days before the next step-up (1.3); got {min_days!r}.")


# --- DOSE-2: plans -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepSpec:
    """A template step (protocol or custom)."""

    dose_mg: Decimal
    min_days: int


@dataclass(frozen=True)
class PlannedStep:
    sequence: int
    dose_mg: Decimal
    planned_start: date
    min_days: int


def generate_plan(steps: Sequence[StepSpec], start: date, target_mg: Decimal | None = None) -> list[PlannedStep]:
    """DOSE-2: number the steps from 1 and date them, each ``min_days`` calendar days after the one before.

    Every dose passes DOSE-1 (DoseError); min days 3..14, non-decreasing doses and at least one step
    (PlanError; both are ValueErrors). ``target_mg`` (default: the last dose) drops the steps above it
    and, when it is not itself a step, ends the plan with a step at the target that keeps the min days
    of the first step it replaced (or of the last step, when the target is above every step).
    Dates are calendar dates: a step that crosses a daylight-saving change is still ``min_days`` days.
    """
    if isinstance(start, datetime) or not isinstance(start, date):
        raise TypeError("A plan starts on a date (not a datetime): steps count calendar days.")
    if not steps:
        raise PlanError("A plan needs at least one step.")
    previous: Decimal | None = None
    for n, step in enumerate(steps, 1):
        try:
            check_dose(step.dose_mg)
            check_min_days(step.min_days)
        except ValueError as exc:
            raise type(exc)(f"Step {n}: {exc}") from None
        if previous is not None and step.dose_mg < previous:
            raise PlanError(
                f"Step {n}: {fmt_mg(step.dose_mg)} mg is below the step before ({fmt_mg(previous)} mg); "
                "a plan's doses must not decrease (step back with SE-2/SE-5 instead)."
            )
        previous = step.dose_mg
    target = steps[-1].dose_mg if target_mg is None else target_mg
    try:
        check_dose(target)
    except DoseError as exc:
        raise DoseError(f"Target: {exc}") from None
    kept = [step for step in steps if step.dose_mg <= target]  # doses do not decrease: a prefix
    if not kept or kept[-1].dose_mg != target:
        replaced = steps[len(kept)] if len(kept) < len(steps) else steps[-1]
        kept.append(StepSpec(target, replaced.min_days))
    plan, day = [], start
    for sequence, step in enumerate(kept, 1):
        plan.append(PlannedStep(sequence, step.dose_mg, day, step.min_days))
        day += timedelta(days=step.min_days)
    return plan


# --- 1.3: step-up ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    rule: str  # a domain.md rule id ("SE-2", "RX-2") or, for the 1.3 conditions that have none, "1.3.1".."1.3.5"
    text: str  # what a clinician reads


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reasons: tuple[Reason, ...]  # empty when allowed


@dataclass(frozen=True)
class SideEffectObs:
    """One side-effect answer from a check-in. A check-in that no longer lists an effect is passed as a
    severity 0 observation of it: that is how an effect is seen to resolve."""

    effect: str  # symptoms.models.SideEffect value
    severity: int  # 0..3: none, mild, moderate, severe
    reported_on: date
    dose_mg: Decimal
    started_on: date | None = None

    def __post_init__(self) -> None:
        if isinstance(self.severity, bool) or self.severity not in SEVERITY_WORDS:
            raise ValueError(f"A side-effect severity is 0 to 3 (none, mild, moderate, severe); got {self.severity!r}.")


@dataclass(frozen=True)
class StepUpContext:
    today: date
    current_dose_mg: Decimal
    current_step_started: date
    min_days: int
    next_dose_mg: Decimal | None
    target_mg: Decimal
    open_conflict: bool  # 1.3.2, from the opioid engine
    side_effects: Sequence[SideEffectObs]  # recent observations (any dose), newest last
    next_dose_deliverable: bool | None  # 1.3.5; None = no active prescription
    lab_blocks: Sequence[str] = ()  # LAB-2: open liver reviews (patients.labs), each a clinician-readable reason


def _effect_word(effect: str) -> str:
    return _EFFECT_WORDS.get(effect, effect.replace("_", " "))


def _ago(today: date, day: date) -> str:
    days = (today - day).days
    return "today" if days == 0 else "1 day ago" if days == 1 else f"{days} days ago"


def _by_effect(observations: Sequence[SideEffectObs]) -> dict[str, list[SideEffectObs]]:
    """Group by effect, oldest first; a stable sort keeps same-day reports in their given order (newest last)."""
    groups: dict[str, list[SideEffectObs]] = {}
    for obs in sorted(observations, key=lambda o: o.reported_on):
        groups.setdefault(obs.effect, []).append(obs)
    return groups


_HOLD_RULE = {MILD: "SE-1", MODERATE: "SE-2", SEVERE: "SE-4"}


def _side_effect_holds(observations: Sequence[SideEffectObs], step_started: date, today: date) -> list[Reason]:
    """1.3 condition 3, one reason per effect.

    (a) any effect rated moderate/severe reported today-3 .. today, at any dose, holds;
    (b) an effect reported (severity >= 1) at this step, i.e. on or after the day it started, must have
        resolved: its latest report with severity >= 1 is followed by a severity 0 report, dated
        today-3 or earlier. Unlike the literal "began at this step", an effect carried over from an
        earlier step and still reported at this one also holds: SE-1 holds on any mild effect.
    """
    wait_from = today - timedelta(days=SIDE_EFFECT_WAIT_DAYS)
    reasons = []
    for effect, obs in _by_effect([o for o in observations if o.reported_on <= today]).items():
        word = _effect_word(effect)
        recent = [o for o in obs if o.reported_on >= wait_from and o.severity >= MODERATE]
        if recent:
            worst = max(recent, key=lambda o: (o.severity, o.reported_on))
            rule = _HOLD_RULE[worst.severity]
            ago = _ago(today, worst.reported_on)
            reasons.append(Reason(rule, f"held: {SEVERITY_WORDS[worst.severity]} {word} reported {ago} ({rule})"))
            continue
        if not any(o.severity >= MILD and o.reported_on >= step_started for o in obs):
            continue
        last = max(i for i, o in enumerate(obs) if o.severity >= MILD)
        if last == len(obs) - 1:  # nothing since says it has gone
            o = obs[last]
            rule = _HOLD_RULE[o.severity]
            ago = _ago(today, o.reported_on)
            text = f"held: {SEVERITY_WORDS[o.severity]} {word} reported {ago} has not resolved ({rule})"
            reasons.append(Reason(rule, text))
        elif (gone := obs[last + 1].reported_on) > wait_from:
            wait_until = gone + timedelta(days=SIDE_EFFECT_WAIT_DAYS)
            text = f"held: {word} resolved {_ago(today, gone)}; wait until {wait_until.isoformat()} (1.3.3)"
            reasons.append(Reason("1.3.3", text))
    return reasons


def can_step_up(ctx: StepUpContext) -> Decision:
    """Step-up rule 1.3: allowed only if all five conditions hold, and no liver review is pending (LAB-2).
    Every failing condition gives a reason."""
    reasons: list[Reason] = []
    days_on = max((ctx.today - ctx.current_step_started).days, 0)
    if days_on < ctx.min_days:
        earliest = ctx.current_step_started + timedelta(days=ctx.min_days)
        text = f"only {days_on} of {ctx.min_days} days at {fmt_mg(ctx.current_dose_mg)} mg (min days)"
        reasons.append(Reason("1.3.1", f"{text}: not before {earliest.isoformat()}"))
    if ctx.open_conflict:
        reasons.append(Reason("1.3.2", "open opioid conflict (OPI): a prescriber must resolve or override it"))
    reasons += _side_effect_holds(ctx.side_effects, ctx.current_step_started, ctx.today)
    reasons += [Reason("LAB-2", text) for text in ctx.lab_blocks]
    nxt = ctx.next_dose_mg
    if nxt is None:
        reasons.append(Reason("1.3.4", "no further step: the plan is at its last dose"))
        return Decision(not reasons, tuple(reasons))
    if not isinstance(nxt, Decimal) or not nxt.is_finite() or nxt <= 0:
        reasons.append(Reason("DOSE-1", f"next dose {nxt!r} is not a dose of more than 0 mg (DOSE-1)"))
        shown = str(nxt)
    else:
        shown = fmt_mg(nxt)
        if nxt > LDN_HARD_MAX_MG:
            text = f"next dose {shown} mg is above the {fmt_mg(LDN_HARD_MAX_MG)} mg hard maximum (DOSE-1)"
            reasons.append(Reason("DOSE-1", text))
        if nxt > ctx.target_mg:
            reasons.append(Reason("1.3.4", f"next dose {shown} mg is above the plan target {fmt_mg(ctx.target_mg)} mg"))
    if ctx.next_dose_deliverable is None:
        text = f"no active prescription on file: a prescriber must write one that covers {shown} mg (RX-2)"
        reasons.append(Reason("RX-2", text))
    elif not ctx.next_dose_deliverable:
        text = f"no active prescription covers {shown} mg: the dispensed strength or form cannot make it (RX-2)"
        reasons.append(Reason("RX-2", text))
    return Decision(not reasons, tuple(reasons))


# --- 1.4: side effects ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SideEffectPlan:
    action: str  # "continue" | "hold" | "step_back" | "hold_clinician"
    new_dose_mg: Decimal | None  # the dose to step back to; None = stay on the current dose
    suggest_morning: bool
    clinician_task: bool
    suppress_step_reminders: bool
    reasons: tuple[Reason, ...]


def step_back_dose(current_mg: Decimal, previous_mg: Decimal | None) -> Decimal:
    """SE-2/SE-5: back to the previous, lower dose; from step 1 (no lower previous dose) halve, floor 0.25 mg.

    A previous dose that is not lower than the current one counts as none: there is nothing lower to return
    to. The floor never raises a dose (0.1 mg stays 0.1 mg); halves are cut to 0.001 mg, the stored precision.
    """
    check_dose(current_mg)
    if previous_mg is not None and previous_mg < current_mg:
        check_dose(previous_mg)
        return previous_mg
    half = current_mg / 2
    cut = half.quantize(Decimal("0.001"), rounding=ROUND_DOWN)
    if cut != half:  # keep 0.75 as 0.75, not 0.750
        half = cut
    floor = min(STEP_BACK_FLOOR_MG, current_mg)
    return half if half > floor else floor


def _vomiting_days(obs: list[SideEffectObs], since: date) -> int:
    """SE-4 "vomiting >= 2 days": distinct days reported; a report whose started_on is an earlier day says it
    began then and was still there when reported, which is two days."""
    days = set()
    for o in obs:
        if o.severity >= MILD:
            days.add(o.reported_on)
            if o.started_on is not None and o.started_on < o.reported_on:
                days.add(max(o.started_on, since))
    return len(days)


def side_effect_plan(
    observations: Sequence[SideEffectObs],
    current_dose_mg: Decimal,
    previous_dose_mg: Decimal | None,
    today: date,
    *,
    current_step_started: date | None = None,
) -> SideEffectPlan:
    """SE-1..SE-5 for the current dose.

    Window: reports at the current dose from today-14 to today, and not before ``current_step_started``
    when given (pass it, so a return to a dose after a step-back does not re-read the old reports; pass
    only reports after a clinician's review to clear an escalation). Per effect, worst first:
    a severe report, or vomiting on >= 2 days -> SE-4 hold_clinician; a moderate report -> SE-2 step back;
    mild now (its latest report) and mild in an unbroken run of reports >= 6 days apart (two weekly
    check-ins) -> SE-2 step back; mild now -> SE-1 hold. An effect whose latest report is severity 0 holds
    nothing by SE-1 (can_step_up still waits 3 days after it resolved). SE-3: insomnia or vivid dreams
    behind any of these also suggests a morning dose. SE-5: a step back that cannot lower the dose
    (already at the 0.25 mg floor) goes to a clinician instead.
    """
    since = today - timedelta(days=SIDE_EFFECT_WINDOW_DAYS)
    if current_step_started is not None:
        since = max(since, current_step_started)
    window = [o for o in observations if o.dose_mg == current_dose_mg and since <= o.reported_on <= today]
    dose = fmt_mg(current_dose_mg)
    new_dose = step_back_dose(current_dose_mg, previous_dose_mg)
    back = f"step back to {fmt_mg(new_dose)} mg" if new_dose < current_dose_mg else "step back"
    clinician: list[Reason] = []
    stepping_back: list[Reason] = []
    holding: list[Reason] = []
    sleep = []
    for effect, obs in _by_effect(window).items():
        word = _effect_word(effect)
        severe = [o for o in obs if o.severity == SEVERE]
        moderate = [o for o in obs if o.severity == MODERATE]
        latest = obs[-1]
        run_start = latest
        for o in reversed(obs):
            if o.severity < MILD:
                break
            run_start = o
        if severe:
            when = _ago(today, severe[-1].reported_on)
            text = f"severe {word} reported {when} at {dose} mg: hold the step for a clinician (SE-4)"
            clinician.append(Reason("SE-4", text))
        elif effect == "vomiting" and (days := _vomiting_days(obs, since)) >= VOMITING_DAYS:
            text = f"vomiting on {days} days at {dose} mg: hold the step for a clinician (SE-4)"
            clinician.append(Reason("SE-4", text))
        elif moderate:
            when = _ago(today, moderate[-1].reported_on)
            stepping_back.append(Reason("SE-2", f"moderate {word} reported {when} at {dose} mg: {back} (SE-2)"))
        elif latest.severity == MILD and (latest.reported_on - run_start.reported_on).days >= MILD_PERSISTS_DAYS:
            text = f"mild {word} at two weekly check-ins at {dose} mg (since {run_start.reported_on}): {back} (SE-2)"
            stepping_back.append(Reason("SE-2", text))
        elif latest.severity == MILD:
            when = _ago(today, latest.reported_on)
            text = f"mild {word} reported {when}: stay on {dose} mg and re-check at the next check-in (SE-1)"
            holding.append(Reason("SE-1", text))
        else:
            continue
        if effect in SLEEP_EFFECTS:
            sleep.append(word)
    reasons = clinician + stepping_back + holding
    action = "hold_clinician" if clinician else "step_back" if stepping_back else "hold" if holding else "continue"
    if action == "step_back":
        if new_dose >= current_dose_mg:
            action = "hold_clinician"
            text = f"already at {dose} mg, the lowest step-back dose: a clinician decides what next (SE-5)"
            reasons.append(Reason("SE-5", text))
        elif previous_dose_mg is None or previous_dose_mg >= current_dose_mg:
            text = f"no lower previous dose: halve {dose} mg to {fmt_mg(new_dose)} mg (SE-5)"
            reasons.append(Reason("SE-5", text))
    if sleep:
        reasons.append(Reason("SE-3", f"{' and '.join(sleep)}: suggest taking the dose in the morning (SE-3)"))
    escalate = action == "hold_clinician"
    return SideEffectPlan(
        action=action,
        new_dose_mg=new_dose if action == "step_back" else None,
        suggest_morning=bool(sleep),
        clinician_task=escalate,
        suppress_step_reminders=escalate,
        reasons=tuple(reasons),
    )


# --- 1.5: efficacy ----------------------------------------------------------------------------------


def efficacy_review_due(maintenance_started: date | None, today: date) -> bool:
    """EFF-1: a review is due from 12 weeks (84 days) on the maintenance dose."""
    return maintenance_started is not None and (today - maintenance_started).days >= EFFICACY_REVIEW_DAYS


def efficacy_flag(maintenance_started: date | None, today: date, responder: bool | None) -> Reason | None:
    """EFF-2: not a responder after >= 12 weeks on the maintenance dose -> consider stopping or another dose.

    An unknown responder status at 12 weeks (no baseline, RESP-1 undefined, too few check-ins) is flagged
    too, for a manual review: silence would read as "fine". Before 12 weeks, or a responder: None.
    """
    if maintenance_started is None or not efficacy_review_due(maintenance_started, today) or responder is True:
        return None
    weeks = (today - maintenance_started).days // 7
    if responder is None:
        return Reason("EFF-2", f"responder status unknown after {weeks} weeks on the maintenance dose: review (EFF-2)")
    text = (
        f"not a responder after {weeks} weeks on the maintenance dose: consider discontinuation or an alternative dose"
    )
    return Reason("EFF-2", f"{text} (EFF-2)")
