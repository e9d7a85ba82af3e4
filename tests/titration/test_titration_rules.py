"""Titration rules as pure functions, table-driven, no database (domain.md 1.2-1.6 and 6).

titration/rules.py: plans (DOSE-1, DOSE-2), the step-up rule 1.3, side effects SE-1..SE-5, EFF-1/EFF-2.
titration/supply.py: deliverability and supply (RX-1..RX-3).
"""

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from titration.protocols import PROTOCOLS
from titration.rules import (
    Decision,
    DoseError,
    PlanError,
    PlannedStep,
    Reason,
    SideEffectObs,
    StepSpec,
    StepUpContext,
    can_step_up,
    efficacy_flag,
    efficacy_review_due,
    generate_plan,
    side_effect_plan,
    step_back_dose,
)
from titration.supply import (
    Formulation,
    Measure,
    daily_units,
    measure,
    reorder_by,
    rx_warnings,
    supply_days,
    supply_runs_out,
)

D = Decimal


def d(iso: str) -> date:
    return date.fromisoformat(iso)


def specs(*steps: tuple[str, int]) -> list[StepSpec]:
    return [StepSpec(D(dose), days) for dose, days in steps]


def protocol(key: str) -> list[StepSpec]:
    return [StepSpec(dose, days) for dose, days in next(p for p in PROTOCOLS if p["key"] == key)["steps"]]


def rows(plan: list[PlannedStep]) -> list[tuple[int, str, str, int]]:
    return [(s.sequence, str(s.dose_mg), s.planned_start.isoformat(), s.min_days) for s in plan]


# --- DOSE-2: generate_plan -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "start", "expected"),
    [
        (
            protocol("STD_1_5"),
            "2026-03-01",
            [(1, "1.5", "2026-03-01", 7), (2, "3.0", "2026-03-08", 7), (3, "4.5", "2026-03-15", 7)],
        ),
        (
            protocol("TRIAL_1_0"),
            "2026-12-28",
            [
                (1, "1.0", "2026-12-28", 7),
                (2, "2.0", "2027-01-04", 7),
                (3, "3.0", "2027-01-11", 7),
                (4, "4.5", "2027-01-18", 7),
            ],
        ),
        (protocol("FIXED_4_5"), "2026-02-28", [(1, "4.5", "2026-02-28", 7)]),
        (
            specs(("0.5", 3), ("1.0", 14), ("1.5", 7)),
            "2028-02-27",  # leap year: 2028-02-29 exists
            [(1, "0.5", "2028-02-27", 3), (2, "1.0", "2028-03-01", 14), (3, "1.5", "2028-03-15", 7)],
        ),
    ],
)
def test_plan_numbers_steps_from_1_and_accumulates_min_days_DOSE_2(steps, start, expected):
    assert rows(generate_plan(steps, d(start))) == expected


def test_plan_keeps_0_25_mg_exact_for_liquid_steps_DOSE_1():
    plan = generate_plan(protocol("THYROID_0_25"), d("2026-01-05"))
    assert [str(s.dose_mg) for s in plan] == ["0.25", "0.5", "0.75", "1.0", "1.5", "2.0", "3.0", "4.5"]
    assert isinstance(plan[0].dose_mg, Decimal) and plan[0].dose_mg == D("0.25")
    assert (plan[-1].sequence, plan[-1].planned_start) == (8, d("2026-02-23"))


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (None, [("1.5", 7), ("3.0", 10), ("4.5", 14)]),
        ("4.5", [("1.5", 7), ("3.0", 10), ("4.5", 14)]),
        ("3.0", [("1.5", 7), ("3.0", 10)]),
        ("3", [("1.5", 7), ("3.0", 10)]),  # 3 == 3.0: the target is a step, no extra step at 3
        ("4.0", [("1.5", 7), ("3.0", 10), ("4.0", 14)]),  # takes the min days of the 4.5 step it replaces
        ("2.0", [("1.5", 7), ("2.0", 10)]),
        ("1.0", [("1.0", 7)]),
        ("5.0", [("1.5", 7), ("3.0", 10), ("4.5", 14), ("5.0", 14)]),  # above every step: last step's min days
    ],
)
def test_plan_target_truncates_and_ends_at_target_DOSE_2(target, expected):
    plan = generate_plan(
        specs(("1.5", 7), ("3.0", 10), ("4.5", 14)), d("2026-03-02"), None if target is None else D(target)
    )
    assert [(str(s.dose_mg), s.min_days) for s in plan] == expected
    assert [s.sequence for s in plan] == list(range(1, len(expected) + 1))


@pytest.mark.parametrize("dose", ["0.25", "4.5", "5.0"])
def test_plan_accepts_doses_up_to_the_hard_maximum_DOSE_1(dose):
    plan = generate_plan(specs((dose, 7)), d("2026-03-02"))
    assert [(s.dose_mg, s.planned_start) for s in plan] == [(D(dose), d("2026-03-02"))]


@pytest.mark.parametrize(
    ("steps", "target", "message"),
    [
        (specs(("1.5", 7), ("5.01", 7)), None, "Step 2: 5.01 mg is above 5.0 mg"),
        (specs(("0", 7)), None, "Step 1: A dose must be more than 0 mg"),
        (specs(("-0.25", 7)), None, "Step 1: A dose must be more than 0 mg"),
        (specs(("1.5", 7), ("3.0", 7)), D("5.01"), "Target: 5.01 mg is above 5.0 mg"),
        (specs(("1.5", 7)), D("0"), "Target: A dose must be more than 0 mg"),
        ([StepSpec(1.5, 7)], None, "Step 1: A dose must be an exact decimal"),
    ],
)
def test_plan_refuses_a_dose_outside_DOSE_1(steps, target, message):
    with pytest.raises(DoseError, match=message):
        generate_plan(steps, d("2026-03-02"), target)


