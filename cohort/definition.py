"""The BMC cohort: build it from a loaded database, with its attrition funnel and counts.

A patient is in the cohort when they have breast cancer and bone-marrow involvement shown by
histology/cytology (a marrow-metastasis Condition or a positive marrow pathology report) or by
a leuko-erythroblastic smear (nRBC > 0) with cytopenia of CTCAE grade >= 1 in a window around
it and no alternative cause (haemolysis, MDS, MPN). The rules are SQL in ``queries/bmc/``; the
code lists, units and CTCAE thresholds are CSV in ``queries/reference/``; the parameters and
why their defaults are what they are live in :mod:`cohort.parameters`.

Assumptions worth stating (details in the query headers):

* dates are the calendar day as written in the resource (local time, never shifted to UTC);
  a partial date ('2019-03') stands for every day it denotes and sorts as its first day;
* a lab value whose unit cannot be converted is reported (``lab_issues``), never graded;
* the LLN is the result's own sex-matched reference range, else the default for the
  patient's sex (``queries/reference/default_ranges.csv``);
* the smear-route index date is the nRBC result's date (parameter ``smear_index_date``).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from .engine import DuckDBEngine, Engine
from .parameters import resolve
from .runner import RunInfo, run_group
from .usercodes import UserCodes

COHORT_COLUMNS = ("patient_id", "index_date", "route", "histology_date", "smear_date",
                  "anemia_grade", "platelet_grade", "wbc_grade", "anc_grade",
                  "nrbc_per_100_wbc", "coded_marrow_dx", "marrow_report", "breast_cancer_date")


@dataclass
class CohortResult:
    """The cohort (one row per patient), the funnel, counts and what the user should know.

    ``funnel`` has one row per rule (patients left, removed at that step, lost only by that
    rule, of those with a coded marrow diagnosis) and one per route (histology only, smear
    only, both). ``lab_issues`` lists values that could not be used because of their unit.
    """

    cohort: pd.DataFrame
    funnel: pd.DataFrame
    counts: dict[str, int]
    params: dict[str, Any]
    lab_issues: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def queries_digest(h) -> None:
    """Feed every query and reference file of ``queries/`` into the hash ``h``: a change in
    any of them makes tables built earlier stale (on either engine)."""
    from .paths import queries_dir

    for f in sorted(queries_dir().rglob("*")):
        if f.suffix in (".sql", ".csv"):
            h.update(f.name.encode() + f.read_bytes())


def fingerprint(con: duckdb.DuckDBPyConnection, codes: UserCodes | None = None) -> str:
    """What the ``bmc_*`` tables depend on besides the parameters: the loads in the database,
    the query and reference files, and the rows the user added (``--codes``, ``bmc.toml``).
    A change in any of them makes earlier tables stale."""
    import hashlib

    h = hashlib.sha256()
    h.update(repr(con.execute("SELECT max(load_id), count(*) FROM load_run").fetchall()).encode())
    queries_digest(h)
    if codes is not None and codes.has_rows:
        h.update(codes.digest().encode())
    return h.hexdigest()


def set_by(name: str, value: Any, codes: UserCodes | None) -> str:
    """Where a parameter's value came from: 'default', the project file that set it, or
    'override' (``--param`` or a Python caller)."""
    from .parameters import BY_NAME

    shown = BY_NAME[name].show(value)
    if codes is not None and name in codes.parameters and \
            BY_NAME[name].show(BY_NAME[name].parse(codes.parameters[name])) == shown:
        return codes.config or "bmc.toml"
    return "default" if shown == BY_NAME[name].show(BY_NAME[name].default) else "override"


def record_parameters(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any],
                      codes: UserCodes | None = None) -> None:
    """Leave the parameters that built the ``bmc_*`` tables beside them, for SQL users (with
    where each value came from), the fingerprint of what they were built from and the user's
    code files and project file (table ``bmc_build``), and every row the user added (table
    ``bmc_user_code``): results say what built them."""
    from .parameters import BY_NAME

    con.execute("CREATE OR REPLACE TABLE bmc_parameter (name VARCHAR, value VARCHAR, why VARCHAR, "
                "set_by VARCHAR)")
    con.executemany("INSERT INTO bmc_parameter VALUES (?, ?, ?, ?)",
                    [(k, BY_NAME[k].show(v), BY_NAME[k].why, set_by(k, v, codes))
                     for k, v in params.items()])
    con.execute("CREATE OR REPLACE TABLE bmc_build AS SELECT ? AS fingerprint, "
                "?::VARCHAR AS config, ?::VARCHAR[] AS code_files",
                [fingerprint(con, codes), codes.config if codes else None,
                 [s.describe() for s in codes.sources] if codes else []])
    con.execute("CREATE OR REPLACE TABLE bmc_user_code (reference VARCHAR, file VARCHAR, "
                "line INTEGER, concept VARCHAR, system VARCHAR, code VARCHAR, unit VARCHAR, "
                "display VARCHAR, source VARCHAR)")
    added = codes.added() if codes else []
    if added:
        con.executemany("INSERT INTO bmc_user_code VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [tuple(r.values()) for r in added])


def built_with(engine: Engine) -> dict[str, str] | None:
    """The parameters the current ``bmc_*`` tables were built with, as shown in
    ``bmc_parameter`` (None if never built), on either engine."""
    if "bmc_parameter" not in engine.tables():
        return None
    df = engine.query("SELECT name, value FROM bmc_parameter")
    return dict(zip(df["name"], df["value"], strict=True))


def up_to_date(con: duckdb.DuckDBPyConnection, values: Mapping[str, Any],
               table: str = "bmc_cohort", codes: UserCodes | None = None) -> bool:
    """True when ``table`` exists and was built with ``values`` and the user's ``codes`` from
    the current data."""
    from .parameters import BY_NAME

    wanted = {k: BY_NAME[k].show(v) for k, v in values.items()}
    try:
        ((fp,),) = con.execute("SELECT fingerprint FROM bmc_build").fetchall()
        con.execute(f"SELECT 1 FROM {table} LIMIT 0").fetchall()  # no result left open
    except duckdb.CatalogException:
        return False
    return built_with(DuckDBEngine(con)) == wanted and fp == fingerprint(con, codes)


#: Lab values the cohort could not grade (units it cannot convert), as every engine reads them.
LAB_ISSUES_SQL = """
SELECT analyte, unit_raw AS unit, unit_status, count(*) AS n_values,
       count(DISTINCT patient_key) AS n_patients
