"""A patient's response to LDN read from the database (symptoms.outcomes): BASE-1 baselines, RESP-1..RESP-3 on
the NRS items, RESP-4..RESP-7, provisional before week 12 on the maintenance dose. Worked by hand from
domain.md section 4; the first section holds the table tests of the two rules outcomes added to symptoms.rules.
"""

import datetime as dt
import re
from decimal import Decimal
from fractions import Fraction

import pytest

from symptoms.models import SymptomCheckIn
from symptoms.outcomes import PARTIAL_HBI, patient_outcome, patient_outcomes
from symptoms.rules import Grade, ScorePair, instrument_pair, responder_status
from tests import factories as f

D = Decimal
FIRST_DOSE = dt.date(2026, 1, 10)
MAINTENANCE = FIRST_DOSE + dt.timedelta(days=14)  # step 3, 4.5 mg
WEEK_12 = MAINTENANCE + dt.timedelta(days=84)  # RESP-1 evaluation point


def day(offset: int) -> dt.date:
    return FIRST_DOSE + dt.timedelta(days=offset)


# --- rules added for outcomes: which instrument scores are compared; the responder status EFF-2 reads -------


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([], ScorePair(None, None)),
        ([(day(-3), "a")], ScorePair((day(-3), "a"), None)),
        ([(day(-14), "a")], ScorePair((day(-14), "a"), None)),  # day -14 is in the BASE-1 window
        ([(day(-15), "a")], ScorePair((day(-15), "a"), None, weak_baseline=True)),  # older: weak
        ([(day(-20), "a"), (day(-2), "b"), (day(6), "c")], ScorePair((day(6), "c"), None)),  # week 0 counts
        ([(day(-2), "a"), (day(7), "b")], ScorePair((day(-2), "a"), (day(7), "b"))),  # week 1 is current
        ([(day(90), "c"), (day(-2), "a"), (day(30), "b")], ScorePair((day(-2), "a"), (day(90), "c"))),  # by date
        ([(day(30), "a"), (day(30), "b")], ScorePair(None, (day(30), "b"))),  # same day: the later given
        ([(day(40), "b")], ScorePair(None, (day(40), "b"))),
    ],
)
def test_instrument_baseline_is_base1_window_or_week_0_and_current_from_week_1_RESP4_RESP5_RESP6(scores, expected):
    assert instrument_pair(scores, FIRST_DOSE) == expected


def test_instrument_pair_refuses_datetimes_RESP4():
    with pytest.raises(ValueError, match="local date"):
        instrument_pair([(dt.datetime(2026, 1, 9, 12, 0), 1)], FIRST_DOSE)


@pytest.mark.parametrize(
    ("pain", "others", "status"),
    [
        (True, [], True),
        (False, [], False),
        (None, [], None),
        (False, [True], True),  # e.g. MFIS down 4 (RESP-6) or PGIC 2 (RESP-7)
        (None, [None, True], True),
        (False, [None, False], False),  # an undefined secondary never makes RESP-1's "no" unknown
        (None, [False], None),
        (True, [False, None], True),
    ],
)
def test_responder_status_is_any_definition_met_else_the_primary_RESP1_EFF2(pain, others, status):
    assert responder_status(pain, others) is status


@pytest.mark.parametrize("bad", [1, 0, "yes"])
def test_responder_status_refuses_non_booleans_EFF2(bad):
    with pytest.raises(ValueError, match="True, False or None"):
        responder_status(bad)
    with pytest.raises(ValueError, match="True, False or None"):
        responder_status(True, [bad])


# --- with the database -------------------------------------------------------------------------------------


