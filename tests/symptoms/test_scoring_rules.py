"""Instrument scoring (PRO-1..PRO-3), baselines (BASE-1) and responders (RESP-1..RESP-7) as pure rules.

No database: every case is plain values in, a dataclass or a number out. Expected values are worked by hand
from domain.md section 4, not recomputed with the code's own formulas.
"""

from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from symptoms.instruments import (
    BPI,
    FIQR,
    HBI,
    HBI_COMPLICATIONS,
    MFIS,
    MFIS_COGNITIVE,
    MFIS_PHYSICAL,
    MFIS_PSYCHOSOCIAL,
    MFIS_SHORT_FORM,
    NRS_ITEMS,
    PGIC,
    PGIC_LABELS,
    PROMIS,
    due_instruments,
    fiqr_score,
    hbi_score,
    mfis5_score,
    mfis_score,
    pgic_label,
    validate_nrs,
)
from symptoms.models import NRS_FIELDS
from symptoms.rules import (
    Baseline,
    Grade,
    baseline,
    crohns_response,
    evaluated_at_week_12_on_maintenance,
    fibromyalgia_response,
    fiqr_improved,
    item_change,
    mfis_responder,
    pain_response,
    pgic_responder,
)

D = Decimal
F = Fraction
FIRST_DOSE = date(2025, 3, 15)


def before(days: int) -> date:
    return FIRST_DOSE - timedelta(days=days)


def base(value, n: int = 2, weak: bool = False) -> Baseline:
    return Baseline(value=value, n=n, weak=weak)


# --- PRO-1: NRS ---------------------------------------------------------------------------------------------


def test_nrs_items_and_direction_match_the_checkin_fields_PRO_1():
    assert dict(NRS_ITEMS) == {"pain": True, "fatigue": True, "sleep_quality": False, "mood": False}
    assert set(NRS_ITEMS) == set(NRS_FIELDS)
    with pytest.raises(TypeError):
        NRS_ITEMS["pain"] = False  # read-only: a rule table nobody can flip at runtime


@pytest.mark.parametrize("value", [0, 1, 5, 10])
def test_nrs_whole_numbers_0_to_10_accepted_PRO_1(value):
    assert validate_nrs(value, "pain") == value


@pytest.mark.parametrize("value", [-1, 11, 100, 5.0, 5.5, "5", None, True, Decimal("5")])
def test_nrs_outside_0_to_10_or_not_a_whole_number_refused_PRO_1(value):
    with pytest.raises(ValueError, match="pain must be a whole number from 0 to 10"):
        validate_nrs(value, "pain")


def test_change_on_an_unknown_nrs_item_refused_PRO_1():
    with pytest.raises(ValueError, match="Unknown NRS item 'sleep'"):
        item_change("sleep", base(5), [5, 5])


# --- Harvey-Bradshaw Index (PRO-2) ---------------------------------------------------------------------

# (well-being, abdominal pain, liquid stools, abdominal mass, complications) -> (total, band)
HBI_CASES = [
    ((0, 0, 0, 0, set()), 0, "remission"),
    ((1, 1, 2, 0, set()), 4, "remission"),
    ((1, 1, 3, 0, set()), 5, "mild"),
    ((2, 1, 3, 1, set()), 7, "mild"),
    ((2, 1, 3, 1, {"arthralgia"}), 8, "moderate"),
    # poor well-being, moderate pain, 4 liquid stools, dubious mass, arthralgia and aphthous ulcers
    ((2, 2, 4, 1, {"arthralgia", "aphthous_ulcers"}), 11, "moderate"),
    ((3, 2, 6, 2, {"arthralgia", "uveitis", "abscess"}), 16, "moderate"),
    ((3, 2, 6, 2, {"arthralgia", "uveitis", "abscess", "anal_fissure"}), 17, "severe"),
    ((4, 3, 10, 3, set(HBI_COMPLICATIONS)), 28, "severe"),
]