@pytest.mark.parametrize(("min_days", "ok"), [(3, True), (14, True), (7, True), (2, False), (15, False), (0, False)])
def test_plan_min_days_must_be_3_to_14_1_3(min_days, ok):
    steps = specs(("1.5", 7), ("3.0", min_days))
    if ok:
        assert generate_plan(steps, d("2026-03-02"))[1].min_days == min_days
    else:
        with pytest.raises(PlanError, match=f"Step 2: A step must last 3 to 14 days.*got {min_days}"):
            generate_plan(steps, d("2026-03-02"))


@pytest.mark.parametrize("min_days", [7.0, "7", True, None])
def test_plan_min_days_must_be_a_whole_number_1_3(min_days):
    with pytest.raises(PlanError, match="3 to 14 days"):
        generate_plan([StepSpec(D("1.5"), min_days)], d("2026-03-02"))


@pytest.mark.parametrize(
    ("steps", "ok"),
    [
        (specs(("1.5", 7), ("3.0", 7), ("1.5", 7)), False),
        (specs(("0.5", 7), ("0.25", 7)), False),
        (specs(("1.5", 7), ("1.5", 7), ("3.0", 7)), True),  # a repeated dose lengthens a step
    ],
)
def test_plan_doses_must_not_decrease_DOSE_2(steps, ok):
    if ok:
        assert [str(s.dose_mg) for s in generate_plan(steps, d("2026-03-02"))] == ["1.5", "1.5", "3.0"]
    else:
        with pytest.raises(PlanError, match="is below the step before"):
            generate_plan(steps, d("2026-03-02"))


def test_plan_without_steps_refused_DOSE_2():
    with pytest.raises(PlanError, match="at least one step"):
        generate_plan([], d("2026-03-02"))


