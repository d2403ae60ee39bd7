"""Evaluate one ViewDefinition over FHIR files with no database file (``bmc view``).

The files go through the same loader as ``bmc load`` (same parsing, versions and reference
resolution), into an in-memory DuckDB that holds only this view's table. Unlike ``bmc load``,
a resource without an id is evaluated too (its ``id`` stays empty): a ViewDefinition runs over
every resource it is given, as the SQL-on-FHIR suite's ``fn_first`` cases expect.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

import duckdb

from .errors import ViewDefinitionError
from .load import LoadOptions, load
from .sql import quote_ident


def run_view(view: dict, inputs: Sequence[str | Path]) -> tuple[list[str], list[tuple]]:
    """(column names, rows in load order) of ``view`` over ``inputs``."""
    from .viewdef.compiler import compile_view

    if not isinstance(view, dict):
        raise ViewDefinitionError("a ViewDefinition must be a JSON object")
    compiled = compile_view(view)
    name = compiled.name or "view"
    if compiled.name is None:
        compiled = type(compiled)(**{**compiled.__dict__, "name": name}) \
            if hasattr(compiled, "__dict__") else compiled
    con = duckdb.connect(":memory:")
    try:
        # every resource given is evaluated, with or without an id (only bmc load needs ids)
        load(con, inputs, LoadOptions(memory_limit=None, ids_required=False), views=[compiled])
        cols = [c.name for c in compiled.columns]
        rows = con.execute(
            f"SELECT {', '.join(quote_ident(c) for c in cols)} FROM {quote_ident(name)} "
            f"ORDER BY _rid").fetchall()
        return cols, rows
    finally:
        con.close()


def _plain(v):
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def format_rows(cols: list[str], rows: list[tuple], fmt: str) -> str:
    """Rows as CSV (header first), one JSON array of objects, or NDJSON, columns in view order."""
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            w.writerow([json.dumps(_plain(x)) if isinstance(x, (list, dict)) else
                        ("" if x is None else _plain(x)) for x in r])
        return buf.getvalue()
    objs = [dict(zip(cols, (_plain(x) for x in r), strict=True)) for r in rows]
    if fmt == "json":
        return json.dumps(objs, indent=2, ensure_ascii=False) + "\n"
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs)


def run_view_file(view_file: Path, inputs: Sequence[str | Path], fmt: str) -> str:
    try:
        view = json.loads(Path(view_file).read_text())
    except json.JSONDecodeError as e:
        raise ViewDefinitionError(f"{view_file}: not valid JSON (line {e.lineno}, column {e.colno})") from None
    try:
        cols, rows = run_view(view, inputs)
    except ViewDefinitionError as e:
        raise ViewDefinitionError(f"{view_file}: {e}") from None
    return format_rows(cols, rows, fmt)
