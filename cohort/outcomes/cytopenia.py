"""CTCAE grades of blood counts, and blood counts grouped into draws (CBC time points).

Grades follow CTCAE v5.0 (thresholds read from ``queries/reference/ctcae_v5.csv``, CODES.md
§5.1): grade 0 when the value is at or above the LLN, otherwise one more than the number of
band limits (grade 1 lower limit, grade 2 lower limit, ...) it lies below. Anaemia grade 4 has
no laboratory definition in v5; the study years 1995-2009 used CTC v2.0/v3.0, whose grade 4 is
Hgb < 6.5 g/dL (CODES.md §5.3), so a v5 grade-3 Hgb below 6.5 g/dL is graded 4
(``cohort/synth/DEFINITIONS.md`` "Grading" uses the same rule).
"""
from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from ..paths import queries_dir

ANEMIA_G4_HGB = 6.5  # g/dL, CTC v2.0/v3.0 grade 4 (CODES.md §5.3)
LINEAGES = {"hgb": "anaemia", "plt": "thrombocytopenia", "wbc": "leukopenia", "anc": "neutropenia"}


@cache
def band_limits() -> dict[str, tuple[float, ...]]:
    """Per analyte, the lower limits of grades 1, 2, 3 (grade 4 has none): a value below the
    limit of grade g has grade > g."""
    df = pd.read_csv(queries_dir() / "reference" / "ctcae_v5.csv", dtype=str)
    out: dict[str, tuple[float, ...]] = {}
    for analyte, rows in df.groupby("analyte"):
        lows = rows.assign(g=rows["grade"].astype(int)).sort_values("g")
        out[str(analyte)] = tuple(float(x) for x in lows["low"].dropna())
    return out


def grade(analyte: str, value: float | None, lln: float | None) -> int | None:
    """CTCAE grade of one value (None when the value or the LLN is missing)."""
    if value is None or lln is None or pd.isna(value) or pd.isna(lln):
        return None
    if value >= lln:
        return 0
    g = 1 + sum(1 for limit in band_limits()[analyte] if value < limit)
    if analyte == "hgb" and g == 3 and value < ANEMIA_G4_HGB:
        return 4
    return g


def draws(blood_counts: pd.DataFrame) -> pd.DataFrame:
    """One row per blood draw (patient and timestamp) with values and grades per analyte.

    Columns: patient_key, taken_at, day, hgb, plt, wbc, anc, nrbc (per 100 WBC), g_hgb, g_plt,
    g_wbc, g_anc (nullable ints) and ``cbc`` (True when Hgb, platelets and leukocytes were all
    measured, DEFINITIONS.md "CBC"). Sorted by patient and time.
    """
    cols = ["patient_key", "taken_at", "day", "hgb", "plt", "wbc", "anc", "nrbc",
            "g_hgb", "g_plt", "g_wbc", "g_anc", "cbc"]
    if blood_counts.empty:
        return pd.DataFrame(columns=cols)
    bc = blood_counts.copy()
    bc["grade"] = [grade(a, v, ll) if a in LINEAGES else None
                   for a, v, ll in zip(bc["analyte"], bc["value"], bc["lln"], strict=True)]
    key = ["patient_key", "taken_at", "day"]
    vals = bc.pivot_table(index=key, columns="analyte", values="value", aggfunc="first")
    grades = bc[bc["analyte"].isin(list(LINEAGES))].pivot_table(
        index=key, columns="analyte", values="grade", aggfunc="max")
    out = vals.join(grades.add_prefix("g_"), how="left").reset_index()
    for c in ("hgb", "plt", "wbc", "anc", "nrbc_ratio"):
        if c not in out:
            out[c] = np.nan
    out = out.rename(columns={"nrbc_ratio": "nrbc"})
    for c in ("g_hgb", "g_plt", "g_wbc", "g_anc"):
        out[c] = (out[c] if c in out else pd.Series(np.nan, index=out.index)).astype("Int64")
    out["cbc"] = out[["hgb", "plt", "wbc"]].notna().all(axis=1)
    out["day"] = pd.to_datetime(out["day"]).dt.date
    return out[cols].sort_values(["patient_key", "taken_at"]).reset_index(drop=True)