def test_plan_starts_on_a_date_not_a_datetime_DOSE_2():
    with pytest.raises(TypeError, match="date"):
        generate_plan(protocol("STD_1_5"), datetime(2026, 3, 2, 21, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    ("zone", "start", "dst_day", "after"),
    [
        ("Europe/London", "2026-03-22", "2026-03-29", "2026-04-05"),  # clocks go forward 01:00 GMT
        ("America/New_York", "2026-03-01", "2026-03-08", "2026-03-15"),  # clocks go forward 02:00 EST
    ],
)
def test_plan_step_on_daylight_saving_change_counts_calendar_days_DOSE_2(zone, start, dst_day, after):
    plan = generate_plan(protocol("STD_1_5"), d(start))
    assert [s.planned_start for s in plan] == [d(start), d(dst_day), d(after)]
    assert all(type(s.planned_start) is date for s in plan)
    # The pitfall calendar dates avoid: from one 21:00 step reminder (REM-1, evening) to the next across
    # the change is 167 hours, so counting hours (or 7 x 24 h in UTC) would land on the wrong day.
    tz = ZoneInfo(zone)
    evenings = [datetime.combine(s.planned_start, time(21), tz).astimezone(UTC) for s in plan]
    assert evenings[1] - evenings[0] == timedelta(hours=167)
    assert evenings[2] - evenings[1] == timedelta(hours=168)
    assert (evenings[0] + timedelta(days=7)).astimezone(tz).date() == d(dst_day)
    assert (evenings[0] + timedelta(hours=168)).astimezone(tz).hour == 22  # not 21: the hour moved
    assert (plan[1].planned_start - plan[0].planned_start).days == plan[0].min_days == 7


# --- 1.3: can_step_up ------------------------------------------------------------------------------

TODAY = d("2026-03-10")
STARTED = d("2026-03-03")  # 7 days ago
BASE = StepUpContext(
    today=TODAY,
    current_dose_mg=D("1.5"),
    current_step_started=STARTED,
    min_days=7,
    next_dose_mg=D("3.0"),
    target_mg=D("4.5"),
    open_conflict=False,
    side_effects=(),
    next_dose_deliverable=True,
)


def obs(effect: str, severity: int, reported: str, dose: str = "1.5", started: str | None = None) -> SideEffectObs:
    return SideEffectObs(effect, severity, d(reported), D(dose), None if started is None else d(started))


def test_step_up_allowed_when_all_five_conditions_hold_1_3():
    assert can_step_up(BASE) == Decision(True, ())


@pytest.mark.parametrize(
    ("started", "min_days", "expected"),
    [
        ("2026-03-06", 7, (Reason("1.3.1", "only 4 of 7 days at 1.5 mg (min days): not before 2026-03-13"),)),
        ("2026-03-04", 7, (Reason("1.3.1", "only 6 of 7 days at 1.5 mg (min days): not before 2026-03-11"),)),
        ("2026-03-03", 7, ()),
        ("2026-03-08", 3, (Reason("1.3.1", "only 2 of 3 days at 1.5 mg (min days): not before 2026-03-11"),)),
        ("2026-03-07", 3, ()),
        ("2026-02-25", 14, (Reason("1.3.1", "only 13 of 14 days at 1.5 mg (min days): not before 2026-03-11"),)),
        ("2026-02-24", 14, ()),
        ("2026-03-12", 7, (Reason("1.3.1", "only 0 of 7 days at 1.5 mg (min days): not before 2026-03-19"),)),
    ],
)
def test_step_up_waits_min_days_at_the_current_dose_1_3_1(started, min_days, expected):
    decision = can_step_up(replace(BASE, current_step_started=d(started), min_days=min_days))
    assert decision == Decision(not expected, expected)


def test_step_up_blocked_by_open_opioid_conflict_1_3_2_OPI():
    decision = can_step_up(replace(BASE, open_conflict=True))
    assert decision == Decision(
        False, (Reason("1.3.2", "open opioid conflict (OPI): a prescriber must resolve or override it"),)
    )


@pytest.mark.parametrize(
    ("side_effects", "expected"),
    [
        # (a) moderate/severe in the last 3 days (today-3 .. today), at any dose
        ([obs("headache", 2, "2026-03-08")], [("SE-2", "held: moderate headache reported 2 days ago (SE-2)")]),
        ([obs("headache", 2, "2026-03-07")], [("SE-2", "held: moderate headache reported 3 days ago (SE-2)")]),
        ([obs("nausea", 3, "2026-03-09")], [("SE-4", "held: severe nausea reported 1 day ago (SE-4)")]),
        ([obs("fatigue", 2, "2026-03-10", dose="1.0")], [("SE-2", "held: moderate fatigue reported today (SE-2)")]),
        (
            [obs("headache", 2, "2026-03-08"), obs("headache", 0, "2026-03-09")],
            [("SE-2", "held: moderate headache reported 2 days ago (SE-2)")],
        ),
        # 4 days ago: only (b) applies; gone 3 days ago is long enough
        (
            [obs("headache", 2, "2026-03-06")],
            [("SE-2", "held: moderate headache reported 4 days ago has not resolved (SE-2)")],
        ),
        ([obs("headache", 2, "2026-03-06"), obs("headache", 0, "2026-03-07")], []),
        ([obs("headache", 2, "2026-02-28", dose="1.0")], []),  # before this step and > 3 days ago
        # (b) an effect at this step must have resolved >= 3 days ago
        ([obs("nausea", 1, "2026-03-08")], [("SE-1", "held: mild nausea reported 2 days ago has not resolved (SE-1)")]),
        (
            [obs("nausea", 1, "2026-03-05"), obs("nausea", 0, "2026-03-08")],
            [("1.3.3", "held: nausea resolved 2 days ago; wait until 2026-03-11 (1.3.3)")],
        ),
        ([obs("nausea", 1, "2026-03-05"), obs("nausea", 0, "2026-03-07")], []),
        (
            [obs("nausea", 1, "2026-03-04"), obs("nausea", 0, "2026-03-05"), obs("nausea", 1, "2026-03-06")],
            [("SE-1", "held: mild nausea reported 4 days ago has not resolved (SE-1)")],
        ),
        # same day: the later report (given last) wins
        ([obs("insomnia", 1, "2026-03-06"), obs("insomnia", 0, "2026-03-06")], []),
        (
            [obs("insomnia", 0, "2026-03-06"), obs("insomnia", 1, "2026-03-06")],
            [("SE-1", "held: mild insomnia reported 4 days ago has not resolved (SE-1)")],
        ),
        # carried over from the step before and still reported at this one: holds too (SE-1)
        (
            [obs("vivid_dreams", 1, "2026-03-05", started="2026-02-20")],
            [("SE-1", "held: mild vivid dreams reported 5 days ago has not resolved (SE-1)")],
        ),
        ([obs("vivid_dreams", 1, "2026-03-01", dose="1.0")], []),  # only at the step before, > 3 days ago
        ([obs("headache", 0, "2026-03-09")], []),
        ([obs("headache", 3, "2026-03-11")], []),  # reported after today: not yet known
        (
            [obs("headache", 1, "2026-03-04"), obs("decreased_appetite", 2, "2026-03-09")],
            [
                ("SE-1", "held: mild headache reported 6 days ago has not resolved (SE-1)"),
                ("SE-2", "held: moderate decreased appetite reported 1 day ago (SE-2)"),
            ],
        ),
    ],
)
def test_step_up_held_after_moderate_headache_SE2_and_until_effects_resolve_1_3_3(side_effects, expected):
    decision = can_step_up(replace(BASE, side_effects=side_effects))
    assert decision == Decision(not expected, tuple(Reason(rule, text) for rule, text in expected))


@pytest.mark.parametrize(
    ("next_dose", "target", "expected"),
    [
        ("4.5", "4.5", []),
        ("5.0", "5.0", []),
        ("0.25", "4.5", []),
        (
            "5.01",
            "5.0",
            [
                ("DOSE-1", "next dose 5.01 mg is above the 5.0 mg hard maximum (DOSE-1)"),
                ("1.3.4", "next dose 5.01 mg is above the plan target 5.0 mg"),
            ],
        ),
        (
            "5.5",
            "5.0",
            [
                ("DOSE-1", "next dose 5.5 mg is above the 5.0 mg hard maximum (DOSE-1)"),
                ("1.3.4", "next dose 5.5 mg is above the plan target 5.0 mg"),
            ],
        ),
        (
            "6.0",
            "4.5",
            [
                ("DOSE-1", "next dose 6.0 mg is above the 5.0 mg hard maximum (DOSE-1)"),
                ("1.3.4", "next dose 6.0 mg is above the plan target 4.5 mg"),
            ],
        ),
        ("4.5", "4.0", [("1.3.4", "next dose 4.5 mg is above the plan target 4.0 mg")]),
        ("0", "4.5", [("DOSE-1", "next dose Decimal('0') is not a dose of more than 0 mg (DOSE-1)")]),
    ],
)
def test_step_up_next_dose_within_target_and_hard_maximum_DOSE_1(next_dose, target, expected):
    decision = can_step_up(replace(BASE, next_dose_mg=D(next_dose), target_mg=D(target)))
    assert decision == Decision(not expected, tuple(Reason(rule, text) for rule, text in expected))


def test_step_up_at_last_step_says_no_further_step_1_3_4():
    decision = can_step_up(replace(BASE, next_dose_mg=None, next_dose_deliverable=None))
    assert decision == Decision(False, (Reason("1.3.4", "no further step: the plan is at its last dose"),))


@pytest.mark.parametrize(
    ("deliverable", "expected"),
    [
        (None, "no active prescription on file: a prescriber must write one that covers 3.0 mg (RX-2)"),
        (False, "no active prescription covers 3.0 mg: the dispensed strength or form cannot make it (RX-2)"),
    ],
)
def test_step_up_needs_a_prescription_that_covers_the_next_dose_RX2(deliverable, expected):
    decision = can_step_up(replace(BASE, next_dose_deliverable=deliverable))
    assert decision == Decision(False, (Reason("RX-2", expected),))


def test_step_up_collects_every_failing_reason_not_just_the_first_1_3():
    ctx = replace(
        BASE,
        current_step_started=d("2026-03-06"),
        open_conflict=True,
        side_effects=[obs("headache", 2, "2026-03-08")],
        next_dose_mg=D("5.5"),
        next_dose_deliverable=None,
    )
    decision = can_step_up(ctx)
    assert not decision.allowed
    assert [r.rule for r in decision.reasons] == ["1.3.1", "1.3.2", "SE-2", "DOSE-1", "1.3.4", "RX-2"]


@pytest.mark.parametrize("severity", [-1, 4, True, "2"])
def test_side_effect_severity_is_0_to_3_SE(severity):
    with pytest.raises(ValueError, match="0 to 3"):
        SideEffectObs("headache", severity, TODAY, D("1.5"))


# --- 1.4: side_effect_plan -------------------------------------------------------------------------

SE_TODAY = d("2026-03-20")


def se(effect: str, severity: int, reported: str, dose: str = "3.0", started: str | None = None) -> SideEffectObs:
    return obs(effect, severity, reported, dose, started)


def plan_of(observations, current="3.0", previous="1.5", **kwargs):
    return side_effect_plan(observations, D(current), None if previous is None else D(previous), SE_TODAY, **kwargs)


def summary(p):
    return (p.action, p.new_dose_mg, p.suggest_morning, p.clinician_task, p.suppress_step_reminders)


CONTINUE = ("continue", None, False, False, False)
HOLD = ("hold", None, False, False, False)
BACK = ("step_back", D("1.5"), False, False, False)
CLINICIAN = ("hold_clinician", None, False, True, True)


@pytest.mark.parametrize(
    ("observations", "expected", "reasons"),
    [
        ([], CONTINUE, []),
        ([se("headache", 0, "2026-03-20")], CONTINUE, []),
        (
            [se("headache", 1, "2026-03-19")],
            HOLD,
            [("SE-1", "mild headache reported 1 day ago: stay on 3.0 mg and re-check at the next check-in (SE-1)")],
        ),
        ([se("headache", 1, "2026-03-13"), se("headache", 0, "2026-03-20")], CONTINUE, []),  # gone now
        ([se("headache", 1, "2026-03-19", dose="1.5")], CONTINUE, []),  # another dose
        ([se("headache", 1, "2026-03-05")], CONTINUE, []),  # 15 days ago: outside the 14-day window
    ],
)
def test_side_effect_plan_mild_holds_the_step_SE1(observations, expected, reasons):
    p = plan_of(observations)
    assert (summary(p), p.reasons) == (expected, tuple(Reason(*r) for r in reasons))


@pytest.mark.parametrize(
    ("observations", "kwargs", "expected", "reasons"),
    [
        (
            [se("headache", 2, "2026-03-18")],
            {},
            BACK,
            [("SE-2", "moderate headache reported 2 days ago at 3.0 mg: step back to 1.5 mg (SE-2)")],
        ),
        (  # moderate, then gone: still a step back (the report stands until the dose changes)
            [se("headache", 2, "2026-03-10"), se("headache", 0, "2026-03-17")],
            {},
            BACK,
            [("SE-2", "moderate headache reported 10 days ago at 3.0 mg: step back to 1.5 mg (SE-2)")],
        ),
        (
            [se("nausea", 1, "2026-03-13"), se("nausea", 1, "2026-03-20")],
            {},
            BACK,
            [("SE-2", "mild nausea at two weekly check-ins at 3.0 mg (since 2026-03-13): step back to 1.5 mg (SE-2)")],
        ),
        (  # a check-in one day early still counts as the next weekly one
            [se("nausea", 1, "2026-03-14"), se("nausea", 1, "2026-03-20")],
            {},
            BACK,
            [("SE-2", "mild nausea at two weekly check-ins at 3.0 mg (since 2026-03-14): step back to 1.5 mg (SE-2)")],
        ),
        (
            [se("nausea", 1, "2026-03-15"), se("nausea", 1, "2026-03-20")],
            {},
            HOLD,
            [("SE-1", "mild nausea reported today: stay on 3.0 mg and re-check at the next check-in (SE-1)")],
        ),
        (  # broken by a check-in without it
            [se("nausea", 1, "2026-03-06"), se("nausea", 0, "2026-03-13"), se("nausea", 1, "2026-03-20")],
            {},
            HOLD,
            [("SE-1", "mild nausea reported today: stay on 3.0 mg and re-check at the next check-in (SE-1)")],
        ),
        (  # the first week was at the previous dose
            [se("nausea", 1, "2026-03-13", dose="1.5"), se("nausea", 1, "2026-03-20")],
            {},
            HOLD,
            [("SE-1", "mild nausea reported today: stay on 3.0 mg and re-check at the next check-in (SE-1)")],
        ),
        (  # back at 3.0 mg after a step-back: the old 3.0 mg report is before this step
            [se("headache", 2, "2026-03-09"), se("headache", 0, "2026-03-18")],
            {"current_step_started": d("2026-03-16")},
            CONTINUE,
            [],
        ),
        ([se("headache", 2, "2026-03-05")], {}, CONTINUE, []),  # 15 days ago
    ],
)
def test_side_effect_plan_steps_back_after_moderate_or_persisting_mild_SE2(observations, kwargs, expected, reasons):
    p = plan_of(observations, **kwargs)
    assert (summary(p), p.reasons) == (expected, tuple(Reason(*r) for r in reasons))


@pytest.mark.parametrize(
    ("observations", "action", "morning", "se3_text"),
    [
        ([se("insomnia", 1, "2026-03-19")], "hold", True, "insomnia: suggest taking the dose in the morning (SE-3)"),
        (
            [se("vivid_dreams", 2, "2026-03-19")],
            "step_back",
            True,
            "vivid dreams: suggest taking the dose in the morning (SE-3)",
        ),
        (
            [se("insomnia", 1, "2026-03-19"), se("vivid_dreams", 1, "2026-03-20")],
            "hold",
            True,
            "insomnia and vivid dreams: suggest taking the dose in the morning (SE-3)",
        ),
        ([se("headache", 1, "2026-03-19")], "hold", False, None),
        ([se("insomnia", 1, "2026-03-12"), se("insomnia", 0, "2026-03-19")], "continue", False, None),
    ],
)
def test_side_effect_plan_suggests_morning_dose_for_sleep_effects_SE3(observations, action, morning, se3_text):
    p = plan_of(observations)
    assert (p.action, p.suggest_morning) == (action, morning)
    assert [r.text for r in p.reasons if r.rule == "SE-3"] == ([se3_text] if se3_text else [])


@pytest.mark.parametrize(
    ("observations", "expected", "reasons"),
    [
        (
            [se("headache", 3, "2026-03-19")],
            CLINICIAN,
            [("SE-4", "severe headache reported 1 day ago at 3.0 mg: hold the step for a clinician (SE-4)")],
        ),
        (
            [se("vomiting", 1, "2026-03-18"), se("vomiting", 1, "2026-03-19")],
            CLINICIAN,
            [("SE-4", "vomiting on 2 days at 3.0 mg: hold the step for a clinician (SE-4)")],
        ),
        (  # began the day before it was reported: two days
            [se("vomiting", 1, "2026-03-19", started="2026-03-18")],
            CLINICIAN,
            [("SE-4", "vomiting on 2 days at 3.0 mg: hold the step for a clinician (SE-4)")],
        ),
        (
            [se("vomiting", 1, "2026-03-19")],
            HOLD,
            [("SE-1", "mild vomiting reported 1 day ago: stay on 3.0 mg and re-check at the next check-in (SE-1)")],
        ),
        (
            [se("vomiting", 1, "2026-03-19", dose="1.5"), se("vomiting", 1, "2026-03-20")],
            HOLD,
            [("SE-1", "mild vomiting reported today: stay on 3.0 mg and re-check at the next check-in (SE-1)")],
        ),
        (  # the worst decides the action; every reason is kept
            [se("headache", 2, "2026-03-18"), se("nausea", 3, "2026-03-19"), se("fatigue", 1, "2026-03-20")],
            CLINICIAN,
            [
                ("SE-4", "severe nausea reported 1 day ago at 3.0 mg: hold the step for a clinician (SE-4)"),
                ("SE-2", "moderate headache reported 2 days ago at 3.0 mg: step back to 1.5 mg (SE-2)"),
                ("SE-1", "mild fatigue reported today: stay on 3.0 mg and re-check at the next check-in (SE-1)"),
            ],
        ),
    ],
)
def test_side_effect_plan_severe_or_vomiting_two_days_goes_to_a_clinician_SE4(observations, expected, reasons):
    p = plan_of(observations)
    assert (summary(p), p.reasons) == (expected, tuple(Reason(*r) for r in reasons))


@pytest.mark.parametrize(
    ("current", "action", "new_dose", "se5_text"),
    [
        ("1.0", "step_back", D("0.5"), "no lower previous dose: halve 1.0 mg to 0.5 mg (SE-5)"),
        ("0.5", "step_back", D("0.25"), "no lower previous dose: halve 0.5 mg to 0.25 mg (SE-5)"),
        (
            "0.25",
            "hold_clinician",
            None,
            "already at 0.25 mg, the lowest step-back dose: a clinician decides what next (SE-5)",
        ),
    ],
)
def test_side_effect_plan_step_back_from_step_1_halves_SE5(current, action, new_dose, se5_text):
    p = plan_of([se("headache", 2, "2026-03-19", dose=current)], current=current, previous=None)
    assert (p.action, p.new_dose_mg, p.clinician_task, p.suppress_step_reminders) == (
        action,
        new_dose,
        action == "hold_clinician",
        action == "hold_clinician",
    )
    assert [r.text for r in p.reasons if r.rule == "SE-5"] == [se5_text]


@pytest.mark.parametrize(
    ("current", "previous", "expected"),
    [
        ("3.0", "1.5", "1.5"),
        ("4.5", "3.0", "3.0"),
        ("1.5", None, "0.75"),
        ("4.5", None, "2.25"),
        ("0.75", None, "0.375"),
        ("0.5", None, "0.25"),
        ("0.3", None, "0.25"),  # floor
        ("0.25", None, "0.25"),  # floor
        ("0.1", None, "0.1"),  # the floor never raises a dose
        ("0.501", None, "0.25"),  # 0.2505 cut to 0.001 mg, then the floor
        ("1.5", "1.5", "0.75"),  # not lower: no previous dose to return to
        ("1.5", "3.0", "0.75"),
    ],
)
def test_step_back_dose_previous_or_half_with_0_25_floor_SE5(current, previous, expected):
    result = step_back_dose(D(current), None if previous is None else D(previous))
    assert isinstance(result, Decimal)
    assert (result, str(result)) == (D(expected), expected)


# --- RX-1, RX-2: formulations and measures ----------------------------------------------------------

CAPS_1_5 = Formulation("capsule", D("1.5"), "mg/capsule", D(30), "capsules", 30)
TABS_2 = Formulation("tablet", D("2"), "mg/tablet", D(30), "tablets", 30)
TROCHES_1 = Formulation("troche", D("1"), "mg/troche", D(30), "troches", 30)
LIQUID_1 = Formulation("liquid", D("1"), "mg/mL", D(30), "mL", 30)
LIQUID_2 = Formulation("liquid", D("2"), "mg/mL", D(50), "mL", 30)
DROPS_0_5 = Formulation("sublingual_drops", D("0.5"), "mg/drop", D(10), "mL", 30)
DROPS_1_ML = Formulation("sublingual_drops", D("1"), "mg/mL", D(10), "mL", 30)
DROPS_1_ML_25 = Formulation("sublingual_drops", D("1"), "mg/mL", D(10), "mL", 30, drops_per_ml=D(25))
CREAM_ML = Formulation("cream", D("0.5"), "mg/mL", D(30), "mL", 30)
CREAM_G = Formulation("cream", D("1"), "mg/g", D(30), "g", 30)
EYE = Formulation("eye_drops", D("0.2"), "%", D(5), "mL", 30)


@pytest.mark.parametrize(
    ("f", "dose", "split", "expected"),
    [
        (CAPS_1_5, "1.5", False, (D(1), "capsules", "1 capsule of 1.5 mg")),
        (CAPS_1_5, "3.0", False, (D(2), "capsules", "2 capsules of 1.5 mg")),
        (CAPS_1_5, "4.5", False, (D(3), "capsules", "3 capsules of 1.5 mg")),
        (CAPS_1_5, "2.0", False, None),
        (CAPS_1_5, "0.75", True, None),  # capsules are never split
        (TABS_2, "4.0", False, (D(2), "tablets", "2 tablets of 2.0 mg")),
        (TABS_2, "3.0", False, None),
        (TABS_2, "3.0", True, (D("1.5"), "tablets", "1.5 tablets of 2.0 mg")),
        (TABS_2, "1.0", True, (D("0.5"), "tablets", "0.5 tablets of 2.0 mg")),
        (TABS_2, "0.5", True, None),  # a quarter tablet
        (TROCHES_1, "2.0", False, (D(2), "troches", "2 troches of 1.0 mg")),
        (TROCHES_1, "0.5", True, None),
    ],
)
def test_measure_capsules_tablets_troches_in_whole_units_RX2(f, dose, split, expected):
    m = measure(D(dose), f, allow_split=split)
    assert (None if m is None else (m.amount, m.unit, m.text)) == expected


@pytest.mark.parametrize(
    ("f", "dose", "expected"),
    [
        # 0.05 mL oral-syringe precision, at least 0.1 mL: 0.25 mg of 1 mg/mL must be givable (domain.md 1.1)
        (LIQUID_1, "0.25", (D("0.25"), "mL", "0.25 mL of 1.0 mg/mL")),
        (LIQUID_1, "3.0", (D("3.0"), "mL", "3.0 mL of 1.0 mg/mL")),
        (LIQUID_1, "4.5", (D("4.5"), "mL", "4.5 mL of 1.0 mg/mL")),
        (LIQUID_1, "0.1", (D("0.1"), "mL", "0.1 mL of 1.0 mg/mL")),
        (LIQUID_1, "0.05", None),  # below 0.1 mL
        (LIQUID_1, "0.125", None),  # 0.125 mL: not on the 0.05 mL scale
        (LIQUID_1, "0.33", None),
        (LIQUID_2, "0.25", None),  # 0.125 mL
        (LIQUID_2, "4.5", (D("2.25"), "mL", "2.25 mL of 2.0 mg/mL")),
        (DROPS_0_5, "1.5", (D(3), "drops", "3 drops of 0.5 mg/drop")),
        (DROPS_0_5, "0.5", (D(1), "drops", "1 drop of 0.5 mg/drop")),
        (DROPS_0_5, "1.25", None),
        (DROPS_1_ML, "0.25", (D(5), "drops", "5 drops of 1.0 mg/mL (20 drops/mL)")),
        (DROPS_1_ML, "0.125", None),  # 2.5 drops
        (DROPS_1_ML_25, "0.2", (D(5), "drops", "5 drops of 1.0 mg/mL (25 drops/mL)")),
        (CREAM_ML, "0.25", (D("0.5"), "mL", "0.5 mL of 0.5 mg/mL")),
        (CREAM_ML, "0.75", (D("1.5"), "mL", "1.5 mL of 0.5 mg/mL")),
        (CREAM_ML, "0.125", None),  # 0.25 mL: cream is measured to 0.1
        (CREAM_G, "4.5", (D("4.5"), "g", "4.5 g of 1.0 mg/g")),
    ],
)
def test_measure_liquid_drops_and_cream_RX2(f, dose, expected):
    m = measure(D(dose), f)
    assert (None if m is None else (m.amount, m.unit, m.text)) == expected


@pytest.mark.parametrize("dose", ["0.25", "1.0", "4.5", "5.0"])
def test_eye_drops_are_never_deliverable_1_6(dose):
    assert measure(D(dose), EYE) is None
    assert daily_units(D(dose), EYE) is None
    with pytest.raises(ValueError, match="not systemic"):
        supply_days(EYE, D(dose))


def test_measure_refuses_a_dose_outside_DOSE_1():
    with pytest.raises(DoseError):
        measure(D("5.01"), LIQUID_1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("capsule", D("1.5"), "mg/mL", D(30), "capsules", 30), "not measured in mg/mL"),
        (("eye_drops", D("1"), "mg/mL", D(5), "mL", 30), "not measured in mg/mL"),
        (("liquid", D("1"), "mg/mL", D(30), "capsules", 30), "dispensed in mL"),
        (("cream", D("1"), "mg/g", D(30), "mL", 30), "dispensed in g"),
        (("capsule", 1.5, "mg/capsule", D(30), "capsules", 30), "strength_value must be a positive exact decimal"),
        (("capsule", D("0"), "mg/capsule", D(30), "capsules", 30), "strength_value must be a positive exact decimal"),
        (("capsule", D("1.5"), "mg/capsule", D(0), "capsules", 30), "quantity must be a positive exact decimal"),
        (("capsule", D("1.5"), "mg/capsule", D(30), "capsules", 0), "days_supply"),
    ],
)
def test_formulation_form_units_and_amounts_checked_RX1(args, message):
    with pytest.raises(ValueError, match=message):
        Formulation(*args)