@pytest.mark.parametrize(("parts", "total", "band"), HBI_CASES)
def test_hbi_worked_examples_and_band_edges_PRO_2(parts, total, band):
    score = hbi_score(*parts)
    assert (score.total, score.partial, score.band, score.comparable) == (total, False, band, True)


@pytest.mark.parametrize(
    ("parts", "total"),
    [
        ((1, 1, 1, None, set()), 3),  # would read "remission" against full thresholds
        ((4, 3, 10, None, {"abscess", "new_fistula", "uveitis"}), 20),  # would read "severe"
    ],
)
def test_partial_hbi_without_abdominal_mass_gets_no_band_PRO_2_RESP_5(parts, total):
    score = hbi_score(*parts)
    assert (score.total, score.partial, score.band, score.comparable) == (total, True, None, False)


def test_hbi_complication_counts_once_PRO_2():
    assert hbi_score(0, 0, 0, 0, ["arthralgia", "arthralgia"]).total == 1
    assert len(HBI_COMPLICATIONS) == 8


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ((5, 0, 0, 0, set()), "well-being must be a whole number from 0 to 4; got 5"),
        ((0, 4, 0, 0, set()), "abdominal pain must be a whole number from 0 to 3; got 4"),
        ((0, 0, -1, 0, set()), "liquid stools per day must be a whole number from 0; got -1"),
        ((0, 0, 2.5, 0, set()), "liquid stools"),
        ((0, 0, 0, 4, set()), "abdominal mass must be a whole number from 0 to 3; got 4"),
        ((True, 0, 0, 0, set()), "well-being"),
        ((0, 0, 0, 0, {"fistula"}), "Unknown HBI complication"),
        ((0, 0, 0, 0, "arthralgia"), "not a single string"),
    ],
)
def test_hbi_invalid_answers_refused_PRO_2(parts, message):
    with pytest.raises(ValueError, match=message):
        hbi_score(*parts)


# --- MFIS (PRO-2, RESP-6) ---------------------------------------------------------------------------------


def test_mfis_subscales_are_domain_item_sets_and_partition_1_to_21_RESP_6():
    assert MFIS_PHYSICAL == (4, 6, 7, 10, 13, 14, 17, 20, 21)
    assert MFIS_COGNITIVE == (1, 2, 3, 5, 11, 12, 15, 16, 18, 19)
    assert MFIS_PSYCHOSOCIAL == (8, 9)
    assert MFIS_SHORT_FORM == (1, 9, 10, 17, 19)
    together = [*MFIS_PHYSICAL, *MFIS_COGNITIVE, *MFIS_PSYCHOSOCIAL]
    assert sorted(together) == list(range(1, 22))  # every item once: no overlap, no gap


MIXED = [1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]  # item k answers k mod 5
PHYSICAL_ONLY = [0, 0, 0, 4, 0, 4, 4, 0, 0, 4, 0, 0, 4, 4, 0, 0, 4, 0, 0, 4, 4]


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([0] * 21, (0, 0, 0, 0, 0)),
        ([4] * 21, (84, 36, 40, 8, 20)),
        # physical 4,1,2,0,3,4,2,0,1=17; cognitive 1,2,3,0,1,2,0,1,3,4=17; psychosocial 3,4=7; short 1,4,0,2,4=11
        (MIXED, (41, 17, 17, 7, 11)),
        (PHYSICAL_ONLY, (36, 36, 0, 0, 8)),  # short form items 10 and 17 are physical
    ],
)
def test_mfis_worked_examples_RESP_6(items, expected):
    s = mfis_score(items)
    assert (s.total, s.physical, s.cognitive, s.psychosocial, s.short_form) == expected


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([0] * 6 + [None] + [0] * 14, "MFIS item 7 is missing"),
        ([0] * 20, "exactly 21 answers"),
        ([0] * 22, "exactly 21 answers"),
        ([0] * 20 + [5], "MFIS item 21 must be a whole number from 0 to 4; got 5"),
        ([0] * 20 + [-1], "MFIS item 21"),
    ],
)
def test_mfis_missing_or_invalid_items_refused_not_guessed_RESP_6(items, message):
    with pytest.raises(ValueError, match=message):
        mfis_score(items)


