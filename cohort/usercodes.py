"""The user's own codes: extra reference rows and parameters a hospital adds without editing
the package.

Two ways in, used together or alone:

* ``--codes FILE_OR_DIR`` (repeatable): CSV files with the header of one of the extensible
  reference files (``valuesets.csv``, ``lab_codes.csv``, ``units.csv``, ``code_systems.csv``
  in ``queries/reference/``); a folder stands for the ``*.csv`` files directly in it, in name
  order. The header says which file a CSV extends.
* a project file, ``bmc.toml`` beside the database (or ``--config FILE``)::

      codes = ["local-codes/"]          # like --codes, relative to bmc.toml

      [parameters]                      # definition parameters; --param overrides them
      smear_window_days = 7

      [[lab_codes]]                     # one table per row, columns as in lab_codes.csv
      analyte = "hgb"
      system = "http://lab.example-hospital.org/codes"
      code = "HB"
      display = "Haemoglobin (local)"
      source = "lab catalogue 2024"
      confidence = ""

  with ``[[valuesets]]``, ``[[units]]`` and ``[[code_systems]]`` rows likewise.

Every row is checked like a shipped one, and more (:func:`cohort.reference.merge_extra`); a
bad one is a :class:`~cohort.errors.UsageError` naming the file and line (exit code 2). What
was added goes into the cohort's fingerprint (a changed file rebuilds the tables) and is
recorded beside the tables (``bmc_build``, ``bmc_user_code``), so a result says what built it.
"""
from __future__ import annotations

import csv
import hashlib
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ReferenceDataError, UsageError
from .parameters import BY_NAME, unknown_message
from .paths import queries_dir
from .reference import (
    EXTENSIBLE,
    REFERENCE_FILES,
    RefFile,
    convert_row,
    merge_extra,
    read_reference,
)

CONFIG_NAME = "bmc.toml"
_SPEC = {spec.file: spec for spec in REFERENCE_FILES}
#: TOML table name -> reference file it extends.
TOML_TABLES = {f.removesuffix(".csv"): f for f in EXTENSIBLE}


@dataclass(frozen=True)
class CodeSource:
    """One file rows came from: its path, what it extends, how many rows, its SHA-256."""

    path: str
    reference: str  # valuesets.csv, ... or "bmc.toml" for the rows written in the project file
    rows: int
    sha256: str

    def describe(self) -> str:
        return f"{self.path} ({self.reference}, {self.rows} rows, sha256 {self.sha256[:12]})"


@dataclass(frozen=True)
class UserCodes:
    """What the user added: rows per reference file (with where each came from), the files
    they came from, the project file and the parameters it sets (name -> value text)."""

    rows: dict[str, list[tuple[str, dict]]] = field(default_factory=dict)
    sources: tuple[CodeSource, ...] = ()
    config: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def has_rows(self) -> bool:
        return any(self.rows.values())

    def digest(self) -> str:
        """Hash of every added row (in order): a changed row changes the cohort's fingerprint."""
        h = hashlib.sha256()
        for file in sorted(self.rows):
            for _, row in self.rows[file]:
                h.update(repr((file, sorted(row.items()))).encode())
        return h.hexdigest()

    def notes(self) -> list[str]:
        """One line for stderr per source and for the parameters: what this run adds."""
        out = [f"codes: {s.describe()}" for s in self.sources]
        if self.parameters:
            out.append(f"parameters from {self.config}: "
                       + ", ".join(f"{k}={v}" for k, v in self.parameters.items()))
        return out

    def added(self) -> list[dict[str, Any]]:
        """One record per added row (table ``bmc_user_code``): which reference file it
        extends, where it came from, and its concept, system, code or unit."""
        out = []
        for file, rows in self.rows.items():
            for where, row in rows:
                path, sep, line = where.rpartition(" line ")
                if not (sep and line.isdigit()):  # a TOML row whose line was not found
                    path, line = where, ""
                out.append({"reference": file, "file": path, "line": int(line) if line else None,
                            "concept": row.get("valueset") or row.get("analyte"),
                            "system": row.get("system"), "code": row.get("code"),
                            "unit": row.get("unit"), "display": row.get("display"),
                            "source": row.get("source")})
        return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _kind_of(header: list[str]) -> RefFile | None:
    return next((_SPEC[f] for f in EXTENSIBLE if _SPEC[f].names == header), None)


