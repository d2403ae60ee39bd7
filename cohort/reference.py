"""Reference data (``queries/reference/*.csv``) -> ``ref_*`` tables, checked on the way in.

Code lists, unit conversions, CTCAE thresholds and default ranges are data: a new code is a
new CSV line, never a code change. Each file has a fixed header and a key that must be unique
(after the same normalisation the queries apply), so a typo fails loudly with the file and
line instead of silently doubling rows in a join.
"""
from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
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
            ("analyte", "grade", "unit")),
    RefFile("drug_names.csv", "ref_drug_name",
            (("valueset", "VARCHAR"), ("name", "VARCHAR"), ("source", "VARCHAR")),
            ("valueset", "name")),
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
            rows.append(convert_row(spec, raw, where))
    return rows


def convert_row(spec: RefFile, raw: dict[str, str], where: str) -> dict:
    """One row of ``spec``'s columns, typed (``where`` names the file and line in errors)."""
    return {c: _convert(raw[c] or "", t, f"{where} column {c}") for c, t in spec.columns}


def row_key(spec: RefFile, row: dict, dotted_systems: set[str]) -> tuple:
    """The key of a row as the queries compare it (units and ICD codes normalised)."""
    key = []
    for k in spec.key:
        v = row[k] or ""
        if k == "unit":
            v = unit_key(v)
        elif k == "code" and "system" in row:
            v = code_key(row["system"] or "", v, dotted_systems)
        key.append(v)
    return tuple(key)


def check_keys(spec: RefFile, rows: list[dict], dotted_systems: set[str], path: str) -> None:
    """Fail on two rows with the same key after normalisation (they would double a join)."""
    seen: dict[tuple, int] = {}
    for n, row in enumerate(rows, start=2):
        t = row_key(spec, row, dotted_systems)
        if t in seen:
            raise ReferenceDataError(f"{path} line {n}: duplicates line {seen[t]} "
                                     f"({', '.join(spec.key)} = {', '.join(map(str, t))})")
        seen[t] = n


#: Reference files a user may extend with rows of their own (``--codes``, ``bmc.toml``): code
#: lists, lab codes, unit spellings and dotted code systems. Analytes, CTCAE thresholds and
#: default ranges are the definition itself and are not extended.
EXTENSIBLE = ("valuesets.csv", "lab_codes.csv", "units.csv", "code_systems.csv")

#: Extra rows per reference file: ``{file: [(where, row), ...]}``, ``where`` being the file and
#: line the row came from (for messages), ``row`` typed as :func:`convert_row` returns it.
ExtraRows = Mapping[str, Sequence[tuple[str, dict]]]


def merge_extra(loaded: dict[str, list[dict]], extra: ExtraRows, folder: Path) -> dict[str, list[dict]]:
    """The shipped rows with the user's rows appended, each user row checked like a shipped
    one and more: it names a value set or analyte that exists, a unit converts to its
    analyte's canonical unit, and no key is there twice (a user row that repeats a shipped
    one names both lines). Raises :class:`ReferenceDataError` naming the user's file and line."""
    unknown = sorted(set(extra) - set(EXTENSIBLE))
    if unknown:
        raise ReferenceDataError(f"{', '.join(unknown)}: only {', '.join(EXTENSIBLE)} take "
                                 f"rows of your own")
    merged = {f: list(rows) for f, rows in loaded.items()}
    valuesets = {r["valueset"] for r in loaded["valuesets.csv"]}
    canonical = {r["analyte"]: r["canonical_unit"] for r in loaded["analytes.csv"]}
    systems = [*loaded["code_systems.csv"], *(r for _, r in extra.get("code_systems.csv", ()))]
    dotted = {r["system"] for r in systems if r["strip_dots"]}
    for spec in REFERENCE_FILES:
        if spec.file not in extra:
            continue
        seen = {row_key(spec, r, dotted): f"{folder / spec.file} line {n}"
                for n, r in enumerate(loaded[spec.file], start=2)}
        for where, row in extra[spec.file]:
            missing = [c for c in spec.key if not row[c]]
            if missing:
                raise ReferenceDataError(f"{where}: {', '.join(missing)} must not be empty")
            if spec.file == "valuesets.csv":
                if row["valueset"] not in valuesets:
                    raise ReferenceDataError(f"{where}: unknown value set {row['valueset']!r}; "
                                             f"known: {', '.join(sorted(valuesets))}")
                if row["match"] not in ("exact", "prefix"):
                    raise ReferenceDataError(f"{where}: match must be exact or prefix")
            if spec.file in ("lab_codes.csv", "units.csv") and row["analyte"] not in canonical:
                raise ReferenceDataError(f"{where}: unknown analyte {row['analyte']!r}; "
                                         f"known: {', '.join(canonical)}")
            if spec.file == "units.csv":
                if row["canonical_unit"] != canonical[row["analyte"]]:
                    raise ReferenceDataError(
                        f"{where}: canonical_unit of {row['analyte']} is "
                        f"{canonical[row['analyte']]!r}, not {row['canonical_unit']!r}")
                if row["factor"] is None or row["factor"] <= 0:
                    raise ReferenceDataError(f"{where}: factor must be a positive number")
            if spec.file == "code_systems.csv" and row["strip_dots"] is None:
                raise ReferenceDataError(f"{where}: strip_dots must be true or false")
            key = row_key(spec, row, dotted)
            if key in seen:
                raise ReferenceDataError(f"{where}: duplicates {seen[key]} "
                                         f"({', '.join(spec.key)} = {', '.join(map(str, key))})")
            seen[key] = where
            merged[spec.file].append(row)
    return merged


def load_reference(con: duckdb.DuckDBPyConnection, folder: Path | None = None, *,
                   extra: ExtraRows | None = None, temp: bool = False) -> dict[str, int]:
    """(Re)create every ``ref_*`` table from the CSVs, with the user's ``extra`` rows
    appended (see :func:`merge_extra`); returns rows per table. ``temp`` makes them TEMP
    tables (allowed on a read-only database, never written into it)."""
    folder = folder or queries_dir() / "reference"
    shipped = {spec.file: read_reference(spec, folder) for spec in REFERENCE_FILES}
    dotted = {r["system"] for r in shipped["code_systems.csv"] if r["strip_dots"]}
    for spec in REFERENCE_FILES:
        check_keys(spec, shipped[spec.file], dotted, str(folder / spec.file))
        _check_values(spec, shipped[spec.file], str(folder / spec.file))
    loaded = merge_extra(shipped, extra, folder) if extra else shipped
    counts = {}
    for spec in REFERENCE_FILES:
        rows = loaded[spec.file]
        arrow_types = {"DOUBLE": pa.float64(), "INTEGER": pa.int32(), "BOOLEAN": pa.bool_(),
                       "VARCHAR": pa.string()}
        table = pa.table({c: pa.array([r[c] for r in rows], arrow_types[t])
                          for c, t in spec.columns})
        con.register("_ref_in", table)
        try:
            con.execute(f"CREATE OR REPLACE {'TEMP ' if temp else ''}TABLE {spec.table} AS "
                        f"SELECT * FROM _ref_in")
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
    if spec.file == "drug_names.csv":
        for n, r in enumerate(rows, start=2):
            if not r["name"] or r["name"] != r["name"].strip().lower():
                raise ReferenceDataError(f"{path} line {n}: name must be lower-case text "
                                         f"(it is looked for in lower-cased displays)")
    if spec.file == "units.csv":
        for n, r in enumerate(rows, start=2):
            if r["factor"] is None or r["factor"] <= 0:
                raise ReferenceDataError(f"{path} line {n}: factor must be a positive number")