@pytest.mark.parametrize(("items", "total"), [([0] * 5, 0), ([4] * 5, 20), ([1, 2, 3, 4, 0], 10)])
def test_mfis5_short_form_given_alone_RESP_6(items, total):
    assert mfis5_score(items) == total


@pytest.mark.parametrize("items", [[4] * 4, [4, 4, None, 4, 4], [4] * 21])
def test_mfis5_incomplete_or_full_form_refused_RESP_6(items):
    with pytest.raises(ValueError, match="MFIS-5"):
        mfis5_score(items)


# --- FIQR (licensed; RESP-4 secondary) ------------------------------------------------------------------


def fiqr(function, overall, symptoms):
    return fiqr_score([*function, *overall, *symptoms])


@pytest.mark.parametrize(
    ("function", "overall", "symptoms", "expected"),
    [
        ([0] * 9, [0, 0], [0] * 10, ("0.0", "0.0", "0.0", "0.0", 0)),
        ([10] * 9, [10, 10], [10] * 10, ("30.0", "20.0", "50.0", "100.0", 0)),
        # function 10/3 = 3.33; overall 7; symptoms 11/2 = 5.5; total 15.833
        ([1, 1, 1, 1, 1, 1, 1, 1, 2], [3, 4], [1] * 9 + [2], ("3.3", "7.0", "5.5", "15.8", 0)),
        # 8 of 9 function answered, sum 40: 40*9/8/3 = 15; overall 7 of 1: 7*2/1 = 14;
        # 9 of 10 symptoms answered, sum 45: 45*10/9/2 = 25; total 54
        ([5] * 8 + [None], [7, None], [5] * 9 + [None], ("15.0", "14.0", "25.0", "54.0", 3)),
        # 7 of 9 function, sum 10: 30/7 = 4.2857; 4 of 10 symptoms, sum 1: 1*10/4/2 = 1.25 -> 1.3 (half-up)
        ([5, 5, 0, 0, 0, 0, 0, None, None], [0, 0], [1, 0, 0, 0] + [None] * 6, ("4.3", "0.0", "1.3", "5.5", 8)),
    ],
)
def test_fiqr_domains_total_and_missing_item_weighting(function, overall, symptoms, expected):
    s = fiqr(function, overall, symptoms)
    assert (s.function, s.overall, s.symptoms, s.total, s.missing) == (*map(D, expected[:4]), expected[4])


def test_fiqr_keeps_the_exact_total_behind_the_rounded_one():
    s = fiqr([5, 5, 0, 0, 0, 0, 0, None, None], [0, 0], [1, 0, 0, 0] + [None] * 6)
    assert s.exact_total == F(30, 7) + F(5, 4)


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([None] * 9 + [0] * 12, "function domain has no answered item"),
        ([0] * 9 + [None, None] + [0] * 10, "overall impact domain has no answered item"),
        ([0] * 11 + [None] * 10, "symptoms domain has no answered item"),
        ([0] * 20, "FIQR needs 21 answers"),
        ([0] * 10 + [11] + [0] * 10, "FIQR item 11 must be a whole number from 0 to 10; got 11"),
    ],
)
def test_fiqr_unscorable_or_invalid_refused(items, message):
    with pytest.raises(ValueError, match=message):
        fiqr_score(items)


# --- PGIC (RESP-7) ------------------------------------------------------------------------------------------


