"""Reference data (``queries/reference/*.csv``) -> ``ref_*`` tables, checked on the way in.

Code lists, unit conversions, CTCAE thresholds and default ranges are data: a new code is a
new CSV line, never a code change. Each file has a fixed header and a key that must be unique
(after the same normalisation the queries apply), so a typo fails loudly with the file and
line instead of silently doubling rows in a join.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from .errors import ReferenceDataError
from .paths import queries_dir


@dataclass(frozen=True)
class RefFile:
    """One reference CSV: its table, typed columns and unique key."""

    file: str
    table: str
    columns: tuple[tuple[str, str], ...]  # (name, DOUBLE | INTEGER | BOOLEAN | VARCHAR)
    key: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [c for c, _ in self.columns]


REFERENCE_FILES: tuple[RefFile, ...] = (
    RefFile("valuesets.csv", "ref_valueset",
            (("valueset", "VARCHAR"), ("system", "VARCHAR"), ("code", "VARCHAR"),
             ("display", "VARCHAR"), ("match", "VARCHAR"), ("source", "VARCHAR"),
             ("confidence", "VARCHAR")),
            ("valueset", "system", "code")),
    RefFile("code_systems.csv", "ref_code_system",
            (("system", "VARCHAR"), ("strip_dots", "BOOLEAN"), ("source", "VARCHAR")),
            ("system",)),
    RefFile("lab_codes.csv", "ref_lab_code",
            (("analyte", "VARCHAR"), ("system", "VARCHAR"), ("code", "VARCHAR"),
             ("display", "VARCHAR"), ("source", "VARCHAR"), ("confidence", "VARCHAR")),
            ("system", "code")),
    RefFile("analytes.csv", "ref_analyte",
            (("analyte", "VARCHAR"), ("display", "VARCHAR"), ("canonical_unit", "VARCHAR"),
             ("lineage", "VARCHAR"), ("plausible_low", "DOUBLE"), ("plausible_high", "DOUBLE"),
             ("source", "VARCHAR")),
            ("analyte",)),
    RefFile("units.csv", "ref_unit",
            (("analyte", "VARCHAR"), ("unit", "VARCHAR"), ("canonical_unit", "VARCHAR"),
             ("factor", "DOUBLE"), ("source", "VARCHAR")),
            ("analyte", "unit")),
    RefFile("ctcae_v5.csv", "ref_ctcae",
            (("term", "VARCHAR"), ("meddra_code", "VARCHAR"), ("analyte", "VARCHAR"),
             ("grade", "INTEGER"), ("low", "DOUBLE"), ("high", "DOUBLE"),
             ("high_is_lln", "BOOLEAN"), ("unit", "VARCHAR"), ("source", "VARCHAR")),
            ("analyte", "grade")),
    RefFile("default_ranges.csv", "ref_default_range",
            (("analyte", "VARCHAR"), ("sex", "VARCHAR"), ("low", "DOUBLE"), ("high", "DOUBLE"),
             ("unit", "VARCHAR"), ("source", "VARCHAR")),
            ("analyte", "sex")),
)


def unit_key(unit: str) -> str:
    """How units are compared: no spaces, micro sign as 'u', case-folded.

    The same rule is written in ``queries/bmc/20_lab.sql``; case-folding is safe
    because units are only compared within one analyte (``G/L`` is giga-per-litre for counts,
    ``g/L`` grams for haemoglobin)."""
    return unit.strip().replace(" ", "").replace("µ", "u").replace("μ", "u").lower()


def code_key(system: str, code: str, dotted_systems: set[str]) -> str:
    """How codes are compared: ICD codes without dots, upper-case (CODES.md §0)."""
    return code.replace(".", "").upper() if system in dotted_systems else code


def _convert(value: str, kind: str, where: str):
    value = value.strip()
    if value == "":
        return None
    try:
        if kind == "DOUBLE":
            return float(value)
        if kind == "INTEGER":
            return int(value)
        if kind == "BOOLEAN":
            if value.lower() not in ("true", "false"):
                raise ValueError(value)
            return value.lower() == "true"
    except ValueError:
        raise ReferenceDataError(f"{where}: {value!r} is not a valid {kind.lower()}") from None
    return value


def read_reference(spec: RefFile, folder: Path | None = None) -> list[dict]:
    """The rows of one reference CSV, typed and checked (header, the number of fields on
    every line); :func:`check_keys` checks key uniqueness."""
    path = (folder or queries_dir() / "reference") / spec.file
    if not path.is_file():
        raise ReferenceDataError(f"{path}: reference file missing")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames != spec.names:
            raise ReferenceDataError(f"{path}: header must be {','.join(spec.names)}, "
                                     f"found {','.join(reader.fieldnames or [])}")
        rows = []
        for n, raw in enumerate(reader, start=2):
            where = f"{path} line {n}"
            if None in raw or any(raw[c] is None for c in spec.names):  # too many / too few
                raise ReferenceDataError(f"{where}: expected {len(spec.columns)} fields")
            rows.append({c: _convert(raw[c] or "", t, f"{where} column {c}")
                         for c, t in spec.columns})
    return rows


def check_keys(spec: RefFile, rows: list[dict], dotted_systems: set[str], path: str) -> None:
    """Fail on two rows with the same key after normalisation (they would double a join)."""
    seen: dict[tuple, int] = {}
    for n, row in enumerate(rows, start=2):
        key = []
        for k in spec.key:
            v = row[k] or ""
            if k == "unit":
                v = unit_key(v)
            elif k == "code" and "system" in row:
                v = code_key(row["system"] or "", v, dotted_systems)
            key.append(v)
        t = tuple(key)
        if t in seen:
            raise ReferenceDataError(f"{path} line {n}: duplicates line {seen[t]} "
                                     f"({', '.join(spec.key)} = {', '.join(map(str, t))})")
        seen[t] = n


def load_reference(con: duckdb.DuckDBPyConnection, folder: Path | None = None) -> dict[str, int]:
    """(Re)create every ``ref_*`` table from the CSVs; returns rows per table."""
    folder = folder or queries_dir() / "reference"
    loaded = {spec.file: read_reference(spec, folder) for spec in REFERENCE_FILES}
    dotted = {r["system"] for r in loaded["code_systems.csv"] if r["strip_dots"]}
    counts = {}
    for spec in REFERENCE_FILES:
        rows = loaded[spec.file]
        check_keys(spec, rows, dotted, str(folder / spec.file))
        _check_values(spec, rows, str(folder / spec.file))
        arrow_types = {"DOUBLE": pa.float64(), "INTEGER": pa.int32(), "BOOLEAN": pa.bool_(),
                       "VARCHAR": pa.string()}
        table = pa.table({c: pa.array([r[c] for r in rows], arrow_types[t])
                          for c, t in spec.columns})
        con.register("_ref_in", table)
        try:
            con.execute(f"CREATE OR REPLACE TABLE {spec.table} AS SELECT * FROM _ref_in")
        finally:
            con.unregister("_ref_in")
        counts[spec.table] = len(rows)
    return counts


def _check_values(spec: RefFile, rows: list[dict], path: str) -> None:
    if spec.file == "valuesets.csv":
        for n, r in enumerate(rows, start=2):
            if r["match"] not in ("exact", "prefix"):
                raise ReferenceDataError(f"{path} line {n}: match must be exact or prefix")
    if spec.file == "default_ranges.csv":
        by: dict[str, set[str]] = {}
        for r in rows:
            by.setdefault(r["analyte"], set()).add(r["sex"])
        for analyte, sexes in by.items():
            if sexes != {"any"} and sexes != {"female", "male", "unknown"}:
                raise ReferenceDataError(
                    f"{path}: {analyte} needs either one row for sex 'any' or one each for "
                    f"female, male and unknown (has {', '.join(sorted(sexes))})")
    if spec.file == "units.csv":
        for n, r in enumerate(rows, start=2):
            if r["factor"] is None or r["factor"] <= 0:
                raise ReferenceDataError(f"{path} line {n}: factor must be a positive number")
