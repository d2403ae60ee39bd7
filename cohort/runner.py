"""Run the SQL stages in ``queries/bmc/`` in order, each materialised as a ``bmc_*`` table.

A stage is one ``.sql`` file holding one SELECT. ``NN_name.sql`` becomes table ``bmc_name``
(the cohort stages); ``screen_NN_name.sql`` becomes ``bmc_name`` too but only runs for the
screen. Values are bound as DuckDB ``$name`` parameters -- only those the file uses, which
its header comment must list (checked). Table names are the only identifiers written into SQL
and go through :func:`etl.sql.quote_ident`.
"""
from __future__ import annotations

import hashlib
import json
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
from .reference import REFERENCE_FILES, ExtraRows, load_reference

#: Declared tables the cohort reads; a database without them has not been loaded.
REQUIRED_TABLES = ("patient", "condition", "observation", "observation_reference_range",
                   "diagnostic_report", "medication_administration", "medication", "procedure",
                   "resource", "source_file")

_STAGE = re.compile(r"^(?:(screen)_)?(\d\d)_([a-z0-9_]+)\.sql$")
_TABLE = re.compile(r"\bbmc_[a-z0-9_]+")

#: One row per stage table (and ``ref`` for the reference tables): the key of what built it.
STATE_TABLE = "bmc_stage_state"


@dataclass(frozen=True)
class Stage:
    """One query file: where it is, the table it builds, the parameters it binds."""

    path: Path
    group: str  # cohort | screen
    table: str
    sql: str
    params: tuple[str, ...]
    declared: tuple[str, ...]
    names: tuple[str, ...] = ()  # every bmc_* name its SQL mentions (comments aside)

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
    table = "bmc_" + m.group(3)
    names = tuple(sorted(set(_TABLE.findall(_strip_comments(sql))) - {table}))
    return Stage(path, group, table, sql, used, declared, names)


def stages(group: str | None, folder: Path | None = None) -> list[Stage]:
    """The stages of ``group`` ('cohort' or 'screen'; None: both) in file-name order (every
    cohort stage before the screen's, which read them)."""
    folder = folder or queries_dir() / "bmc"
    out = [read_stage(p) for p in sorted(folder.glob("*.sql"))]
    return [s for s in out if group is None or s.group == group]


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


def reference_key(con: duckdb.DuckDBPyConnection, extra: ExtraRows | None = None) -> str:
    """What every stage depends on besides its own SQL, parameters and input stages: the
    loads in the database, the reference CSVs and the user's own reference rows. A change in
    any of them makes every stage stale."""
    h = hashlib.sha256()
    h.update(repr(con.execute("SELECT max(load_id), count(*) FROM load_run").fetchall()).encode())
    for f in sorted((queries_dir() / "reference").rglob("*.csv")):
        h.update(f.name.encode() + f.read_bytes())
    h.update(json.dumps(extra or {}, sort_keys=True, default=str).encode())
    return h.hexdigest()


def stage_keys(all_stages: list[Stage], params: Mapping[str, Any], base: str) -> dict[str, str]:
    """The key of every stage table: a hash of ``base`` (:func:`reference_key`), the stage's
    SQL, the values of the parameters it binds and the keys of the earlier stages it reads.
    A stage whose key is unchanged would rebuild the same rows, so a changed ``--param``
    makes stale exactly the stages that bind it and those that read them (directly or not)."""
    values = bind_values(params)
    keys: dict[str, str] = {}
    for stage in all_stages:
        h = hashlib.sha256((base + "\n" + stage.sql).encode())
        for p in stage.params:
            h.update(f"\n${p}=".encode() + json.dumps(values.get(p), default=str).encode())
        for t in stage.names:
            if t in keys:
                h.update(f"\n{t}:{keys[t]}".encode())
        keys[stage.table] = h.hexdigest()
    return keys


def built_keys(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The keys recorded for the stage tables that exist (a table dropped since is stale)."""
    have = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
    if STATE_TABLE not in have:
        return {}
    rows = con.execute(f"SELECT name, key FROM {quote_ident(STATE_TABLE)}").fetchall()
    ref_there = all(spec.table in have for spec in REFERENCE_FILES)
    return {name: key for name, key in rows if name in have or (name == "ref" and ref_there)}


def record_keys(con: duckdb.DuckDBPyConnection, keys: Mapping[str, str]) -> None:
    """Record ``keys`` (table -> key) in the state table, replacing their earlier rows."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {quote_ident(STATE_TABLE)} "
                "(name VARCHAR PRIMARY KEY, key VARCHAR NOT NULL)")
    con.executemany(f"INSERT OR REPLACE INTO {quote_ident(STATE_TABLE)} VALUES (?, ?)",
                    list(keys.items()))


@dataclass
class RunInfo:
    """What a run did: seconds per table, and notes the user should see (on stderr)."""

    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def run_group(con: duckdb.DuckDBPyConnection, group: str, params: Mapping[str, Any],
              folder: Path | None = None, *, extra: ExtraRows | None = None,
              reuse: bool = True) -> RunInfo:
    """Load the reference tables (with the user's ``extra`` rows, see
    :mod:`cohort.usercodes`), then every stage of ``group`` in order, in one transaction.

    With ``reuse``, a stage whose key (:func:`stage_keys`) is the one recorded when its table
    was built is kept as it is, and the reference tables are kept while the data, reference
    files and user rows are unchanged: only what a change reaches is rebuilt, and the tables
    are the same as a full rebuild's. Without it every table is rebuilt.
    A failing stage rolls everything back, so SQL users never see half-built tables.
    """
    check_loaded(con)
    info = RunInfo()
    base = reference_key(con, extra)
    everything = stages(None, folder)
    keys = stage_keys(everything, params, base)
    before = built_keys(con) if reuse else {}
    con.execute("BEGIN TRANSACTION")
    try:
        if before.get("ref") != base:
            load_reference(con, extra=extra)
            before = {}  # every stage reads the reference tables
        built = {"ref": base}
        current = {t: k for t, k in before.items() if keys.get(t) == k}
        for stage in (s for s in everything if s.group == group):
            inputs_current = all(current.get(t) == keys[t] for t in stage.names if t in keys)
            if inputs_current and current.get(stage.table) == keys[stage.table]:
                continue
            info.timings[stage.table] = run_stage(con, stage, params)
            # a stage read from tables built with other parameters (the screen run before
            # its cohort) is not recorded as up to date
            built[stage.table] = keys[stage.table] if inputs_current else "stale"
            if inputs_current:
                current[stage.table] = keys[stage.table]
        record_keys(con, built)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return info