def test_pgic_labels_run_from_very_much_improved_to_very_much_worse_RESP_7():
    assert [pgic_label(v) for v in range(1, 8)] == [
        "Very much improved",
        "Much improved",
        "Minimally improved",
        "No change",
        "Minimally worse",
        "Much worse",
        "Very much worse",
    ]
    assert list(PGIC_LABELS) == [1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize(("value", "responder"), [(1, True), (2, True), (3, False), (4, False), (7, False)])
def test_pgic_much_or_very_much_improved_is_a_responder_RESP_7(value, responder):
    assert pgic_responder(value) is responder


@pytest.mark.parametrize("value", [0, 8, -1, 2.0, "2", None, True])
def test_pgic_outside_1_to_7_refused_RESP_7(value):
    with pytest.raises(ValueError, match="PGIC must be a whole number from 1 to 7"):
        pgic_responder(value)


# --- PRO-2 / PRO-3: schedules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conditions", "week", "licences", "due"),
    [
        ({"other"}, 0, set(), set()),
        ({"other"}, 3, set(), set()),
        ({"other"}, 4, set(), {PGIC}),
        ({"other"}, 8, set(), {PGIC}),
        ({"other"}, 12, set(), {PGIC}),
        ({"other"}, 16, set(), set()),  # after week 12 PGIC is every 12 weeks, not every 4
        ({"other"}, 20, set(), set()),
        ({"other"}, 24, set(), {PGIC}),
        ({"long_covid"}, 36, set(), {PGIC}),
        ({"crohns"}, 0, set(), {HBI}),
        ({"crohns"}, 3, set(), {HBI}),  # weekly
        ({"crohns"}, 4, set(), {HBI, PGIC}),
        ({"multiple_sclerosis"}, 0, set(), {MFIS}),
        ({"multiple_sclerosis"}, 4, set(), {MFIS, PGIC}),
        ({"multiple_sclerosis"}, 5, set(), set()),
        ({"multiple_sclerosis"}, 20, set(), {MFIS}),
        ({"fibromyalgia"}, 4, set(), {PGIC}),  # no FIQR without its licence
        ({"fibromyalgia"}, 4, {FIQR}, {FIQR, PGIC}),
        ({"fibromyalgia"}, 0, {FIQR}, {FIQR}),
        ({"fibromyalgia"}, 6, {FIQR}, set()),
        ({"chronic_pain"}, 4, {FIQR}, {PGIC}),  # a FIQR licence does not make it due outside fibromyalgia
        ({"fibromyalgia", "crohns", "multiple_sclerosis"}, 8, {FIQR}, {PGIC, HBI, MFIS, FIQR}),
        (set(), 12, set(), {PGIC}),
    ],
)
def test_due_instruments_by_condition_and_week_PRO_2(conditions, week, licences, due):
    assert due_instruments(conditions, week, licences) == due


def test_bpi_and_promis_never_due_without_a_licence_PRO_3():
    everything = {"fibromyalgia", "crohns", "multiple_sclerosis", "long_covid", "hashimotos", "chronic_pain", "other"}
    for week in range(0, 105):
        due = due_instruments(everything, week, {FIQR})
        assert not due & {BPI, PROMIS}, week


@pytest.mark.parametrize(
    ("week", "licences", "due"),
    [(4, {BPI}, {BPI, PGIC}), (4, {BPI, PROMIS}, {BPI, PROMIS, PGIC}), (5, {BPI, PROMIS}, set())],
)
def test_bpi_and_promis_due_once_licensed_PRO_3(week, licences, due):
    assert due_instruments({"chronic_pain"}, week, licences) == due


@pytest.mark.parametrize(
    ("conditions", "week", "licences", "message"),
    [
        ({"crohn"}, 4, set(), "Unknown condition"),
        ("crohns", 4, set(), "not a single string"),
        ({"crohns"}, 4, {"fiqr"}, "Unknown licence"),
        ({"crohns"}, -1, set(), "weeks on LDN"),
        ({"crohns"}, 4.0, set(), "weeks on LDN"),
    ],
)
def test_due_instruments_refuses_unknown_keys_and_bad_weeks_PRO_2_PRO_3(conditions, week, licences, message):
    with pytest.raises(ValueError, match=message):
        due_instruments(conditions, week, licences)


