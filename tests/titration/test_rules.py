"""DOSE-1 as a pure rule: no database, table-driven."""

from decimal import Decimal

import pytest

from titration import rules
from titration.rules import DoseError, check_dose

D = Decimal


def test_dose_constants_match_domain_section_1_1_DOSE_1():
    constants = {name: getattr(rules, name) for name in ("LDN_TARGET_MG", "LDN_HARD_MAX_MG", "LDN_VERY_LOW_MG")}
    assert constants == {"LDN_TARGET_MG": D("4.5"), "LDN_HARD_MAX_MG": D("5.0"), "LDN_VERY_LOW_MG": D("0.5")}
    assert all(isinstance(v, Decimal) for v in constants.values())
    assert (rules.MIN_DAYS_DEFAULT, rules.MIN_DAYS_RANGE) == (7, (3, 14))


@pytest.mark.parametrize("dose", ["0.5", "1.0", "1.5", "3.0", "4.5", "4.500"])
def test_dose_in_usual_range_accepted_without_warning_DOSE_1(dose):
    assert check_dose(D(dose)) == []


@pytest.mark.parametrize("dose", ["4.501", "4.75", "5", "5.0", "5.000"])
def test_dose_above_usual_maximum_warns_DOSE_1(dose):
    assert check_dose(D(dose)) == [f"{D(dose)} mg is above the usual maximum of 4.5 mg."]


@pytest.mark.parametrize("dose", ["0.001", "0.1", "0.25", "0.499"])
def test_dose_below_half_mg_warns_very_low_dose_DOSE_1(dose):
    assert check_dose(D(dose)) == [f"{D(dose)} mg is in the very-low-dose range (below 0.5 mg)."]


@pytest.mark.parametrize("dose", ["5.001", "5.01", "6", "50"])
def test_dose_above_hard_max_refused_DOSE_1(dose):
    with pytest.raises(DoseError, match="above 5.0 mg: that is not low-dose naltrexone"):
        check_dose(D(dose))


@pytest.mark.parametrize("dose", ["0", "0.000", "-0", "-0.25", "-5"])
def test_dose_zero_or_negative_refused_DOSE_1(dose):
    with pytest.raises(DoseError, match="more than 0 mg"):
        check_dose(D(dose))


@pytest.mark.parametrize("dose", [D("NaN"), D("Infinity"), D("-Infinity")])
def test_dose_not_a_finite_number_refused_DOSE_1(dose):
    with pytest.raises(DoseError):
        check_dose(dose)


@pytest.mark.parametrize("dose", [4.5, 1, "1.5", None])
def test_dose_that_is_not_an_exact_decimal_refused_DOSE_1(dose):
    with pytest.raises(DoseError, match="exact decimal"):
        check_dose(dose)
