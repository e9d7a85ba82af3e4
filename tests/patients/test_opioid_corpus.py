"""Score the opioid matcher against an independent corpus of medication names (domain.md 2, OPI-1..OPI-4).

The corpus (tests/patients/opioid_corpus.py) was written from knowledge of how medicines are named in the wild,
not from the matcher: US brands and generics, UK/Canadian/Australian products (co-codamol, Solpadeine Plus,
Panadeine, Targin, Palexia, Zomorph, Temgesic, Tylenol No. 1, 222 tablets ...), FDA NDC-directory and DailyMed
titles ("HYDROCODONE BITARTRATE AND ACETAMINOPHEN tablet"), RxNorm SCD/SBD strings ("72 HR Fentanyl 0.025 MG/HR
Transdermal System"), EHR order strings with Tall Man lettering ("oxyCODONE-acetaminophen (PERCOCET) 5-325 MG"),
repackager labels ("[A-S MEDICATION]", "(Bryant Ranch)"), pharmacy-claims truncations ("OXYCOD/APAP"), odd
spacing and case ("NORCO10/325"), misspellings, and patient free text ("kratom tea daily"). The not-opioid list is
weighted towards look-alikes that a fragment or fuzzy matcher could confuse (oxybutynin, hydroxyzine,
methocarbamol, trazodone, fenofibrate, ipratropium, cod liver oil, Percogesic, Nurofen vs Nurofen Plus, ...).
It was built independently of the implementation in patients/opioids; do not tune the corpus to the matcher's
output, only correct an entry when it is wrong against domain.md or the product's real ingredients.

Run with `-s` to see the recall / false-positive summary; it is also written to var/opioid_corpus_report.json.
"""

import json
from pathlib import Path

import pytest

from patients.opioids import match

from .opioid_corpus import CAUTION_NAMES, CONFLICT_NAMES, NOT_OPIOID_NAMES

REPORT_PATH = Path(__file__).resolve().parents[2] / "var" / "opioid_corpus_report.json"


def _describe(result):
    return f"klass={result.klass!r} ingredients={tuple(result.ingredients)!r} evidence={tuple(result.evidence)!r}"


def _class_ok(expected, klass):
    if expected == "caution_or_conflict":
        return klass in ("caution", "conflict")
    return klass == expected


@pytest.mark.parametrize(("name", "expected_ingredients"), CONFLICT_NAMES, ids=[n for n, _ in CONFLICT_NAMES])
def test_opi1_opi3_conflict_corpus(name, expected_ingredients):
    """OPI-1/OPI-3: every opioid-containing product is CONFLICT and names its opioid ingredient(s)."""
    result = match(name)
    assert result.klass == "conflict", f"{name!r}: expected conflict, got {_describe(result)}"
    missing = set(expected_ingredients) - set(result.ingredients)
    assert not missing, f"{name!r}: missing opioid ingredient(s) {sorted(missing)}; got {_describe(result)}"


@pytest.mark.parametrize(("name", "expected_class"), CAUTION_NAMES, ids=[n for n, _ in CAUTION_NAMES])
def test_opi2_caution_antagonist_context_corpus(name, expected_class):
    """2.3 CAUTION / antagonist / OPIOID_CONTEXT rows, and OPI-2 'possible opioid, verify' for misspellings."""
    result = match(name)
    assert _class_ok(expected_class, result.klass), f"{name!r}: expected {expected_class}, got {_describe(result)}"


@pytest.mark.parametrize("name", NOT_OPIOID_NAMES, ids=NOT_OPIOID_NAMES)
def test_opi2_not_opioid_corpus(name):
    """OPI-2: look-alikes and everyday medicines raise no opioid alert of any kind."""
    result = match(name)
    assert result.klass not in ("conflict", "caution"), f"{name!r}: false opioid alert, got {_describe(result)}"
    assert result.klass == "none", f"{name!r}: expected none, got {_describe(result)}"


def _safe_match(name):
    try:
        result = match(name)
    except Exception as exc:  # record, so one crash does not hide the rest of the score
        return {"klass": f"error: {type(exc).__name__}: {exc}", "ingredients": []}
    return {"klass": result.klass, "ingredients": sorted(result.ingredients)}


def test_corpus_recall_and_false_positive_rate():
    """Summary score: recall over CONFLICT_NAMES, false-positive rate over NOT_OPIOID_NAMES."""
    misses = []
    for name, expected in CONFLICT_NAMES:
        got = _safe_match(name)
        if got["klass"] != "conflict" or not set(expected) <= set(got["ingredients"]):
            misses.append({"name": name, "expected": sorted(expected), **got})

    false_positives = []
    for name in NOT_OPIOID_NAMES:
        got = _safe_match(name)
        if got["klass"] != "none":
            false_positives.append({"name": name, **got})

    caution_mismatches = []
    for name, expected in CAUTION_NAMES:
        got = _safe_match(name)
        if not _class_ok(expected, got["klass"]):
            caution_mismatches.append({"name": name, "expected": expected, **got})

    n_conflict, n_not, n_caution = len(CONFLICT_NAMES), len(NOT_OPIOID_NAMES), len(CAUTION_NAMES)
    report = {
        "conflict": {
            "total": n_conflict,
            "hits": n_conflict - len(misses),
            "recall": round((n_conflict - len(misses)) / n_conflict, 4),
            "misses": misses,
        },
        "not_opioid": {
            "total": n_not,
            "false_positives": len(false_positives),
            "false_positive_rate": round(len(false_positives) / n_not, 4),
            "flagged": false_positives,
        },
        "caution_antagonist_context": {
            "total": n_caution,
            "correct": n_caution - len(caution_mismatches),
            "accuracy": round((n_caution - len(caution_mismatches)) / n_caution, 4),
            "mismatches": caution_mismatches,
        },
    }
    REPORT_PATH.parent.mkdir(parents=True, exist_ok=True)
    REPORT_PATH.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    print(
        f"\nopioid corpus: recall {report['conflict']['recall']:.4f} "
        f"({report['conflict']['hits']}/{n_conflict}); "
        f"false positives {len(false_positives)}/{n_not} (rate {report['not_opioid']['false_positive_rate']:.4f}); "
        f"caution/antagonist/context accuracy {report['caution_antagonist_context']['accuracy']:.4f} "
        f"({report['caution_antagonist_context']['correct']}/{n_caution}); report: {REPORT_PATH}"
    )
    for row in misses:
        print(f"  MISS {row['name']!r}: {row['klass']} {row['ingredients']}")
    for row in false_positives:
        print(f"  FALSE POSITIVE {row['name']!r}: {row['klass']} {row['ingredients']}")
    for row in caution_mismatches:
        print(f"  CAUTION-LIST MISMATCH {row['name']!r}: expected {row['expected']}, got {row['klass']}")

    assert report["conflict"]["recall"] == 1.0, f"{len(misses)} conflict names missed; see {REPORT_PATH}"
    assert len(false_positives) == 0, f"{len(false_positives)} not-opioid names flagged; see {REPORT_PATH}"