# --- BASE-1 --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([(before(14), 6), (before(1), 8)], (F(7), 2, False)),  # day -14 is inside the window
        ([(before(15), 0), (before(10), 6), (before(2), 7)], (F(13, 2), 2, False)),  # day -15 is not
        ([(FIRST_DOSE, 10), (before(3), 4), (before(2), 5)], (F(9, 2), 2, False)),  # first-dose day is not
        ([(before(3), 7), (before(2), 7), (before(1), 6), (FIRST_DOSE + timedelta(7), 0)], (F(20, 3), 3, False)),
        ([(before(3), 5)], (F(5), 1, True)),  # single value: weak
        ([(before(30), 9), (before(20), 8), (before(5), 3)], (F(3), 1, True)),  # latest pre-start value
        ([(before(20), 4), (before(40), 9)], (F(4), 1, True)),  # none in the window: latest by date, not order
        ([(before(5), None), (before(3), 6)], (F(6), 1, True)),  # blank answers are skipped
    ],
)
def test_baseline_mean_of_14_days_before_first_dose_else_weak_single_value_BASE_1(values, expected):
    b = baseline(values, FIRST_DOSE)
    assert (b.value, b.n, b.weak) == expected


@pytest.mark.parametrize("values", [[], [(FIRST_DOSE, 5), (FIRST_DOSE + timedelta(7), 6)], [(before(2), None)]])
def test_no_baseline_without_a_pre_start_value_BASE_1(values):
    assert baseline(values, FIRST_DOSE) is None


def test_baseline_of_three_values_is_exact_and_displays_rounded_BASE_1():
    b = baseline([(before(3), 7), (before(2), 7), (before(1), 6)], FIRST_DOSE)
    assert (b.value, b.display) == (F(20, 3), D("6.7"))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([(datetime(2025, 3, 10, 9, 0), 5)], "local date"),
        ([(before(2), 11)], "must be a whole number from 0 to 10"),
    ],
)
def test_baseline_refuses_datetimes_and_invalid_values_BASE_1(values, message):
    with pytest.raises(ValueError, match=message):
        baseline(values, FIRST_DOSE)


@pytest.mark.parametrize(("value", "exact"), [(6, F(6)), (D("6.5"), F(13, 2)), (F(20, 3), F(20, 3))])
def test_baseline_built_by_hand_is_held_exactly_BASE_1(value, exact):
    assert base(value).value == exact


@pytest.mark.parametrize("value", [6.5, True, 11, -1, "6"])
def test_baseline_built_by_hand_refuses_floats_and_out_of_range_BASE_1(value):
    with pytest.raises(ValueError):
        base(value)


# --- RESP-1..RESP-3: pain --------------------------------------------------------------------------------------

DAILY_13 = [(before(d), v) for d, v in zip(range(13, 0, -1), [8] * 10 + [7] * 3, strict=True)]  # mean 101/13
DAILY_14 = [(before(d), v) for d, v in zip(range(14, 0, -1), [10] * 13 + [9], strict=True)]  # mean 139/14
NINE = [(before(d), v) for d, v in zip(range(9, 0, -1), [3] * 7 + [2] * 2, strict=True)]  # mean 25/9
ELEVEN = [(before(d), v) for d, v in zip(range(11, 0, -1), [9] * 8 + [10] * 3, strict=True)]  # mean 102/11


