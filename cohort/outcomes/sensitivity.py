"""How much the cohort depends on the definition's choices: the cohort rerun over a grid.

The grid is data (``cohort/data/sensitivity_grid.csv``: parameter, values, why); every value
is parsed by :mod:`cohort.parameters`, so only declared parameters can be varied, and the
default cohort is always one grid point. For each point the result holds the cohort size, the
overlap with the default cohort (and who was added or lost), sensitivity and PPV against truth
labels when given (:func:`cohort.check.confusion`), and the Kaplan-Meier median OS from the
index date (lifelines median and its log(-log) CI; survivors censored at their last record,
as in the report without ``--cutoff``).

The stages run as TEMP tables on the caller's connection (a read-only database works; the
user's ``bmc_*`` tables are never touched) and are dropped afterwards. A stage is rebuilt
only when a parameter it depends on -- itself or through an earlier stage it reads -- changed
since it was last built; the grid is walked with the parameters of the costliest stages
outermost, so most points rebuild only the smear rule and what follows it. Stages after
``bmc_cohort`` (funnel, evidence) are not needed and not run.
"""
from __future__ import annotations

import csv
import itertools
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from etl.sql import quote_ident

from ..check import confusion
from ..engine import DuckDBEngine
from ..errors import QueryError, UsageError
from ..parameters import BY_NAME, resolve
from ..reference import load_reference
from ..runner import Stage, bind_values, check_loaded, stages
from .records import as_key, run_query
from .survival import SurvivalInputError, kaplan_meier, months_between_dates

GRID_FILE = Path(__file__).resolve().parents[1] / "data" / "sensitivity_grid.csv"
LAST_STAGE = "bmc_cohort"
_TABLE = re.compile(r"\bbmc_[a-z0-9_]+\b")

#: Output columns (a contract of ``bmc sensitivity``; documented in README.md).
RESULT_COLUMNS = ("cohort", "overlap_default", "added", "removed", "tp", "fp", "fn",
                  "sensitivity", "ppv", "deaths", "median_os_months", "median_os_ci_low",
                  "median_os_ci_high", "seconds")


@dataclass(frozen=True)
class GridAxis:
    """One varied parameter: its values (typed, in file order) and why it is varied."""

    parameter: str
    values: tuple[Any, ...]
    why: str


@cache
def read_grid(path: Path = GRID_FILE) -> tuple[GridAxis, ...]:
    """The grid file; values are ``;``-separated and parsed as ``--param`` would parse them.
    An unknown parameter or a bad value is a :class:`UsageError` naming the file and line."""
    axes = []
    with Path(path).open(newline="", encoding="utf-8") as fh:
        for n, row in enumerate(csv.DictReader(fh), start=2):
            name = (row.get("parameter") or "").strip()
            if name not in BY_NAME:
                raise UsageError(f"{path} line {n}: unknown parameter {name!r}")
            try:
                values = tuple(BY_NAME[name].parse(v) for v in row["values"].split(";"))
            except UsageError as e:
                raise UsageError(f"{path} line {n}: {e}") from None
            axes.append(GridAxis(name, values, row.get("why") or ""))
    return tuple(axes)


