"""CTCAE v5.0 grade bands for the four CBC lineages, and values picked safely inside them.

Thresholds: CODES.md §5.1 (CTCAE v5.0). Grade 0 means value >= LLN, grade 1 LLN > value >= the
grade-2 limit, and so on; the LLN is the observation's own ``referenceRange.low``.

Anaemia grade 4 cannot be graded from a lab value under v5 ("life-threatening consequences").
The paper (1995-2009) used the CTC versions in force then, whose grade 4 is Hgb < 6.5 g/dL
(CODES.md §5.3, CTC v2.0/v3.0). The generator therefore writes Hgb < 6.5 g/dL plus a same-day
red-cell transfusion for the two anaemia-grade-4 time points of the paper (patient 14 at BMC,
patient 19 after treatment) and keeps every grade-3 value in 6.7-7.7 g/dL, so that "grade 4 =
v5 grade 3 and Hgb < 6.5 g/dL" recovers Table II / timeline.csv exactly.

Values are canonical: Hgb g/dL, counts 10^9/L (= 10*3/uL). :func:`pick` keeps a margin of at
least 0.3 g/dL / 4 x 10^9/L platelets / 0.2 x 10^9/L leukocytes from every boundary, and grade-0
and grade-1 leukocyte values stay clear of both common LLNs (4.0 and 4.5), so a grader using the
default table (CODES.md §4.3) for a range-less lab gets the same grade.
"""
from __future__ import annotations

import random

ANEMIA_G4_CTC_V3 = 6.5  # g/dL, CODES.md §5.3 (CTC v2.0/v3.0 grade 4)

# Default LLNs (CODES.md §4.3) used where a lab reports no range, and for picking grade-0 values.
HGB_LLN = {"F": 12.0, "M": 13.5}
PLT_LLN = 150.0
WBC_LLN_DEFAULT = 4.5
ANC_LLN = 1.8


def anemia_grade(hgb_gdl: float, lln: float) -> int:
    """CTCAE v5 anaemia grade from Hgb in g/dL, extended with CTC v3 grade 4 (< 6.5 g/dL)."""
    if hgb_gdl >= lln:
        return 0
    if hgb_gdl >= 10.0:
        return 1
    if hgb_gdl >= 8.0:
        return 2
    return 4 if hgb_gdl < ANEMIA_G4_CTC_V3 else 3


def platelet_grade(plt: float, lln: float = PLT_LLN) -> int:
    """CTCAE v5 'Platelet count decreased' from platelets in 10^9/L."""
    if plt >= lln:
        return 0
    if plt >= 75.0:
        return 1
    if plt >= 50.0:
        return 2
    return 3 if plt >= 25.0 else 4


def wbc_grade(wbc: float, lln: float) -> int:
    """CTCAE v5 'White blood cell decreased' from leukocytes in 10^9/L."""
    if wbc >= lln:
        return 0
    if wbc >= 3.0:
        return 1
    if wbc >= 2.0:
        return 2
    return 3 if wbc >= 1.0 else 4


def anc_grade(anc: float, lln: float = ANC_LLN) -> int:
    """CTCAE v5 'Neutrophil count decreased' from neutrophils in 10^9/L."""
    if anc >= lln:
        return 0
    if anc >= 1.5:
        return 1
    if anc >= 1.0:
        return 2
    return 3 if anc >= 0.5 else 4


def _u(rng: random.Random, lo: float, hi: float, nd: int) -> float:
    return round(rng.uniform(lo, hi), nd)


def pick_hgb(rng: random.Random, grade: int, lln: float) -> float:
    """Hgb (g/dL, 1 decimal) inside the anaemia grade band."""
    lo, hi = {
        0: (lln + 0.4, lln + 2.6), 1: (10.3, lln - 0.3), 2: (8.3, 9.7),
        3: (6.7, 7.7), 4: (5.6, 6.2),
    }[grade]
    return _u(rng, lo, hi, 1)


def pick_plt(rng: random.Random, grade: int) -> float:
    """Platelets (10^9/L, integer) inside the band."""
    lo, hi = {0: (172, 340), 1: (86, 138), 2: (55, 70), 3: (30, 45), 4: (7, 20)}[grade]
    return float(rng.randint(lo, hi))


def pick_wbc(rng: random.Random, grade: int) -> float:
    """Leukocytes (10^9/L, 1 decimal) inside the band, for LLN 4.0 and 4.5 alike."""
    lo, hi = {0: (4.9, 8.9), 1: (3.2, 3.8), 2: (2.2, 2.8), 3: (1.2, 1.8), 4: (0.3, 0.8)}[grade]
    return _u(rng, lo, hi, 1)