# (baseline entries, last two, percent, points, grade, responder, >= 2 points)
PAIN_CASES = [
    ([(before(2), 10), (before(1), 10)], [7, 7], "30.0", "3.00", Grade.MODERATE, True, True),  # exactly 30%
    ([(before(2), 5), (before(1), 5)], [3, 4], "30.0", "1.50", Grade.MODERATE, True, False),  # 30%, < 2 points
    ([(before(2), 6), (before(1), 6)], [4, 4], "33.3", "2.00", Grade.MODERATE, True, True),  # exactly 2 points
    ([(before(2), 9), (before(1), 9)], [7, 8], "16.6", "1.50", Grade.MINIMAL, False, False),  # 1.5 points
    ([(before(2), 8), (before(1), 8)], [4, 4], "50.0", "4.00", Grade.SUBSTANTIAL, True, True),  # exactly 50%
    (DAILY_14, [5, 5], "49.6", "4.92", Grade.MODERATE, True, True),  # just under 50%
    ([(before(2), 8), (before(1), 8)], [4, 5], "43.7", "3.50", Grade.MODERATE, True, True),  # 43.75 truncated
    (ELEVEN, [6, 7], "29.9", "2.77", Grade.MINIMAL, False, True),  # 29.9%: not a responder, yet >= 2 points
    ([(before(2), 10), (before(1), 10)], [9, 9], "10.0", "1.00", Grade.MINIMAL, False, False),  # exactly 10%
    (NINE, [2, 3], "10.0", "0.27", Grade.MINIMAL, False, False),  # exactly 10%, which float arithmetic misses
    (DAILY_13, [7, 7], "9.9", "0.76", Grade.NONE, False, False),  # just under 10%
    ([(before(2), 4), (before(1), 4)], [5, 5], "-25.0", "-1.00", Grade.NONE, False, False),  # worse
    ([(before(2), 6), (before(1), 7)], [0, 0], "100.0", "6.50", Grade.SUBSTANTIAL, True, True),
]


@pytest.mark.parametrize(("entries", "last_two", "percent", "points", "grade", "responder", "important"), PAIN_CASES)
def test_pain_response_grades_and_edges_RESP_1_RESP_2_RESP_3(
    entries, last_two, percent, points, grade, responder, important
):
    r = pain_response(baseline(entries, FIRST_DOSE), last_two)
    assert (r.percent_change, r.absolute_change, r.grade, r.responder, r.important_change) == (
        D(percent),
        D(points),
        grade,
        responder,
        important,
    )
    assert r.weak_baseline is False


def test_shown_percent_never_crosses_a_threshold_the_exact_value_did_not_RESP_2():
    r = pain_response(base(D("7.138")), [5, 5])  # exactly 29.952...%
    assert (r.percent_change, r.grade, r.responder) == (D("29.9"), Grade.MINIMAL, False)
    assert "29.9% better than baseline 7.1" in r.reason


def test_pain_response_reason_describes_the_change_RESP_1():
    r = pain_response(base(8), [4, 5])
    assert r.reason == "pain 43.7% better than baseline 8.0 (3.50 points; RESP-2 grade moderate)"
    assert (r.baseline, r.current) == (F(8), F(9, 2))


def test_weak_baseline_is_carried_into_the_response_RESP_1_BASE_1():
    weak = baseline([(before(20), 6)], FIRST_DOSE)
    r = pain_response(weak, [4, 4])
    assert (r.percent_change, r.responder, r.weak_baseline) == (D("33.3"), True, True)
    assert "weak baseline" in r.reason
    assert pain_response(weak, [4]).weak_baseline is True  # still flagged when undefined


@pytest.mark.parametrize(
    ("b", "last_two", "points", "important", "reason"),
    [
        (None, [4, 4], None, None, "no pain baseline"),
        (base(0), [0, 0], D("0.00"), False, "baseline is 0"),
        (base(0), [3, 3], D("-3.00"), False, "baseline is 0"),
        (base(6), [7], None, None, "1 answered"),
        (base(6), [7, None], None, None, "1 answered"),
        (base(6), [], None, None, "0 answered"),
    ],
)
def test_pain_response_undefined_without_baseline_or_two_checkins_RESP_1(b, last_two, points, important, reason):
    r = pain_response(b, last_two)
    assert (r.percent_change, r.grade, r.responder) == (None, None, None)
    assert (r.absolute_change, r.important_change) == (points, important)
    assert reason in r.reason


def test_more_than_two_current_values_refused_RESP_1():
    with pytest.raises(ValueError, match="last two weekly check-ins only"):
        pain_response(base(6), [3, 3, 3])