def test_formulation_takes_whole_numbers_as_exact_decimals_RX1():
    f = Formulation("capsule", 3, "mg/capsule", 90, "capsules", 30)
    assert (f.strength_value, f.quantity) == (D(3), D(90))
    assert all(type(v) is Decimal for v in (f.strength_value, f.quantity))
    assert supply_days(f, D("4.5")) == 60


@pytest.mark.parametrize(
    ("f", "dose", "expected"),
    [
        (CAPS_1_5, "3.0", D(2)),
        (LIQUID_1, "0.25", D("0.25")),
        (DROPS_0_5, "1.5", D("0.15")),  # 3 drops at 20 drops/mL, in the mL the bottle is counted in
        (DROPS_1_ML, "0.25", D("0.25")),
        (CAPS_1_5, "2.0", None),
    ],
)
def test_daily_units_in_the_dispensed_quantity_unit_RX2(f, dose, expected):
    assert daily_units(D(dose), f) == expected


# --- RX-2, RX-3: supply ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("f", "dose", "days"),
    [
        (CAPS_1_5, "1.5", 30),
        (CAPS_1_5, "3.0", 15),
        (CAPS_1_5, "4.5", 10),
        (LIQUID_1, "0.25", 120),
        (LIQUID_1, "4.5", 6),  # 30 / 4.5 = 6.67, floor
        (DROPS_0_5, "1.5", 66),  # 10 mL x 20 drops x 0.5 mg = 100 mg
        (CREAM_G, "0.5", 60),
    ],
)
def test_supply_days_is_floor_of_mg_dispensed_over_daily_dose_RX2(f, dose, days):
    assert supply_days(f, D(dose)) == days


