"""Table I (at primary diagnosis) and Table II (at BMC diagnosis), one row per patient, and the
summary figures the paper's text gives about them.

Table I: age in completed years at the first breast-cancer Condition's onset; sex from
Patient.gender; histology from the mCODE morphology extension (else a histology-specific
condition code); grade, ER, PR, HER2 and stage from the earliest Observation of each kind
(coded answer first, then the text, e.g. 'G2-3').

Table II: interval = (index date - primary diagnosis) in months of 30.4375 days; prior regimens
= regimen episodes begun before the index date (:mod:`.treatment`); BMC diagnosed by histology
when a marrow pathology report with a carcinoma conclusion is dated from 90 days before to 30
days after the index date, else by peripheral blood smear; normoblasts and CTCAE grades from the
index CBC (the last CBC on or before the index date, at most 7 days before); metastatic sites =
secondary-cancer Conditions with onset on or before the index date (bone marrow and lymph nodes
not listed, as in the paper).
"""
from __future__ import annotations

import re
from datetime import date, timedelta

import numpy as np
import pandas as pd

from .survival import MONTH_DAYS

SITE_ORDER = ("bone", "liver", "brain", "skin", "lung", "pleura")
HISTOLOGY_TEXT = {"ductal": "invasive ductal", "lobular": "invasive lobular"}
STAGE_RE = re.compile(r"\b(IV|III[ABC]?|II[AB]?|I[AB]?|0)\b")
GRADE_RE = re.compile(r"([1-3](?:\s*-\s*[1-3])?)")
INDEX_CBC_LOOKBACK_DAYS = 7


def age_years(birth: date | None, on: date | None) -> int | None:
    if birth is None or on is None or pd.isna(birth) or pd.isna(on):
        return None
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def months_between(start: date | None, end: date | None) -> float | None:
    if start is None or end is None or pd.isna(start) or pd.isna(end):
        return None
    return (end - start).days / MONTH_DAYS


def index_draw(draws: pd.DataFrame, index_date: date):
    """The index CBC: last CBC on or before the index date, at most 7 days before (or None)."""
    c = draws[draws["cbc"] & (draws["day"] <= index_date)
              & (draws["day"] >= index_date - timedelta(days=INDEX_CBC_LOOKBACK_DAYS))]
    return c.iloc[-1] if len(c) else None


def _earliest(facts: pd.DataFrame, fact: str) -> pd.Series | None:
    f = facts[facts["fact"] == fact].sort_values("day", na_position="last")
    return f.iloc[0] if len(f) else None


def _grade(row) -> str | None:
    if row is None:
        return None
    if isinstance(row["coded_value"], str):
        return row["coded_value"]
    m = GRADE_RE.search(str(row["value_text"] or ""))
    return m.group(1).replace(" ", "") if m else None


def _stage(row) -> str | None:
    if row is None:
        return None
    if isinstance(row["coded_value"], str):
        return row["coded_value"]
    m = STAGE_RE.search(str(row["value_text"] or "").upper().replace("STAGE", " "))
    return m.group(1) if m else None


def _text(x) -> str | None:
    return x if isinstance(x, str) and x else None


def primary_facts(patient: pd.Series, cancers: pd.DataFrame, facts: pd.DataFrame) -> dict:
    """Table I of one patient (values as printed in the paper, None = not available)."""
    c = cancers.sort_values("onset_date", na_position="last")
    onsets = [x for x in c["onset_date"] if x is not None and not pd.isna(x)]
    primary = min(onsets) if onsets else None
    morph = c["histology_from_morphology"].dropna()
    coded = c["histology_from_code"].dropna()
    hist = morph.iloc[0] if len(morph) else (coded.iloc[0] if len(coded) else None)
    birth = patient["birth_date"]
    birth = None if birth is None or pd.isna(birth) else pd.Timestamp(birth).date()
    marker = {m: _text(r["coded_value"]) if (r := _earliest(facts, m)) is not None else None
              for m in ("er", "pr", "her2")}
    return {
        "primary_date": primary,
        "age_years": age_years(birth, primary),
        "sex": {"female": "F", "male": "M"}.get(patient["gender"]),
        "histology": HISTOLOGY_TEXT.get(hist) if hist is not None else None,
        "grade": _grade(_earliest(facts, "grade")),
        **marker,
        "stage": _stage(_earliest(facts, "stage")),
    }