# --- item direction: sleep and mood improve by going UP ------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "b", "last_two", "percent", "points", "grade", "responder"),
    [
        ("sleep_quality", base(4), [6, 6], "50.0", "2.00", Grade.SUBSTANTIAL, True),  # up = better
        ("sleep_quality", base(5), [6, 7], "30.0", "1.50", Grade.MODERATE, True),
        ("sleep_quality", base(5), [3, 4], "-30.0", "-1.50", Grade.NONE, False),  # pain's 30% gain is sleep's loss
        ("mood", base(6), [8, 8], "33.3", "2.00", Grade.MODERATE, True),
        ("mood", base(6), [4, 4], "-33.3", "-2.00", Grade.NONE, False),
        ("fatigue", base(6), [4, 4], "33.3", "2.00", Grade.MODERATE, True),  # down = better
        ("fatigue", base(6), [8, 8], "-33.3", "-2.00", Grade.NONE, False),
    ],
)
def test_item_change_follows_the_items_direction_RESP_1_RESP_4(item, b, last_two, percent, points, grade, responder):
    r = item_change(item, b, last_two)
    assert (r.item, r.percent_change, r.absolute_change, r.grade, r.responder) == (
        item,
        D(percent),
        D(points),
        grade,
        responder,
    )


def test_sleep_from_baseline_0_has_no_percent_but_reports_points_RESP_3():
    r = item_change("sleep_quality", base(0), [5, 5])
    assert (r.percent_change, r.responder, r.absolute_change, r.important_change) == (None, None, D("5.00"), True)


def test_worse_change_is_described_as_worse_RESP_1():
    assert item_change("sleep_quality", base(5), [3, 4]).reason.startswith("sleep quality 30.0% worse than baseline")


# --- RESP-4: fibromyalgia composite ----------------------------------------------------------------------------

PAIN_30 = pain_response(base(10), [7, 7])
PAIN_29 = pain_response(baseline(ELEVEN, FIRST_DOSE), [6, 7])
PAIN_UNDEFINED = pain_response(base(0), [0, 0])
FATIGUE_30 = item_change("fatigue", base(10), [7, 7])
FATIGUE_20 = item_change("fatigue", base(10), [8, 8])
FATIGUE_UNDEFINED = item_change("fatigue", None, [5, 5])
SLEEP_UP_30 = item_change("sleep_quality", base(5), [6, 7])
SLEEP_DOWN_30 = item_change("sleep_quality", base(10), [7, 7])  # as pain this would be a 30% improvement
SLEEP_FLAT = item_change("sleep_quality", base(5), [5, 5])


@pytest.mark.parametrize(
    ("pain", "fatigue", "sleep", "responder"),
    [
        (PAIN_30, FATIGUE_30, SLEEP_FLAT, True),
        (PAIN_30, FATIGUE_20, SLEEP_UP_30, True),  # sleep improves by going up
        (PAIN_30, FATIGUE_20, SLEEP_DOWN_30, False),  # sleep going down is worse, not better
        (PAIN_30, FATIGUE_20, SLEEP_FLAT, False),
        (PAIN_29, FATIGUE_30, SLEEP_UP_30, False),  # pain must respond
        (PAIN_UNDEFINED, FATIGUE_30, SLEEP_FLAT, None),
        (PAIN_UNDEFINED, FATIGUE_20, SLEEP_FLAT, False),  # undefined AND false is false
        (PAIN_30, FATIGUE_UNDEFINED, SLEEP_FLAT, None),
        (PAIN_30, FATIGUE_UNDEFINED, SLEEP_UP_30, True),
        (PAIN_29, FATIGUE_UNDEFINED, SLEEP_FLAT, False),
    ],
)
def test_fibromyalgia_composite_pain_and_fatigue_or_sleep_RESP_4(pain, fatigue, sleep, responder):
    assert fibromyalgia_response(pain, fatigue, sleep).responder is responder


def test_fibromyalgia_composite_says_why_RESP_4():
    assert "sleep quality improved" in fibromyalgia_response(PAIN_30, FATIGUE_20, SLEEP_UP_30).reason
    assert "no fatigue baseline" in fibromyalgia_response(PAIN_30, FATIGUE_UNDEFINED, SLEEP_FLAT).reason
    assert "pain not improved" in fibromyalgia_response(PAIN_29, FATIGUE_30, SLEEP_UP_30).reason


