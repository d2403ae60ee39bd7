"""Rows of both engines in one comparable form: floats rounded, dates as ISO text, lists as
tuples, sorted; the few ``string_agg(DISTINCT ...)`` text columns as sorted words."""
from __future__ import annotations

import datetime as dt
import math
import re

import pandas as pd

# string_agg(DISTINCT ...) without ORDER BY has no defined order in either engine (Spark's
# translation sorts): these columns are compared as the multiset of their words.
UNORDERED_TEXT = {
    ("bmc_histology", "code"), ("bmc_histology", "evidence_types"),
    ("bmc_patient_rule", "alt_causes"), ("bmc_evidence", "code"),
    ("bmc_screen_cytopenia", "bone_codes"), ("bmc_screen", "reasons"),
}


def _cell(v):
    if v is None or v is pd.NaT or v is pd.NA:
        return None
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 9)
    if isinstance(v, pd.Timestamp | dt.datetime):
        return v.date().isoformat() if v == v.normalize() else v.isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if hasattr(v, "tolist"):  # numpy arrays and scalars
        v = v.tolist()
    if isinstance(v, list | tuple):
        return tuple(_cell(x) for x in v)
    return v


def canonical(df: pd.DataFrame, table: str) -> list[tuple]:
    rows = []
    for rec in df.itertuples(index=False):
        row = []
        for col, v in zip(df.columns, rec, strict=True):
            v = _cell(v)
            if (table, col) in UNORDERED_TEXT and isinstance(v, str):
                v = " ".join(sorted(re.findall(r"[^\s,;()]+", v)))
            row.append(v)
        rows.append(tuple(row))
    return sorted(rows, key=repr)