def at(when: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(when, dt.time(hour), tzinfo=dt.UTC)


def start_ldn(patient, first_dose=FIRST_DOSE, maintenance=MAINTENANCE):
    """A plan started on ``first_dose`` that reached its 4.5 mg target on ``maintenance`` (as in
    tests/titration/test_treatment_dates.py)."""
    plan = f.PlanFactory(patient=patient, target_dose_mg=D("4.5"), start_date=first_dose)
    middle = first_dose + (maintenance - first_dose) / 2
    for seq, mg, start, status in [(1, "1.5", first_dose, "done"), (2, "3.0", middle, "done")]:
        f.StepFactory(plan=plan, sequence=seq, dose_mg=D(mg), planned_start=start, actual_start=start, status=status)
    f.StepFactory(
        plan=plan, sequence=3, dose_mg=D("4.5"), planned_start=maintenance, actual_start=maintenance, status="active"
    )
    return plan


def checkin(patient, when: dt.date, pain=None, fatigue=None, sleep_quality=None, mood=None, hour=12):
    return f.CheckInFactory(
        patient=patient, recorded_at=at(when, hour), pain=pain, fatigue=fatigue, sleep_quality=sleep_quality, mood=mood
    )


def score(patient, when: dt.date, instrument: str, total, partial=False):
    """An instrument answered in the patient's check-in at noon on ``when`` (made, NRS blank, if there is none)."""
    same = SymptomCheckIn.objects.filter(patient=patient, recorded_at=at(when)).first()
    return f.InstrumentScoreFactory(
        patient=patient,
        checkin=same or checkin(patient, when),
        instrument=instrument,
        total=D(total),
        partial=partial,
        answers={},
    )


def fibromyalgia_patient(patient):
    """The worked example: 14-day daily pre-start baseline pain 7, 7, 8, 6 (mean 7), fatigue 8, sleep 3;
    weekly check-ins on LDN; at week 12 on maintenance pain 4 then 5 (mean 4.5), fatigue 5 and 5."""
    f.PatientConditionFactory(patient=patient, condition="fibromyalgia")
    start_ldn(patient)
    for offset, pain in zip([-13, -9, -5, -1], [7, 7, 8, 6], strict=True):
        checkin(patient, day(offset), pain=pain, fatigue=8, sleep_quality=3, mood=5)
    for week in range(1, 13):  # weeks 1..12 on LDN: days 7..84
        checkin(patient, day(7 * week), pain=6, fatigue=7, sleep_quality=3, mood=5)
    checkin(patient, WEEK_12 - dt.timedelta(days=7), pain=4, fatigue=5, sleep_quality=3, mood=6)
    checkin(patient, WEEK_12, pain=5, fatigue=5, sleep_quality=4, mood=6)


def test_fibromyalgia_worked_example_is_a_moderate_responder_RESP1_RESP2(patient):
    fibromyalgia_patient(patient)
    outcome = patient_outcome(patient, today=WEEK_12)
    pain = outcome.item("pain")
    assert (pain.baseline.value, pain.entries, pain.weak_baseline) == (Fraction(7), 4, False)  # (7+7+8+6)/4
    assert pain.change.current == Fraction(9, 2)  # (4 + 5) / 2
    assert pain.current_dates == (WEEK_12 - dt.timedelta(days=7), WEEK_12)
    assert (outcome.pain.percent_change, outcome.pain.grade, outcome.pain.responder) == (
        D("35.7"),  # 2.5 / 7 = 35.71...%, shown truncated
        Grade.MODERATE,
        True,
    )
    assert outcome.evaluated is True and outcome.status == "evaluated"
    assert outcome.responder is True
    assert outcome.summary == "moderate (\u221235.7%)"
    assert "7.0, the mean of 4 entries in the 14 days before the first dose (2026-01-10) (BASE-1)" in " ".join(
        outcome.reasons
    )


def test_fibromyalgia_worked_example_pain_down_2_5_points_RESP3(patient):
    fibromyalgia_patient(patient)
    outcome = patient_outcome(patient, today=WEEK_12)
    assert (outcome.pain.absolute_change, outcome.pain.important_change) == (D("2.5"), True)
    assert outcome.item("pain").change_display == "\u221235.7% (\u22122.5 points)"
    assert "Pain 2.5 points better than baseline: at least the 2 points of an important change (RESP-3)." in (
        outcome.reasons
    )


def test_fibromyalgia_composite_with_fatigue_and_fiqr_secondary_RESP4(patient):
    fibromyalgia_patient(patient)
    score(patient, day(-2), "FIQR", "60.0")
    score(patient, WEEK_12, "FIQR", "51.0")  # down 15%
    outcome = patient_outcome(patient, today=WEEK_12)
    fatigue = outcome.item("fatigue").change
    assert (fatigue.percent_change, fatigue.responder) == (D("37.5"), True)  # 8 -> 5
    (composite,) = [r for r in outcome.results if r.rule == "RESP-4"]
    assert composite.responder is True
    assert "composite responder: pain and fatigue improved >= 30% (RESP-4)" in composite.text
    assert "FIQR 60 on 2026-01-08 -> 51 on 2026-04-18, down 15%: improved by the 14% secondary measure" in (
        composite.text
    )


def test_fibromyalgia_fiqr_down_less_than_14_percent_is_not_improved_RESP4(patient):
    fibromyalgia_patient(patient)
    score(patient, day(-2), "FIQR", "60.0")
    score(patient, WEEK_12, "FIQR", "52.0")  # down 13.3%
    (composite,) = [r for r in patient_outcome(patient, today=WEEK_12).results if r.rule == "RESP-4"]
    assert "down 13.3%: not improved by the 14% secondary measure" in composite.text
    assert composite.responder is True  # FIQR is secondary: the composite is pain and fatigue/sleep


def test_fibromyalgia_without_fiqr_says_nothing_of_fiqr_RESP4(patient):
    fibromyalgia_patient(patient)
    (composite,) = [r for r in patient_outcome(patient, today=WEEK_12).results if r.rule == "RESP-4"]
    assert "FIQR" not in composite.text


def test_pain_baseline_0_makes_the_percent_undefined_RESP1(patient):
    start_ldn(patient)
    checkin(patient, day(-3), pain=0)
    checkin(patient, day(-1), pain=0)
    checkin(patient, WEEK_12 - dt.timedelta(days=7), pain=1)
    checkin(patient, WEEK_12, pain=1)
    outcome = patient_outcome(patient, today=WEEK_12)
    assert (outcome.pain.percent_change, outcome.pain.grade, outcome.pain.responder) == (None, None, None)
    assert outcome.pain.absolute_change == D("-1")  # RESP-3 still reports the points
    assert "pain baseline is 0: a percent change is undefined (RESP-1)" in outcome.pain.reason
    assert outcome.summary == "undefined: baseline 0"
    assert outcome.responder is None


def test_single_pre_start_entry_is_a_weak_baseline_BASE1(patient):
    start_ldn(patient)
    checkin(patient, day(-4), pain=6)
    checkin(patient, WEEK_12 - dt.timedelta(days=7), pain=4)
    checkin(patient, WEEK_12, pain=4)
    pain = patient_outcome(patient, today=WEEK_12).item("pain")
    assert (pain.baseline.value, pain.entries, pain.weak_baseline) == (Fraction(6), 1, True)
    assert pain.baseline_text.startswith("6.0, weak baseline: a single pain value before the first dose")
    assert "BASE-1" in pain.baseline_text
    assert pain.change.weak_baseline is True and pain.change.percent_change == D("33.3")


def test_no_pre_start_entry_means_no_baseline_said_plainly_BASE1(patient):
    start_ldn(patient)
    checkin(patient, day(0), pain=7)  # the first-dose day is not before the first dose
    checkin(patient, WEEK_12 - dt.timedelta(days=7), pain=4)
    checkin(patient, WEEK_12, pain=4)
    outcome = patient_outcome(patient, today=WEEK_12)
    pain = outcome.item("pain")
    assert pain.baseline is None and pain.entries == 0
    assert pain.baseline_text.startswith("no baseline: no check-in in the 14 days before the first dose (2026-01-10)")
    assert (outcome.pain.responder, outcome.responder, outcome.summary) == (None, None, "—")


def test_no_first_dose_no_baseline_and_no_results_BASE1(patient):
    f.PatientConditionFactory(patient=patient, condition="multiple_sclerosis")
    checkin(patient, day(-3), pain=7)
    score(patient, day(-3), "MFIS", "40")
    outcome = patient_outcome(patient, today=WEEK_12)
    assert outcome.first_dose is None and outcome.results == ()
    assert outcome.reasons[0].startswith("No first dose recorded")
    assert (outcome.summary, outcome.status) == ("—", "provisional")


def test_partial_hbi_from_the_patient_form_is_not_compared_PRO2_RESP5(patient):
    f.PatientConditionFactory(patient=patient, condition="crohns")
    start_ldn(patient)
    score(patient, day(-2), "HBI", "9", partial=True)
    score(patient, WEEK_12, "HBI", "3", partial=True)  # below 5, but partial: never "remission"
    (crohns,) = [r for r in patient_outcome(patient, today=WEEK_12).results if r.rule == "RESP-5"]
    assert (
        crohns.text
        == PARTIAL_HBI
        == ("HBI from the patient form is partial (no abdominal mass): not compared with HBI thresholds (PRO-2)")
    )
    assert crohns.responder is None


def test_full_hbi_down_3_is_a_response_and_later_partial_ones_are_set_aside_RESP5(patient):
    f.PatientConditionFactory(patient=patient, condition="crohns")
    start_ldn(patient)
    score(patient, day(-2), "HBI", "9")  # clinician-examined: full
    score(patient, WEEK_12 - dt.timedelta(days=7), "HBI", "4")
    score(patient, WEEK_12, "HBI", "2", partial=True)
    (crohns,) = [r for r in patient_outcome(patient, today=WEEK_12).results if r.rule == "RESP-5"]
    assert crohns.responder is True
    assert crohns.text.startswith("HBI 9 -> 4 (response), remission (RESP-5)")
    assert crohns.text.endswith(f"; later {PARTIAL_HBI}")


def test_mfis_drop_of_4_is_a_responder_RESP6(patient):
    f.PatientConditionFactory(patient=patient, condition="multiple_sclerosis")
    start_ldn(patient)
    checkin(patient, day(-2), pain=5)
    checkin(patient, day(-1), pain=5)
    checkin(patient, WEEK_12 - dt.timedelta(days=7), pain=5)
    checkin(patient, WEEK_12, pain=5)  # pain unchanged: not a RESP-1 responder
    score(patient, day(-2), "MFIS", "40")
    score(patient, WEEK_12, "MFIS", "36")
    outcome = patient_outcome(patient, today=WEEK_12)
    (ms,) = [r for r in outcome.results if r.rule == "RESP-6"]
    assert ms.responder is True
    assert "MFIS 40 on 2026-01-08 -> 36 on 2026-04-18, down 4 points: at least the 4-point drop" in ms.text
    assert (outcome.pain.responder, outcome.responder) == (False, True)  # RESP-6 met: a responder for EFF-2


def test_mfis_drop_of_3_is_not_RESP6(patient):
    f.PatientConditionFactory(patient=patient, condition="multiple_sclerosis")
    start_ldn(patient)
    score(patient, day(-3), "MFIS", "40")
    score(patient, WEEK_12, "MFIS", "37")
    (ms,) = [r for r in patient_outcome(patient, today=WEEK_12).results if r.rule == "RESP-6"]
    assert ms.responder is False and "down 3 points: less than" in ms.text


def test_latest_pgic_2_is_a_responder_RESP7(patient):
    start_ldn(patient)
    score(patient, day(28), "PGIC", "4")
    score(patient, day(84), "PGIC", "2")
    (pgic,) = [r for r in patient_outcome(patient, today=WEEK_12).results if r.rule == "RESP-7"]
    assert pgic.responder is True
    assert pgic.text == "PGIC 2 (much improved) on 2026-04-04: much or very much improved (RESP-7)"


def test_latest_pgic_3_is_not_RESP7(patient):
    start_ldn(patient)
    score(patient, day(28), "PGIC", "2")
    score(patient, day(84), "PGIC", "3")
    (pgic,) = [r for r in patient_outcome(patient, today=WEEK_12).results if r.rule == "RESP-7"]
    assert pgic.responder is False


def test_before_week_12_on_maintenance_the_status_is_provisional_RESP1(patient):
    fibromyalgia_patient(patient)
    outcome = patient_outcome(patient, today=WEEK_12 - dt.timedelta(days=1))  # day 83 on maintenance
    assert (outcome.evaluated, outcome.status) == (False, "provisional")
    assert outcome.summary.endswith(" provisional")
    assert outcome.evaluation_date == WEEK_12
    assert "provisional until week 12 on it, 2026-04-18 (RESP-1)" in outcome.reasons[0]


def test_not_on_maintenance_yet_is_provisional_RESP1(patient):
    plan = f.PlanFactory(patient=patient)
    f.StepFactory(plan=plan, sequence=1, dose_mg=D("1.5"), actual_start=FIRST_DOSE, status="active")
    outcome = patient_outcome(patient, today=WEEK_12)
    assert (outcome.maintenance_started, outcome.status) == (None, "provisional")


def test_soft_deleted_checkins_and_their_scores_are_ignored_BASE1_RESP1(patient):
    fibromyalgia_patient(patient)
    checkin(patient, day(-2), pain=0).delete()  # archived: not in the baseline
    checkin(patient, WEEK_12, pain=0, hour=18).delete()  # archived: not a "last" check-in
    f.PatientConditionFactory(patient=patient, condition="multiple_sclerosis")
    score(patient, day(-3), "MFIS", "40")
    archived = checkin(patient, WEEK_12, hour=19)
    f.InstrumentScoreFactory(patient=patient, checkin=archived, instrument="MFIS", total=D(20), answers={})
    archived.delete()  # the score came in an archived check-in
    outcome = patient_outcome(patient, today=WEEK_12)
    assert (outcome.item("pain").baseline.value, outcome.item("pain").entries) == (Fraction(7), 4)
    assert outcome.pain.current == Fraction(9, 2)
    (ms,) = [r for r in outcome.results if r.rule == "RESP-6"]
    assert ms.text == "no MFIS since week 1 to compare (RESP-6)"


def test_another_patients_checkins_are_never_counted_BASE1_RESP1(patient, sibling_patient, other_patient):
    fibromyalgia_patient(patient)
    for someone in (sibling_patient, other_patient):
        checkin(someone, day(-3), pain=0)
        checkin(someone, day(-2), pain=0)
        checkin(someone, WEEK_12, pain=10, hour=20)
        score(someone, day(84), "PGIC", "1")
    outcomes = patient_outcomes([patient, sibling_patient], today=WEEK_12)
    mine = outcomes[patient.pk]
    assert (mine.item("pain").entries, mine.pain.current, mine.results[-1].rule) == (4, Fraction(9, 2), "RESP-4")
    theirs = outcomes[sibling_patient.pk]
    assert theirs.first_dose is None  # the sibling never started: none of the patient's plan is theirs


def test_checkins_after_today_do_not_count_RESP1(patient):
    fibromyalgia_patient(patient)
    checkin(patient, WEEK_12 + dt.timedelta(days=1), pain=9)
    assert patient_outcome(patient, today=WEEK_12).pain.current == Fraction(9, 2)


def test_checkin_dates_are_the_patients_local_dates_BASE1(patient):
    patient.time_zone = "America/Los_Angeles"
    patient.save()
    start_ldn(patient)
    # 2026-01-10 03:00 UTC is still 2026-01-09 in Los Angeles: before the first dose, so in the baseline.
    checkin(patient, FIRST_DOSE, pain=7, hour=3)
    checkin(patient, day(-2), pain=5)
    pain = patient_outcome(patient, today=WEEK_12).item("pain")
    assert (pain.baseline.value, pain.entries) == (Fraction(6), 2)


def test_responder_reasons_cite_rule_ids_RESP1_RESP4(patient):
    fibromyalgia_patient(patient)
    reasons = patient_outcome(patient, today=WEEK_12).reasons
    assert reasons[-1] == "Responder: pain (RESP-1), fibromyalgia composite (RESP-4)."
    assert all(re.search(r"\b(BASE|RESP|PRO)-\d\b", reason) for reason in reasons), reasons


@pytest.mark.parametrize("patients", [5, 50])
def test_bulk_outcomes_read_in_three_queries_whatever_the_number_RESP1(patients, clinic, django_assert_num_queries):
    people = []
    for _ in range(patients):
        p = f.PatientFactory(clinic=clinic)
        f.PatientConditionFactory(patient=p, condition="crohns")
        checkin(p, day(-2), pain=6)
        checkin(p, WEEK_12, pain=3)
        score(p, WEEK_12, "HBI", "4")
        people.append(p)
    dates = {p.pk: {"first_dose": FIRST_DOSE, "maintenance_started": MAINTENANCE} for p in people}
    with django_assert_num_queries(3):
        found = patient_outcomes(people, today=WEEK_12, dates=dates)
    assert len(found) == patients
    assert all(o.results[0].rule == "RESP-5" for o in found.values())


def test_single_outcome_asks_titration_for_the_dates_through_the_hook_RESP1(patient):
    fibromyalgia_patient(patient)
    outcome = patient_outcome(patient, today=WEEK_12)
    assert (outcome.first_dose, outcome.maintenance_started) == (FIRST_DOSE, MAINTENANCE)
