"""Result tables as CSV, JSON, Parquet or text for a terminal: ISO dates, nulls as empty /
null, nothing else.

Every format is produced here so that library users get byte-identical output; the CLI only
chooses the width of ``table`` text (the terminal's, ``COLUMNS``, or 80 in a pipe).
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


def to_table(df: pd.DataFrame, width: int, title: str) -> str:
    """``df`` as text for a reader at ``width`` terminal cells (:mod:`cohort.text_table`):
    ids whole and long text wrapped inside its column; when the columns cannot all fit, one
    block per row (``column  value`` lines) rather than hiding any; ``title: no rows`` for an
    empty table."""
    from .text_table import TextTable, cell_text, records_text

    if df.empty:
        return f"{title}: no rows\n"
    numeric = frozenset(i for i, c in enumerate(df.columns)
                        if pd.api.types.is_numeric_dtype(df[c])
                        and not pd.api.types.is_bool_dtype(df[c]))
    rows = [[cell_text(v) for v in r.values()] for r in records(df)]
    header = [str(c) for c in df.columns]
    table = TextTable(header, rows, width, numeric)
    return records_text(header, rows, width, title) if table.dropped else table.render(title)


def text(df: pd.DataFrame, fmt: str) -> str:
    """CSV or JSON text of ``df``."""
    if fmt == "csv":
        return to_csv(df)
    if fmt == "json":
        return to_json(df)
    raise ValueError(fmt)


def file_sha256(path: Path, block: int = 1 << 20) -> str:
    """The sha256 of a file's bytes, read in blocks (databases can be large)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()


def describe_inputs(paths: list) -> list[dict]:
    """Each input file (folders: each file in them) with its size and sha256, so a scheduler
    can tell which data a run read; a path that cannot be read is listed with the reason.
    Items that are already described (dicts, e.g. the loader's own sha256) pass as they are."""
    out: list[dict] = []
    seen: set[str] = set()
    for name in paths:
        if isinstance(name, dict):
            out.append(name)
            continue
        p = Path(name)
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            key = str(f)
            if key in seen:
                continue
            seen.add(key)
            try:
                out.append({"path": key, "bytes": f.stat().st_size, "sha256": file_sha256(f)})
            except OSError as e:
                out.append({"path": key, "bytes": None, "sha256": None,
                            "unreadable": e.strerror or type(e).__name__})
    return out


def summary_document(run: dict, exit_code: int, finished: float) -> dict:
    """The JSON a batch scheduler reads after a ``bmc`` run (``--summary FILE``): what ran,
    how it ended, what it counted, how long it took and which inputs (with sha256) it read.
    ``run`` is what the command recorded; nothing in it comes from inside the data files."""
    return {
        "format": "bmc-cohort run summary 1",
        "command": run.get("command"),
        "arguments": run.get("arguments", []),
        "exit_code": exit_code,
        "ok": exit_code == 0,
        "error": run.get("error"),
        "started": dt.datetime.fromtimestamp(run["started"], dt.UTC).isoformat(),
        "seconds": round(finished - run["started"], 3),
        "counts": run.get("counts", {}),
        "rejected_by_reason": run.get("rejected_by_reason", {}),
        "timings": run.get("timings", {}),
        "inputs": describe_inputs(run.get("inputs", [])),
        "outputs": run.get("outputs", []),
    }
