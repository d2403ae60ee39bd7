"""Result tables as CSV, JSON or Parquet: ISO dates, nulls as empty / null, nothing else.

The CLI renders ``table`` itself (it owns the printing library); every other format is
produced here so that library users get byte-identical files.
"""
from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import pandas as pd

FORMATS = ("table", "csv", "json", "parquet")


def _cell(v):
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if v is pd.NaT or v is pd.NA:
        return None
    if isinstance(v, pd.Timestamp | dt.datetime):
        return v.date().isoformat() if v == v.normalize() else v.isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    return v


def records(df: pd.DataFrame) -> list[dict]:
    """Rows as plain dicts: ISO date strings, None for missing values."""
    cols = list(df.columns)
    return [{c: _cell(v) for c, v in zip(cols, row, strict=True)}
            for row in df.itertuples(index=False, name=None)]


def to_csv(df: pd.DataFrame) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(df.columns)
    for r in records(df):
        w.writerow(["" if v is None else ("true" if v is True else "false" if v is False else v)
                    for v in r.values()])
    return buf.getvalue()


def to_json(df: pd.DataFrame) -> str:
    return json.dumps(records(df), indent=2, ensure_ascii=False) + "\n"


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Parquet with dates as DATE (not timestamps)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    fields = []
    for f in table.schema:
        fields.append(pa.field(f.name, pa.date32()) if pa.types.is_timestamp(f.type) else f)
    pq.write_table(table.cast(pa.schema(fields)), path)


def text(df: pd.DataFrame, fmt: str) -> str:
    """CSV or JSON text of ``df``."""
    if fmt == "csv":
        return to_csv(df)
    if fmt == "json":
        return to_json(df)
    raise ValueError(fmt)