@pytest.mark.parametrize(
    ("f", "dispensed", "schedule", "expected"),
    [
        (CAPS_1_5, "2026-03-01", [("2026-03-01", "1.5")], "2026-03-31"),
        # step-up after a week: 7 x 1.5 + 11 x 3.0 = 43.5 of 45 mg; 1.5 mg left cannot cover 3.0 mg
        (CAPS_1_5, "2026-03-01", [("2026-03-01", "1.5"), ("2026-03-08", "3.0")], "2026-03-19"),
        (CAPS_1_5, "2026-03-01", [("2026-03-08", "3.0"), ("2026-03-01", "1.5")], "2026-03-19"),  # order given
        (CAPS_1_5, "2026-02-26", [("2026-03-01", "1.5"), ("2026-03-08", "3.0")], "2026-03-19"),  # none used before
        (CAPS_1_5, "2026-03-05", [("2026-03-01", "1.5"), ("2026-03-08", "3.0")], "2026-03-21"),  # dispensed mid-step
        (
            LIQUID_1,  # 30 mg: 7 x 0.25 + 7 x 0.5 + 1.0 a day
            "2026-03-01",
            [("2026-03-01", "0.25"), ("2026-03-08", "0.5"), ("2026-03-15", "1.0")],
            "2026-04-08",
        ),
        (CAPS_1_5, "2026-03-01", [("2026-03-01", "1.5"), ("2026-03-10", "0")], None),  # paused: never runs out
        (CAPS_1_5, "2026-03-01", [], None),
        (
            Formulation("liquid", D("1"), "mg/mL", D(364), "mL", 364),
            "2026-01-01",
            [("2026-01-01", "1.0")],
            "2026-12-31",
        ),
        (Formulation("liquid", D("1"), "mg/mL", D(365), "mL", 365), "2026-01-01", [("2026-01-01", "1.0")], None),
    ],
)
def test_supply_runs_out_across_a_step_up_RX2(f, dispensed, schedule, expected):
    result = supply_runs_out(f, d(dispensed), [(d(day), D(dose)) for day, dose in schedule])
    assert result == (None if expected is None else d(expected))