def grid_points(axes: Iterable[GridAxis], defaults: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every combination of the axes' values (the first axis varies slowest), each a full
    parameter set (``defaults`` for what the grid does not vary). The default point is added
    when a grid leaves it out, so overlap with the default cohort is always defined."""
    axes = list(axes)
    points = [dict(defaults) | dict(zip((a.parameter for a in axes), combo, strict=True))
              for combo in itertools.product(*(a.values for a in axes))]
    if not any(_same(p, defaults) for p in points):
        points.append(dict(defaults))
    return points


def one_at_a_time(axes: Iterable[GridAxis], defaults: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The default point, then each axis's other values with every other parameter at its
    default: what each choice does alone (the report's design; ``bmc sensitivity`` runs the
    full grid, where choices can interact)."""
    points = [dict(defaults)]
    for a in axes:
        points += [dict(defaults) | {a.parameter: v} for v in a.values
                   if BY_NAME[a.parameter].show(v) != BY_NAME[a.parameter].show(defaults[a.parameter])]
    return points


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return all(BY_NAME[k].show(a[k]) == BY_NAME[k].show(b[k]) for k in b)


def stage_dependencies(stage_list: list[Stage]) -> dict[str, frozenset[str]]:
    """Per stage table: the parameters it depends on, its own and those of every earlier
    stage it reads (table names in its SQL outside comments)."""
    deps: dict[str, frozenset[str]] = {}
    for st in stage_list:
        body = re.sub(r"--[^\n]*", "", st.sql)
        reads = {t for t in _TABLE.findall(body) if t in deps}
        deps[st.table] = frozenset(st.params).union(*(deps[t] for t in reads))
    return deps


@dataclass
class SensitivityResult:
    """One row per grid point (the parameters, then :data:`RESULT_COLUMNS`), the varied
    axes, whether truth labels were used, and how many stage builds the grid needed."""

    table: pd.DataFrame
    axes: tuple[GridAxis, ...]
    with_truth: bool
    stage_builds: int
    stage_builds_without_reuse: int
    seconds: float
    design: str = "full"

    @property
    def default_row(self) -> pd.Series:
        return self.table[self.table["is_default"]].iloc[0]


class _TempStages:
    """Builds the cohort stages as TEMP tables, each only when its parameters changed."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        all_stages = stages("cohort")
        last = [s.table for s in all_stages].index(LAST_STAGE)
        self.stages = all_stages[: last + 1]
        self.deps = stage_dependencies(self.stages)
        self.built: dict[str, tuple] = {}
        self.builds = 0

    def run(self, params: Mapping[str, Any]) -> None:
        values = bind_values(params)
        for st in self.stages:
            signature = tuple(BY_NAME[p].show(params[p]) for p in sorted(self.deps[st.table]))
            if self.built.get(st.table) == signature:
                continue
            try:
                self.con.execute(f"CREATE OR REPLACE TEMP TABLE {quote_ident(st.table)} AS\n"
                                 f"{st.sql}", {p: values[p] for p in st.params})
            except duckdb.Error as e:
                raise QueryError(f"{st.path.name} (building {st.table}): "
                                 f"{str(e).splitlines()[0]}") from None
            self.built[st.table] = signature
            self.builds += 1

    def drop(self) -> None:
        for st in self.stages:
            self.con.execute(f"DROP TABLE IF EXISTS temp.{quote_ident(st.table)}")


def _median_os(index: Mapping[str, Any], follow: pd.DataFrame) -> tuple[int, float | None,
                                                                        float | None, float | None]:
    """(deaths, median, CI low, CI high) of OS from the index date for the patients in
    ``index`` (patient_id -> index date); ``follow`` holds death and last-record dates."""
    rows = follow[follow["patient_id"].isin(index.keys())]
    durations, died = [], []
    for r in rows.itertuples():
        death = r.death_date if r.death_date is not None and not pd.isna(r.death_date) else None
        end = death or r.last_record_date
        m = months_between_dates(index[r.patient_id], end)
        if m is None or m < 0:
            continue
        durations.append(m)
        died.append(death is not None)
    if not durations:
        return 0, None, None, None
    try:
        km = kaplan_meier(durations, died, "grid point")
    except SurvivalInputError:
        return sum(died), None, None, None
    return km.events, km.median, km.median_ci[0], km.median_ci[1]


def run_sensitivity(con: duckdb.DuckDBPyConnection, *, truth: Mapping[str, bool] | None = None,
                    axes: tuple[GridAxis, ...] | None = None,
                    base: Mapping[str, Any] | None = None, design: str = "full",
                    progress: Callable[[int, int], None] = lambda done, total: None
                    ) -> SensitivityResult:
    """Rerun the cohort for every grid point on a loaded database (read-only is enough).

    ``truth`` (patient_id -> label, :func:`cohort.check.read_truth`) adds TP/FP/FN,
    sensitivity and PPV; ``base`` are parameter overrides for what the grid does not vary
    (the default cohort is the grid point equal to ``base``). ``design`` is ``full`` (every
    combination, :func:`grid_points`) or ``one-at-a-time`` (:func:`one_at_a_time`).
    """
    if design not in DESIGNS:
        raise UsageError(f"design {design!r}: expected one of {', '.join(DESIGNS)}")
    check_loaded(con)
    started = time.perf_counter()
    axes = axes or read_grid()
    defaults = resolve(base)
    points = DESIGNS[design](axes, defaults)
    load_reference(con, temp=True)
    runner = _TempStages(con)
    cohorts: list[dict[str, Any]] = []
    seconds: list[float] = []
    try:
        known = set(con.execute("SELECT id FROM patient").fetchdf()["id"])
        for i, point in enumerate(points):
            t0 = time.perf_counter()
            runner.run(point)
            df = con.execute("SELECT patient_id, index_date FROM bmc_cohort").fetchdf()
            cohorts.append(dict(zip(df["patient_id"], pd.to_datetime(df["index_date"]).dt.date,
                                    strict=True)))
            seconds.append(time.perf_counter() - t0)
            progress(i + 1, len(points))
        everyone = sorted({p for c in cohorts for p in c})
        follow = run_query(DuckDBEngine(con), "patients", patient_keys=[as_key(p) for p in everyone],
                           result_statuses=defaults["result_statuses"])
    finally:
        runner.drop()
        for name in [r[0] for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE temporary "
                "AND table_name LIKE 'ref\\_%' ESCAPE '\\'").fetchall()]:
            con.execute(f"DROP TABLE IF EXISTS temp.{quote_ident(name)}")
    default_ix = next(i for i, p in enumerate(points) if _same(p, defaults))
    default_ids = set(cohorts[default_ix])
    rows = []
    for point, members, secs in zip(points, cohorts, seconds, strict=True):
        ids = set(members)
        row: dict[str, Any] = {a.parameter: BY_NAME[a.parameter].show(point[a.parameter])
                               for a in axes}
        row["is_default"] = _same(point, defaults)
        row |= {"cohort": len(ids), "overlap_default": len(ids & default_ids),
                "added": len(ids - default_ids), "removed": len(default_ids - ids)}
        if truth is not None:
            c = confusion(ids, truth, known)
            row |= {"tp": c.tp, "fp": c.fp, "fn": c.fn, "sensitivity": c.sensitivity,
                    "ppv": c.ppv}
        else:
            row |= {"tp": None, "fp": None, "fn": None, "sensitivity": None, "ppv": None}
        deaths, med, lo, hi = _median_os(members, follow)
        row |= {"deaths": deaths, "median_os_months": med, "median_os_ci_low": lo,
                "median_os_ci_high": hi, "seconds": round(secs, 3)}
        rows.append(row)
    table = pd.DataFrame(rows)
    return SensitivityResult(table, tuple(axes), truth is not None, runner.builds,
                             len(points) * len(runner.stages), time.perf_counter() - started,
                             design)


DESIGNS = {"full": grid_points, "one-at-a-time": one_at_a_time}

