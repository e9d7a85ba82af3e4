"""Pure dose rules (domain.md section 1). No ORM, no clock."""

from decimal import Decimal

LDN_TARGET_MG = Decimal("4.5")
LDN_HARD_MAX_MG = Decimal("5.0")  # DOSE-1: above this is not LDN
LDN_VERY_LOW_MG = Decimal("0.5")
MIN_DAYS_DEFAULT = 7
MIN_DAYS_RANGE = (3, 14)  # step-up rule 1.3 condition 1


class DoseError(ValueError):
    pass


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
