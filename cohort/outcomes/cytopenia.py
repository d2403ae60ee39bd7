"""Blood counts grouped into draws (CBC time points), with the cohort's grades.

Values, LLNs and CTCAE grades are the cohort's (``bmc_lab`` / ``bmc_lab_grade``, read by
:mod:`.records`): one grading serves the cohort, the screen and the report. What is specific
to the outcomes is the draw: the results of one blood sample side by side.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

LINEAGES = {"hgb": "anaemia", "plt": "thrombocytopenia", "wbc": "leukopenia", "anc": "neutropenia"}


def draws(blood_counts: pd.DataFrame) -> pd.DataFrame:
    """One row per blood draw (patient and timestamp) with values and grades per analyte.

    ``blood_counts`` has one row per value: patient_key, taken_at, day, analyte, value and
    grade (NULL for nRBC). Columns: patient_key, taken_at, day, hgb, plt, wbc, anc, nrbc (per
    100 WBC), g_hgb, g_plt, g_wbc, g_anc (nullable ints; the worst grade when an analyte was
    measured twice) and ``cbc`` (True when Hgb, platelets and leukocytes were all measured,
    DEFINITIONS.md "CBC"). Sorted by patient and time.
    """
    cols = ["patient_key", "taken_at", "day", "hgb", "plt", "wbc", "anc", "nrbc",
            "g_hgb", "g_plt", "g_wbc", "g_anc", "cbc"]
    if blood_counts.empty:
        return pd.DataFrame(columns=cols)
    bc = blood_counts.copy()
    bc["grade"] = pd.to_numeric(bc["grade"])
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