FROM bmc_lab
WHERE unit_status NOT IN ('ok') AND analyte NOT IN ('nrbc_ratio', 'nrbc_abs')
  AND list_contains($result_statuses, coalesce(status, 'unknown'))
GROUP BY analyte, unit_raw, unit_status
ORDER BY n_values DESC, analyte"""


def issue_notes(lab_issues: pd.DataFrame) -> list[str]:
    """One line per unusable unit: what, how many, where to look."""
    return [f"{int(r.n_values)} {r.analyte} value(s) of {int(r.n_patients)} patient(s) not graded: "
            f"{r.unit_status}{f' ({r.unit!r})' if r.unit is not None else ''}; see bmc_lab.unit_status"
            for r in lab_issues.itertuples()]


#: The cohort and funnel as every engine reads them back.
COHORT_SQL = f"SELECT {', '.join(COHORT_COLUMNS)} FROM bmc_cohort ORDER BY index_date, patient_id"
FUNNEL_SQL = ("SELECT kind, step, rule, description, patients, excluded, lost_only_by_rule, "
              "lost_only_with_coded_dx FROM bmc_funnel ORDER BY step")


def cohort_result(cohort: pd.DataFrame, funnel: pd.DataFrame, issues: pd.DataFrame,
                  values: Mapping[str, Any], info: RunInfo | None = None) -> CohortResult:
    """Assemble the result (with its summary counts) from the tables read back."""
    route = dict(zip(funnel.rule, funnel.patients, strict=True))
    counts = {
        "patients": int(route["population"]),
        "breast_cancer": int(route["breast_cancer"]),
        "cohort": len(cohort),
        "histology_only": int(route["histology only"]),
        "smear_only": int(route["smear only"]),
        "both": int(route["both"]),
        "without_coded_marrow_dx": int((~cohort.coded_marrow_dx.astype(bool)).sum()),
    }
    info = info or RunInfo()
    return CohortResult(cohort, funnel, counts, dict(values), issues,
                        info.notes + issue_notes(issues), info.timings)


def read_cohort(engine: Engine, values: Mapping[str, Any], info: RunInfo | None = None
                ) -> CohortResult:
    """The cohort result from the ``bmc_*`` tables as they stand, on either engine; ``values``
    are the parameters they were built with."""
    issues = engine.query(LAB_ISSUES_SQL, {"result_statuses": values["result_statuses"]})
    return cohort_result(engine.query(COHORT_SQL), engine.query(FUNNEL_SQL), issues, values,
                         info)


def build_cohort(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any] | None = None, *,
                 reuse: bool = False, codes: UserCodes | None = None) -> CohortResult:
    """Run the cohort stages on a loaded database and return the cohort and its funnel.

    ``params`` are overrides of :mod:`cohort.parameters` (unknown names raise
    :class:`~cohort.errors.UsageError`). The ``bmc_*`` tables, ``bmc_parameter`` and
    ``bmc_build`` are left in the database for SQL users. With ``reuse``, tables built with
    the same parameters from the same data and queries are read instead of rebuilt, and
    otherwise only the stages a changed parameter reaches are rebuilt (see
    :func:`cohort.runner.run_group`); without it every stage is rebuilt.
    ``codes`` are the user's own reference rows (:mod:`cohort.usercodes`).
    """
    values = resolve(params)
    if reuse and up_to_date(con, values, codes=codes):
        info = RunInfo(notes=["cohort tables reused (same parameters, data and queries)"])
        warnings = stored_warnings(con)
        if warnings is None:  # built before the warnings were kept
            warnings = unread_code_warnings(con, codes)
    else:
        info = run_group(con, "cohort", values, extra=codes.rows if codes else None,
                         reuse=reuse)
        record_parameters(con, values, codes)
        warnings = unread_code_warnings(con, codes)
        con.execute(f"CREATE OR REPLACE TABLE {WARNING_TABLE} (warning VARCHAR)")
        if warnings:
            con.executemany(f"INSERT INTO {WARNING_TABLE} VALUES (?)", [(w,) for w in warnings])
    info.notes.extend(warnings)
    return read_cohort(DuckDBEngine(con), values, info)


#: The funnel's warnings about unmapped codes, kept with the tables they were computed from:
#: they depend only on the data, the code lists and the user's codes (what ``bmc_build``'s
#: fingerprint covers), and computing them reads every coding of the database.
WARNING_TABLE = "bmc_code_warning"


def stored_warnings(con: duckdb.DuckDBPyConnection) -> list[str] | None:
    """The warnings kept by the last build, None when it kept none (an older database)."""
    try:
        rows = con.execute(f"SELECT warning FROM {WARNING_TABLE} ORDER BY rowid").fetchall()
    except duckdb.CatalogException:
        return None
    return [w for (w,) in rows]


def unread_code_warnings(con: duckdb.DuckDBPyConnection, codes: UserCodes | None = None
                         ) -> list[str]:
    """Warnings for the funnel: codes in the data that look like a concept a rule decides on
    (breast cancer, haemoglobin, ...) but that no code list maps (see :mod:`cohort.codes`).
    Reads the ``bmc_coded`` table just built or found up to date with the same codes."""
    from .codes import code_inventory

    return code_inventory(con, codes, built=True).rule_warnings()


def ensure_built(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any] | None = None,
                 group: str = "cohort", codes: UserCodes | None = None) -> dict[str, Any]:
    """Build the ``bmc_*`` tables unless they exist with exactly these parameters, user
    codes and data."""
    values = resolve(params)
    table = "bmc_cohort" if group == "cohort" else "bmc_screen"
    if not up_to_date(con, values, table, codes):
        build_cohort(con, values, codes=codes, reuse=True)
        if group == "screen":
            run_group(con, "screen", values, extra=codes.rows if codes else None)
    return values