@pytest.mark.parametrize(
    ("needed_on", "lead", "expected"),
    [
        ("2026-03-19", None, "2026-03-14"),
        ("2026-03-19", 7, "2026-03-12"),
        ("2026-03-19", 0, "2026-03-19"),
        ("2026-03-03", 5, "2026-02-26"),
    ],
)
def test_reorder_by_leaves_the_pharmacy_lead_time_RX3(needed_on, lead, expected):
    result = reorder_by(d(needed_on)) if lead is None else reorder_by(d(needed_on), lead)
    assert result == d(expected)


def test_reorder_for_a_step_up_plan_is_lead_time_before_run_out_RX3():
    runs_out = supply_runs_out(CAPS_1_5, d("2026-03-01"), [(d("2026-03-01"), D("1.5")), (d("2026-03-08"), D("3.0"))])
    assert reorder_by(runs_out) == d("2026-03-14")


@pytest.mark.parametrize("lead", [-1, 2.5, True])
def test_reorder_by_refuses_a_negative_or_fractional_lead_time_RX3(lead):
    with pytest.raises(ValueError, match="lead time"):
        reorder_by(d("2026-03-19"), lead)


@pytest.mark.parametrize(
    ("f", "dose", "next_dose", "left", "expected"),
    [
        (CAPS_1_5, "1.5", "3.0", 7, []),
        (CAPS_1_5, "1.5", None, 30, []),
        (CAPS_1_5, "1.5", "3.0", 6, [("RX-3", "only 6 days of supply left: a new prescription is due (RX-3)")]),
        (CAPS_1_5, "1.5", "3.0", 1, [("RX-3", "only 1 day of supply left: a new prescription is due (RX-3)")]),
        (CAPS_1_5, "1.5", "3.0", 0, [("RX-3", "no supply left: a new prescription is needed now (RX-3)")]),
        (
            CAPS_1_5,
            "1.5",
            "2.0",
            20,
            [
                (
                    "RX-3",
                    "the next step 2.0 mg cannot be made from 1.5 mg capsules: a new strength or form is needed (RX-3)",
                )
            ],
        ),
        (LIQUID_1, "0.25", "0.5", 30, []),
        (
            TABS_2,
            "2.0",
            "3.0",
            3,
            [
                ("RX-3", "only 3 days of supply left: a new prescription is due (RX-3)"),
                (
                    "RX-3",
                    "the next step 3.0 mg cannot be made from 2.0 mg tablets: a new strength or form is needed (RX-3)",
                ),
            ],
        ),
        (
            CAPS_1_5,
            "1.0",
            "1.5",
            10,
            [("RX-2", "the current dose 1.0 mg cannot be given from 1.5 mg capsules (RX-2)")],
        ),
        (
            EYE,
            "1.0",
            None,
            10,
            [
                (
                    "RX-2",
                    "the current dose 1.0 mg cannot be given from 0.2% eye drops: "
                    "eye drops are not systemic LDN (RX-2)",
                )
            ],
        ),
    ],
)
def test_rx_warnings_low_supply_or_next_step_not_makeable_RX3(f, dose, next_dose, left, expected):
    result = rx_warnings(f, D(dose), None if next_dose is None else D(next_dose), left)
    assert result == tuple(Reason(*r) for r in expected)


