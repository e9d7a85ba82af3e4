"""Benchmark: opioid matcher throughput on one core (issue goal: >= 10,000 names a second).

Runs the matcher over the evaluation corpus with a distinct suffix per round (so no whole-name cache
helps), and, in the same run, a baseline that only tokenizes the same names, so the ratio shows what
matching costs over reading the string on this machine today. Not a test: `make bench` runs it.
"""

import json
import sys
import time

from patients.opioids import load_catalog, tokenize
from tests.patients.opioid_corpus import CAUTION_NAMES, CONFLICT_NAMES, NOT_OPIOID_NAMES

GOAL_PER_SECOND = 10_000


def names(rounds: int) -> list[str]:
    base = [n for n, _ in CONFLICT_NAMES] + [n for n, _ in CAUTION_NAMES] + list(NOT_OPIOID_NAMES)
    return [f"{name} {round_}" for round_ in range(rounds) for name in base]


def rate(function, items) -> float:
    start = time.perf_counter()
    for item in items:
        function(item)
    return len(items) / (time.perf_counter() - start)


def main() -> int:
    catalog = load_catalog()
    items = names(30)
    rate(catalog.match, items[:2000])  # warm-up: imports, first fuzzy lookups
    baseline = max(rate(tokenize, items) for _ in range(3))
    matcher = max(rate(catalog.match, items) for _ in range(3))
    result = {
        "benchmark": "opioid_matcher",
        "names": len(items),
        "matcher_names_per_second": round(matcher),
        "baseline_tokenize_per_second": round(baseline),
        "matcher_to_baseline_ratio": round(matcher / baseline, 3),
        "goal_names_per_second": GOAL_PER_SECOND,
        "meets_goal": matcher >= GOAL_PER_SECOND,
    }
    print(json.dumps(result))
    return 0 if result["meets_goal"] else 1


if __name__ == "__main__":
    sys.exit(main())