def read_codes_csv(path: Path) -> tuple[str, list[tuple[str, dict]]]:
    """The rows of one user CSV and the reference file its header says it extends."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        spec = _kind_of(header)
        if spec is None:
            wanted = "; ".join(f"{f}: {','.join(_SPEC[f].names)}" for f in EXTENSIBLE)
            raise UsageError(f"{path} line 1: the header must be that of one reference file "
                             f"({wanted}); found {','.join(header) or 'nothing'}")
        rows = []
        for n, raw in enumerate(reader, start=2):
            where = f"{path} line {n}"
            if None in raw or any(raw[c] is None for c in spec.names):
                raise UsageError(f"{where}: expected {len(spec.columns)} fields")
            rows.append((where, _typed(spec, raw, where)))
    return spec.file, rows


def _typed(spec: RefFile, raw: dict[str, str], where: str) -> dict:
    try:
        return convert_row(spec, raw, where)
    except ReferenceDataError as e:
        raise UsageError(str(e)) from None


def _csv_files(target: Path) -> list[Path]:
    if target.is_dir():
        files = sorted(p for p in target.glob("*.csv") if p.is_file())
        if not files:
            raise UsageError(f"--codes {target}: the folder holds no .csv file")
        return files
    if not target.is_file():
        raise UsageError(f"--codes {target}: no such file or folder")
    return [target]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_toml_value(v) for v in value)
    return str(value)


def _line_of(lines: list[str], pattern: str, nth: int = 0, after: int = 0) -> int | None:
    """1-based line of the ``nth`` line (from ``after``) matching ``pattern``, if any."""
    rx = re.compile(pattern)
    hits = [i + 1 for i, ln in enumerate(lines) if i >= after and rx.match(ln)]
    return hits[nth] if nth < len(hits) else None


def read_config(path: Path) -> tuple[dict[str, list[tuple[str, dict]]], list[Path],
                                     dict[str, str]]:
    """The rows written in a ``bmc.toml``, the code files it names (resolved against its
    folder) and the parameters it sets, each checked; errors name the file and line."""
    text = path.read_text(encoding="utf-8")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: not valid TOML ({e})") from None
    lines = text.splitlines()
    allowed = {"codes", "parameters", *TOML_TABLES}
    for key in doc:
        if key not in allowed:
            line = _line_of(lines, rf"\s*\[*\s*{re.escape(key)}\b")
            raise UsageError(f"{path}{f' line {line}' if line else ''}: unknown key {key!r}; "
                             f"expected {', '.join(sorted(allowed))}")
    codes = doc.get("codes", [])
    if isinstance(codes, str):
        codes = [codes]
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        line = _line_of(lines, r"\s*codes\s*=")
        raise UsageError(f"{path} line {line}: codes must be a list of paths")
    files = [path.parent / c for c in codes]
    rows: dict[str, list[tuple[str, dict]]] = {}
    for table, file in TOML_TABLES.items():
        spec = _SPEC[file]
        entries = doc.get(table, [])
        if not isinstance(entries, list):
            raise UsageError(f"{path}: write each {table} row as a [[{table}]] table")
        for i, entry in enumerate(entries):
            line = _line_of(lines, rf"\s*\[\[\s*{table}\s*\]\]", i)
            where = f"{path} line {line}" if line else f"{path} [[{table}]] row {i + 1}"
            extra = sorted(set(entry) - set(spec.names))
            if extra:
                raise UsageError(f"{where}: unknown column(s) {', '.join(extra)}; {file} has "
                                 f"{', '.join(spec.names)}")
            raw = {c: _toml_value(entry[c]) if c in entry else "" for c in spec.names}
            rows.setdefault(file, []).append((where, _typed(spec, raw, where)))
    params: dict[str, str] = {}
    section = doc.get("parameters", {})
    start = (_line_of(lines, r"\s*\[\s*parameters\s*\]") or 1) - 1
    for name, value in section.items():
        line = _line_of(lines, rf"\s*{re.escape(name)}\s*=", after=start)
        where = f"{path}{f' line {line}' if line else ''}"
        if name not in BY_NAME:
            raise UsageError(f"{where}: {unknown_message(name)}")
        text_value = _toml_value(value)
        try:
            BY_NAME[name].parse(text_value)
        except UsageError as e:
            raise UsageError(f"{where}: {e}") from None
        params[name] = text_value
    return rows, files, params


def config_path(db: str | Path | None, config: str | Path | None) -> Path | None:
    """The project file in use: ``--config`` (which must exist), else ``bmc.toml`` beside the
    database when there is one."""
    if config is not None:
        p = Path(config)
        if not p.is_file():
            raise UsageError(f"--config {config}: no such file")
        return p
    if db is not None:
        beside = Path(db).resolve().parent / CONFIG_NAME
        if beside.is_file():
            return beside
    return None


def collect(codes: Sequence[str | Path] | None = None, *, db: str | Path | None = None,
            config: str | Path | None = None) -> UserCodes:
    """Everything the user adds for this run: the project file (``--config`` or ``bmc.toml``
    beside ``db``), the code files it names, then each ``--codes`` target, checked together
    against the shipped reference data (no key twice, known value sets and analytes)."""
    rows: dict[str, list[tuple[str, dict]]] = {}
    sources: list[CodeSource] = []
    params: dict[str, str] = {}
    cfg = config_path(db, config)
    files: list[Path] = []
    if cfg is not None:
        toml_rows, files, params = read_config(cfg)
        n = sum(len(v) for v in toml_rows.values())
        if n:
            sources.append(CodeSource(str(cfg), CONFIG_NAME, n, _sha256(cfg)))
        for file, items in toml_rows.items():
            rows.setdefault(file, []).extend(items)
    for target in [*files, *(Path(c) for c in codes or [])]:
        for path in _csv_files(target):
            file, items = read_codes_csv(path)
            sources.append(CodeSource(str(path), file, len(items), _sha256(path)))
            rows.setdefault(file, []).extend(items)
    if any(rows.values()):
        folder = queries_dir() / "reference"
        shipped = {spec.file: read_reference(spec, folder) for spec in REFERENCE_FILES}
        try:
            merge_extra(shipped, rows, folder)
        except ReferenceDataError as e:
            raise UsageError(str(e)) from None
    return UserCodes(rows, tuple(sources), str(cfg) if cfg else None, params)
