"""The protocol templates of domain.md 1.2, as plain data (loaded by a data migration)."""

from decimal import Decimal

D = Decimal

PROTOCOLS = [
    {
        "key": "STD_1_5",
        "name": "Standard: 1.5 → 3.0 → 4.5 mg",
        "source": "domain.md 1.2 [S10]",
        "description": "Three steps, 7–14 days each.",
        "steps": [(D("1.5"), 7), (D("3.0"), 7), (D("4.5"), 7)],
    },
    {
        "key": "SLOW_0_5",
        "name": "Slow: 0.5 mg steps to 4.5 mg",
        "source": "domain.md 1.2 [S8]",
        "description": "Start at 0.5 mg, add 0.5 mg weekly; find the lowest effective dose, back down if worse.",
        "steps": [(D("0.5") * n, 7) for n in range(1, 10)],
    },
    {
        "key": "TRIAL_1_0",
        "name": "Trial start: 1.0 → 2.0 → 3.0 → 4.5 mg",
        "source": "domain.md 1.2 [GIVEN][POLICY]",
        "description": "Many studies start at 1 mg.",
        "steps": [(D("1.0"), 7), (D("2.0"), 7), (D("3.0"), 7), (D("4.5"), 7)],
    },
    {
        "key": "FIXED_4_5",
        "name": "Fixed 4.5 mg from day 1",
        "source": "domain.md 1.2 [S1-S6]",
        "description": "No titration: 4.5 mg nightly (Crohn's, MS and fibromyalgia trials).",
        "steps": [(D("4.5"), 7)],
    },
    {
        "key": "THYROID_0_25",
        "name": "Thyroid: from 0.25 mg, weekly to 4.5 mg",
        "source": "domain.md 1.2 [S10]",
        "description": "Hashimoto's: 0.25 mg, +0.25–0.5 mg weekly to 1.5–3 mg, then 4.5 mg.",
        "steps": [
            (D("0.25"), 7),
            (D("0.5"), 7),
            (D("0.75"), 7),
            (D("1.0"), 7),
            (D("1.5"), 7),
            (D("2.0"), 7),
            (D("3.0"), 7),
            (D("4.5"), 7),
        ],
    },
]