def test_rx_warnings_allow_split_tablets_for_the_next_step_RX3():
    assert rx_warnings(TABS_2, D("2.0"), D("3.0"), 20, allow_split=True) == ()


def test_measure_result_is_a_measure():
    assert measure(D("3.0"), CAPS_1_5) == Measure(D(2), "capsules", "2 capsules of 1.5 mg")


# --- 1.5: efficacy --------------------------------------------------------------------------------

MAINTENANCE = d("2026-01-05")
CONSIDER = "consider discontinuation or an alternative dose (EFF-2)"


@pytest.mark.parametrize(
    ("started", "days_later", "due"),
    [
        (MAINTENANCE, 0, False),
        (MAINTENANCE, 83, False),
        (MAINTENANCE, 84, True),
        (MAINTENANCE, 200, True),
        (None, 84, False),
    ],
)
def test_efficacy_review_due_at_12_weeks_on_maintenance_EFF1(started, days_later, due):
    assert efficacy_review_due(started, MAINTENANCE + timedelta(days=days_later)) is due


def test_efficacy_review_not_due_before_maintenance_starts_EFF1():
    assert efficacy_review_due(d("2026-06-01"), d("2026-01-01")) is False


@pytest.mark.parametrize(
    ("started", "days_later", "responder", "expected"),
    [
        (
            MAINTENANCE,
            84,
            False,
            f"not a responder after 12 weeks on the maintenance dose: {CONSIDER}",
        ),
        (
            MAINTENANCE,
            100,
            False,
            f"not a responder after 14 weeks on the maintenance dose: {CONSIDER}",
        ),
        (MAINTENANCE, 83, False, None),
        (MAINTENANCE, 84, True, None),
        (MAINTENANCE, 84, None, "responder status unknown after 12 weeks on the maintenance dose: review (EFF-2)"),
        (MAINTENANCE, 83, None, None),
        (None, 84, False, None),
    ],
)
def test_efficacy_flag_for_non_responder_after_12_weeks_EFF2(started, days_later, responder, expected):
    flag = efficacy_flag(started, MAINTENANCE + timedelta(days=days_later), responder)
    assert flag == (None if expected is None else Reason("EFF-2", expected))