def bmc_facts(index_date: date, primary_date: date | None, draw, reports: pd.DataFrame,
              metastases: pd.DataFrame) -> dict:
    """Table II of one patient, except prior regimens (from :mod:`.treatment`)."""
    histology = bool(_between(reports["day"], index_date - timedelta(days=90),
                              index_date + timedelta(days=30)).any())
    sites = set(metastases.loc[_between(metastases["onset_date"], None, index_date), "site"])
    listed = [s for s in SITE_ORDER if s in sites] + sorted(
        sites - set(SITE_ORDER) - {"marrow", "lymph node"})

    def g(lin: str) -> int | None:
        if draw is None or pd.isna(draw[f"g_{lin}"]):
            return None
        return int(draw[f"g_{lin}"])

    nrbc = None if draw is None or pd.isna(draw["nrbc"]) else float(draw["nrbc"])
    return {
        "interval_months": months_between(primary_date, index_date),
        "bmc_diagnosis": "histology" if histology else "peripheral blood smear",
        "normoblasts_per_100_wbc": nrbc,
        "leukopenia_ctc_grade": g("wbc"),
        "anemia_ctc_grade": g("hgb"),
        "thrombopenia_ctc_grade": g("plt"),
        "metastatic_sites": ";".join(listed) if listed else None,
    }


def _between(s: pd.Series, lo: date | None, hi: date | None) -> pd.Series:
    return s.map(lambda x: x is not None and not pd.isna(x)
                 and (lo is None or x >= lo) and (hi is None or x <= hi)).astype(bool)


def _counts(s: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in s.fillna("NA").value_counts().sort_index().items()}


def table_i_summary(t1: pd.DataFrame) -> dict:
    """The summary figures of Table I (median age and range, counts by category)."""
    age = t1["age_years"].dropna().astype(float)
    er, pr, her2 = t1["er"], t1["pr"], t1["her2"]
    return {
        "n": len(t1),
        "age_median": float(age.median()) if len(age) else None,
        "age_min": float(age.min()) if len(age) else None,
        "age_max": float(age.max()) if len(age) else None,
        "sex": _counts(t1["sex"]),
        "histology": _counts(t1["histology"]),
        "grade": _counts(t1["grade"]),
        "er_positive": int((er == "pos").sum()), "pr_positive": int((pr == "pos").sum()),
        "hormone_receptor_positive": int(((er == "pos") | (pr == "pos")).sum()),
        "her2": _counts(her2),
        "triple_negative": int(((er == "neg") & (pr == "neg") & (her2 == "neg")).sum()),
        "er_pr_negative_her2_unknown": int(((er == "neg") & (pr == "neg") & her2.isna()).sum()),
        "stage": _counts(t1["stage"]),
        "stage_iv": int((t1["stage"] == "IV").sum()),
    }


def table_ii_summary(t2: pd.DataFrame) -> dict:
    """The summary figures of Table II (cytopenias, sites, interval, diagnostic route)."""
    def n(mask) -> int:
        return int(mask.fillna(False).sum())

    a, p, w = t2["anemia_ctc_grade"], t2["thrombopenia_ctc_grade"], t2["leukopenia_ctc_grade"]
    sites = t2["metastatic_sites"].fillna("")
    iv = np.sort(t2["interval_months"].dropna().to_numpy(dtype=float))
    nb = t2["normoblasts_per_100_wbc"].dropna().astype(float)
    return {
        "n": len(t2),
        "anemia_any": n(a >= 1), "anemia_g2": n(a >= 2), "anemia_g3": n(a >= 3),
        "thrombocytopenia_any": n(p >= 1), "thrombocytopenia_g3": n(p >= 3),
        "leukopenia_any": n(w >= 1), "leukopenia_g3": n(w >= 3),
        "any_cytopenia": n((a >= 1) | (p >= 1) | (w >= 1)),
        "bone": int(sites.str.contains("bone").sum()),
        "liver": int(sites.str.contains("liver").sum()),
        "brain": int(sites.str.contains("brain").sum()),
        "skin": int(sites.str.contains("skin").sum()),
        "interval_median": float(np.median(iv)) if len(iv) else None,
        "interval_lower_median": float(iv[(len(iv) - 1) // 2]) if len(iv) else None,
        "interval_min": float(iv.min()) if len(iv) else None,
        "interval_max": float(iv.max()) if len(iv) else None,
        "by_histology": int((t2["bmc_diagnosis"] == "histology").sum()),
        "by_smear": int((t2["bmc_diagnosis"] == "peripheral blood smear").sum()),
        "normoblasts_median": float(nb.median()) if len(nb) else None,
        "normoblasts_max": float(nb.max()) if len(nb) else None,
        "prior_regimens_median": (float(t2["prior_regimens"].dropna().median())
                                  if t2["prior_regimens"].notna().any() else None),
    }


def inclusion_rule_met(t2: pd.DataFrame) -> pd.Series:
    """The paper's rule per patient: histology, or a smear with normoblasts > 0 and cytopenia of
    CTC grade >= 1 in at least one lineage."""
    cyto = (t2[["anemia_ctc_grade", "thrombopenia_ctc_grade", "leukopenia_ctc_grade"]]
            .fillna(0).max(axis=1) >= 1)
    smear = t2["normoblasts_per_100_wbc"].fillna(0) > 0
    return (t2["bmc_diagnosis"] == "histology") | (smear & cyto)
