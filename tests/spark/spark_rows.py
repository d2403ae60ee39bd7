"""Rows of both engines in one comparable form: floats rounded, dates as ISO text, lists as
tuples, sorted. Text is compared exactly: every ``string_agg`` in queries/ has an ORDER BY."""
from __future__ import annotations

import datetime as dt
import math

import pandas as pd


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


def canonical(df: pd.DataFrame) -> list[tuple]:
    return sorted((tuple(_cell(v) for v in rec) for rec in df.itertuples(index=False)),
                  key=repr)
