"""Laboratory monitoring rules (domain.md section 5): pure functions, no ORM, no clock.

LAB-2: ALT or AST above 3x the upper limit of normal (ULN) raises a clinician alert; above 5x ULN, or
known severe hepatic impairment, blocks step-ups pending a clinician's review. The ULN is the lab's
own (the result's reference range), so the rule works in whatever unit the lab reports. A result
that cannot be compared (no ULN on file) is not passed as normal: it blocks for review like a high
one, and says why. The urine drug screen rule (positive means an opioid CONFLICT) lives in the
services, which put the finding on the medication list for the conflict engine.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

LIVER_TESTS = ("ALT", "AST")
ALERT_TIMES_ULN = Decimal(3)
BLOCK_TIMES_ULN = Decimal(5)

OK, ALERT, BLOCK = "ok", "alert", "block"


@dataclass(frozen=True)
class LiverResult:
    result_id: int
    test: str  # "ALT" or "AST"
    value: Decimal
    unit: str
    uln: Decimal | None  # the lab's upper reference limit, in the same unit
    collected_on: date


@dataclass(frozen=True)
class LabFinding:
    level: str  # ALERT or BLOCK
    key: str  # stable: the same finding raised twice is one clinician task
    text: str  # what a clinician reads; ends with the rule id


@dataclass(frozen=True)
class LiverCheck:
    findings: tuple[LabFinding, ...]
    missing: tuple[str, ...]  # liver tests with no result on file (baseline due for all patients)

    @property
    def level(self) -> str:
        levels = {f.level for f in self.findings}
        return BLOCK if BLOCK in levels else ALERT if ALERT in levels else OK


def _times(value: Decimal, uln: Decimal, threshold: Decimal) -> str:
    """ "6.3×" (half up, one decimal); "just over 5×" where rounding would make it look not above."""
    ratio = (value / uln).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    if ratio <= threshold:
        return f"just over {threshold}×"
    return f"{ratio.normalize():f}×" if ratio == ratio.to_integral() else f"{ratio}×"


def _shown(result: LiverResult) -> str:
    return f"{result.test} {result.value.normalize():f} {result.unit} on {result.collected_on.isoformat()}"


def liver_finding(result: LiverResult) -> LabFinding | None:
    """LAB-2 for one ALT or AST result: None when it is at most 3x ULN."""
    if result.test not in LIVER_TESTS:
        raise ValueError(f"LAB-2 reads ALT and AST results, not {result.test!r}.")
    if result.uln is None or result.uln <= 0:
        text = (
            f"{_shown(result)} has no upper limit of normal on file, so LAB-2 cannot be checked: "
            "review manually and add the lab's reference range (LAB-2)"
        )
        return LabFinding(BLOCK, f"lab2-review:{result.result_id}", text)
    if result.value > BLOCK_TIMES_ULN * result.uln:
        text = (
            f"{_shown(result)} is {_times(result.value, result.uln, BLOCK_TIMES_ULN)} the upper limit of normal "
            f"({result.uln.normalize():f}): step-ups blocked pending review (LAB-2)"
        )
        return LabFinding(BLOCK, f"lab2-review:{result.result_id}", text)
    if result.value > ALERT_TIMES_ULN * result.uln:
        text = (
            f"{_shown(result)} is {_times(result.value, result.uln, ALERT_TIMES_ULN)} the upper limit of normal "
            f"({result.uln.normalize():f}): above 3× ULN, review liver function (LAB-2)"
        )
        return LabFinding(ALERT, f"lab2-alert:{result.result_id}", text)
    return None


def liver_check(results: Sequence[LiverResult], *, severe_hepatic_impairment: bool, patient_id: int) -> LiverCheck:
    """LAB-2 on a patient's ALT and AST results: each test's latest result counts (an earlier high
    result that has since come down is not a finding any more; a review it raised stays open until a
    clinician closes it, which is the services' business). Known severe hepatic impairment blocks
    whatever the results say."""
    latest: dict[str, LiverResult] = {}
    for result in results:
        if result.test not in LIVER_TESTS:
            raise ValueError(f"LAB-2 reads ALT and AST results, not {result.test!r}.")
        kept = latest.get(result.test)
        if kept is None or (result.collected_on, result.result_id) > (kept.collected_on, kept.result_id):
            latest[result.test] = result
    findings = []
    if severe_hepatic_impairment:
        text = "known severe hepatic impairment: step-ups blocked pending review (LAB-2)"
        findings.append(LabFinding(BLOCK, f"lab2-hepatic:{patient_id}", text))
    for test in LIVER_TESTS:
        if test in latest and (finding := liver_finding(latest[test])) is not None:
            findings.append(finding)
    missing = tuple(test for test in LIVER_TESTS if test not in latest)
    return LiverCheck(tuple(findings), missing)
