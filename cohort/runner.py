"""Run the SQL stages in ``queries/bmc/`` in order, each materialised as a ``bmc_*`` table.

A stage is one ``.sql`` file holding one SELECT. ``NN_name.sql`` becomes table ``bmc_name``
(the cohort stages); ``screen_NN_name.sql`` becomes ``bmc_name`` too but only runs for the
screen. Values are bound as DuckDB ``$name`` parameters -- only those the file uses, which
its header comment must list (checked). Table names are the only identifiers written into SQL
and go through :func:`etl.sql.quote_ident`.
"""
from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from etl.sql import quote_ident
from etl.viewdef.macros import install_date_macros

from .engine import PARAMETER
from .errors import DatabaseError, QueryError
from .paths import queries_dir
from .reference import ExtraRows, load_reference

#: Declared tables the cohort reads; a database without them has not been loaded.
REQUIRED_TABLES = ("patient", "condition", "observation", "observation_reference_range",
                   "diagnostic_report", "medication_administration", "medication", "procedure",
                   "resource", "source_file")

_STAGE = re.compile(r"^(?:(screen)_)?(\d\d)_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Stage:
    """One query file: where it is, the table it builds, the parameters it binds."""

    path: Path
    group: str  # cohort | screen
    table: str
    sql: str
    params: tuple[str, ...]
    declared: tuple[str, ...]

    @property
    def header(self) -> str:
        lines = []
        for ln in self.sql.splitlines():
            if not ln.startswith("--"):
                break
            lines.append(ln[2:].strip())
        return "\n".join(lines)


def _strip_comments(sql: str) -> str:
    """SQL without ``--`` line comments (stage files keep '--' out of string literals)."""
    return re.sub(r"--[^\n]*", "", sql)


def read_stage(path: Path) -> Stage:
    """Parse one stage file: table name from the file name, parameters from the SQL."""
    m = _STAGE.match(path.name)
    if not m:
        raise QueryError(f"{path}: stage files are named NN_name.sql or screen_NN_name.sql")
    group = m.group(1) or "cohort"
    sql = path.read_text(encoding="utf-8")
    used = tuple(sorted(set(PARAMETER.findall(_strip_comments(sql)))))
    header = "\n".join(ln for ln in sql.splitlines() if ln.startswith("--"))
    declared_line = re.search(r"^--\s*Parameters:(.*)$", header, re.MULTILINE)
    declared = tuple(sorted(set(PARAMETER.findall(declared_line.group(1))))) if declared_line else ()
    return Stage(path, group, "bmc_" + m.group(3), sql, used, declared)


def stages(group: str, folder: Path | None = None) -> list[Stage]:
    """The stages of ``group`` ('cohort' or 'screen') in file-name order."""
    folder = folder or queries_dir() / "bmc"
    out = [read_stage(p) for p in sorted(folder.glob("*.sql"))]
    return [s for s in out if s.group == group]


def open_database(db: str | Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open a database that ``bmc load`` filled; a clear :class:`DatabaseError` otherwise."""
    path = Path(db)
    if not path.is_file():
        raise DatabaseError(f"{db}: no such database file; create it with "
                            f"`bmc load PATH... --db {db}`")
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as e:
        raise DatabaseError(f"{db}: cannot open the database ({str(e).splitlines()[0]})") from None
    con.execute("SET TimeZone = 'UTC'")
    install_date_macros(con)  # fhir_date_lo / fhir_date_hi for partial FHIR dates
    return con


def check_loaded(con: duckdb.DuckDBPyConnection, label: str = "the database") -> None:
    """Raise :class:`DatabaseError` unless the declared FHIR tables exist."""
    have = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
    missing = [t for t in REQUIRED_TABLES if t not in have]
    if missing:
        raise DatabaseError(f"{label} has no loaded FHIR tables (missing: {', '.join(missing)}); "
                            f"load an export first with `bmc load PATH... --db FILE`")


def bind_values(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameter values as DuckDB binds them (lists stay lists, choices stay strings)."""
    return {k: (list(v) if isinstance(v, list | tuple) else v) for k, v in params.items()}


def run_stage(con: duckdb.DuckDBPyConnection, stage: Stage, params: Mapping[str, Any]) -> float:
    """Materialise one stage as its table; returns seconds taken."""
    missing = [p for p in stage.params if p not in params]
    if missing:
        raise QueryError(f"{stage.path.name}: parameter(s) {', '.join(missing)} not declared "
                         f"in cohort/parameters.py")
    values = {p: bind_values(params)[p] for p in stage.params}
    started = time.perf_counter()
    try:
        con.execute(f"CREATE OR REPLACE TABLE {quote_ident(stage.table)} AS\n{stage.sql}", values)
    except duckdb.Error as e:
        raise QueryError(f"{stage.path.name} (building {stage.table}): "
                         f"{str(e).splitlines()[0]}") from None
    return time.perf_counter() - started


@dataclass
class RunInfo:
    """What a run did: seconds per table, and notes the user should see (on stderr)."""

    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def run_group(con: duckdb.DuckDBPyConnection, group: str, params: Mapping[str, Any],
              folder: Path | None = None, *, extra: ExtraRows | None = None) -> RunInfo:
    """Load the reference tables (with the user's ``extra`` rows, see
    :mod:`cohort.usercodes`), then every stage of ``group`` in order, in one transaction.

    A failing stage rolls everything back, so SQL users never see half-built tables.
    """
    check_loaded(con)
    info = RunInfo()
    con.execute("BEGIN TRANSACTION")
    try:
        load_reference(con, extra=extra)
        for stage in stages(group, folder):
            info.timings[stage.table] = run_stage(con, stage, params)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return info