def test_fibromyalgia_composite_refuses_items_in_the_wrong_places_RESP_4():
    with pytest.raises(ValueError, match="needs the fatigue change"):
        fibromyalgia_response(PAIN_30, SLEEP_UP_30, FATIGUE_30)


@pytest.mark.parametrize(
    ("baseline_total", "current_total", "improved"),
    [
        (50, 43, True),  # exactly 14%
        (50, D("43.1"), False),  # 13.8%
        (D("57.3"), D("49.2"), True),  # 14.1%
        (50, 60, False),
        (0, 0, None),  # no percent change from 0
    ],
)
def test_fiqr_down_14_percent_is_the_secondary_flag_RESP_4(baseline_total, current_total, improved):
    assert fiqr_improved(baseline_total, current_total) is improved


def test_fiqr_flag_is_carried_by_the_composite_and_totals_checked_RESP_4():
    assert fibromyalgia_response(PAIN_30, FATIGUE_30, SLEEP_FLAT, fiqr=True).fiqr_improved is True
    assert fibromyalgia_response(PAIN_30, FATIGUE_30, SLEEP_FLAT).fiqr_improved is None
    with pytest.raises(ValueError, match="FIQR total must be from 0 to 100"):
        fiqr_improved(101, 50)


# --- RESP-5: Crohn's (full HBI only) ---------------------------------------------------------------------------


def full(total: int):
    return hbi_score(0, 0, total, 0, set())  # all of it in liquid stools


def partial(total: int):
    return hbi_score(0, 0, total, None, set())


@pytest.mark.parametrize(
    ("before_", "now", "response", "remission", "change"),
    [
        (full(10), full(7), True, False, 3),  # down exactly 3
        (full(10), full(8), False, False, 2),
        (full(7), full(4), True, True, 3),
        (full(6), full(4), False, True, 2),  # remission without response
        (full(5), full(5), False, False, 0),  # 5 is mild, not remission
        (full(4), full(9), False, False, -5),
    ],
)
def test_crohns_response_down_3_and_remission_below_5_RESP_5(before_, now, response, remission, change):
    r = crohns_response(before_, now)
    assert (r.response, r.remission, r.change) == (response, remission, change)


@pytest.mark.parametrize(
    ("before_", "now", "response", "remission", "reason"),
    [
        (full(10), partial(2), None, None, "current HBI is partial"),  # 2 would read as remission
        (partial(10), partial(2), None, None, "current HBI is partial"),
        (partial(10), full(3), None, True, "baseline HBI is partial"),
        (None, full(3), None, True, "no baseline HBI"),
    ],
)
def test_partial_hbi_never_compared_with_thresholds_RESP_5(before_, now, response, remission, reason):
    r = crohns_response(before_, now)
    assert (r.response, r.remission, r.change) == (response, remission, None)
    assert reason in r.reason


# --- RESP-6, RESP-1 timing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before_", "now", "responder"), [(40, 36, True), (40, 37, False), (40, 44, False), (4, 0, True), (84, 0, True)]
)
def test_mfis_down_4_points_is_a_responder_RESP_6(before_, now, responder):
    assert mfis_responder(before_, now) is responder


@pytest.mark.parametrize(("before_", "now"), [(85, 40), (40, -1), (40.0, 36)])
def test_mfis_totals_outside_0_to_84_refused_RESP_6(before_, now):
    with pytest.raises(ValueError, match="MFIS total"):
        mfis_responder(before_, now)


@pytest.mark.parametrize(("days", "due"), [(0, False), (83, False), (84, True), (200, True)])
def test_response_evaluated_from_week_12_on_maintenance_RESP_1(days, due):
    started = date(2025, 1, 1)
    assert evaluated_at_week_12_on_maintenance(started, started + timedelta(days=days)) is due


def test_no_week_12_evaluation_without_a_maintenance_start_RESP_1():
    assert evaluated_at_week_12_on_maintenance(None, date(2030, 1, 1)) is False
