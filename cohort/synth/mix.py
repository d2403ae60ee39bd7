"""How many patients of each role: the committed sample, and the scaled stream.

The sample is enriched (every role and every planted edge at least once, ~300 patients). The
stream uses institution proportions per 12,970 patients, so that ``stream_bulk(n=12_970)`` holds
exactly the paper's 22 BMC cases; other sizes scale every role by n / 12,970 (largest remainder).
The stream counts are a design assumption (the paper gives only the 22 and the 12,970).
"""
from __future__ import annotations

from collections.abc import Iterator

PAPER_INSTITUTION_SIZE = 12_970  # the brief: N = 12,970 reproduces the paper's institution

SAMPLE_MIX: dict[str, int] = {
    "bc_localized": 76,
    "bc_mets_no_marrow": 46,
    "bc_mets_chemo_cytopenia": 32,
    "bc_screen_tier2": 6,
    "bc_bmc_unrecognized": 8,
    "bc_alt_cause_mds": 4,
    "bc_alt_cause_hemolysis": 4,
    "bc_alt_cause_myelofibrosis": 4,
    "prostate_bmc": 4,
    "gastric_bmc": 3,
    "other_cancer": 24,
    "no_cancer": 40,
    "bc_smear_window_outside": 1,
    "bc_nrbc_entered_in_error": 1,
    "bc_smear_no_cytopenia": 2,
}

STREAM_MIX: dict[str, int] = {  # per 12,970 patients
    "bmc_paper": 22,
    "bc_bmc_unrecognized": 8,
    "bc_screen_tier2": 30,
    "bc_alt_cause_mds": 4,
    "bc_alt_cause_hemolysis": 4,
    "bc_alt_cause_myelofibrosis": 4,
    "prostate_bmc": 6,
    "gastric_bmc": 4,
    "bc_smear_window_outside": 2,
    "bc_nrbc_entered_in_error": 2,
    "bc_smear_no_cytopenia": 4,
    "bc_mets_chemo_cytopenia": 600,
    "bc_mets_no_marrow": 1400,
    "other_cancer": 900,
    "no_cancer": 1500,
    "bc_localized": 8480,
}
assert sum(STREAM_MIX.values()) == PAPER_INSTITUTION_SIZE


def quotas(n: int, mix: dict[str, int] = STREAM_MIX) -> dict[str, int]:
    """Role counts for ``n`` patients: proportional, rounded by largest remainder."""
    total = sum(mix.values())
    exact = {r: c * n / total for r, c in mix.items()}
    out = {r: int(x) for r, x in exact.items()}
    short = n - sum(out.values())
    for r in sorted(mix, key=lambda r: (-(exact[r] - out[r]), list(mix).index(r)))[:short]:
        out[r] += 1
    return out


def schedule(n: int, mix: dict[str, int] = STREAM_MIX) -> Iterator[str]:
    """The role of patient 0..n-1, spread evenly (smooth weighted round robin), O(roles) each."""
    q = quotas(n, mix)
    roles = [r for r in mix if q[r]]
    current = dict.fromkeys(roles, 0)
    for _ in range(n):
        for r in roles:
            current[r] += q[r]
        best = max(roles, key=lambda r: current[r])
        current[best] -= n
        yield best
