"""The database edge of the outcome analyses: run ``queries/outcomes/*.sql`` with bound
parameters and return plain DataFrames (:class:`Records`). Nothing here computes a result.

Every query takes the patient keys to read (``$patient_keys``, 'Patient/<id>') and, where it
maps codes to printed values, the path of ``queries/outcomes/codes.csv``. What the cohort
already computes is read from its tables, never recomputed: value-set membership
(``bmc_coded``, from ``queries/reference/valuesets.csv``), blood counts and their grades
(``bmc_lab``, ``bmc_lab_grade``), proving marrow reports (``bmc_histology``); result statuses
are the ``result_statuses`` the cohort was built with (table ``bmc_parameter``).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from ..errors import DatabaseError, QueryError
from ..paths import queries_dir

REQUIRED_TABLES = ("patient", "condition", "observation", "observation_reference_range",
                   "medication_administration", "medication", "procedure", "diagnostic_report",
                   "encounter")
#: Tables of the cohort build (``bmc cohort``) the outcomes read.
COHORT_TABLES = ("bmc_coded", "bmc_scope", "bmc_lab", "bmc_lab_grade", "bmc_histology")


def _paths() -> dict[str, str]:
    q = queries_dir()
    return {
        "codes": str(q / "outcomes" / "codes.csv"),
    }


def regimen_table() -> pd.DataFrame:
    """``queries/outcomes/regimens.csv``: regimen name, ingredient set, cycle length."""
    df = pd.read_csv(queries_dir() / "outcomes" / "regimens.csv", dtype=str)
    df["cycle_days"] = df["cycle_days"].astype(int)
    return df


def run_query(con: duckdb.DuckDBPyConnection, name: str, **params) -> pd.DataFrame:
    """Run ``queries/outcomes/<name>.sql`` binding only the ``$parameters`` it uses."""
    path = queries_dir() / "outcomes" / f"{name}.sql"
    sql = path.read_text(encoding="utf-8")
    bound = {k: v for k, v in {**_paths(), **params}.items() if f"${k}" in sql}
    try:
        df = con.execute(sql, bound).df()
    except duckdb.Error as e:
        raise QueryError(f"{path.name}: {str(e).splitlines()[0]}") from e
    for col in df.columns:  # DATE columns as datetime.date (None when missing)
        if pd.api.types.is_datetime64_any_dtype(df[col]):
            df[col] = [None if pd.isna(x) else x.date() for x in df[col]]
    return df


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def check_tables(con: duckdb.DuckDBPyConnection) -> None:
    have = _tables(con)
    missing = [t for t in REQUIRED_TABLES if t not in have]
    if missing:
        raise DatabaseError(f"the database has no table {', '.join(missing)}: load FHIR data "
                            "first with `bmc load PATH --db FILE`")
    missing = missing_cohort_tables(con)
    if missing:
        raise DatabaseError(f"the database has no table {', '.join(missing)}: build the cohort "
                            "first (`bmc cohort --db FILE`)")


def missing_cohort_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The cohort tables the outcomes read that the database lacks (all built by ``bmc cohort``)."""
    have = _tables(con)
    return [t for t in COHORT_TABLES if t not in have]


def outside_scope(con: duckdb.DuckDBPyConnection, patient_keys: Iterable[str]) -> list[str]:
    """Patients not in ``bmc_scope``: the cohort keeps no blood counts of theirs."""
    keys = sorted(set(patient_keys))
    inside = {k for (k,) in con.execute(
        "SELECT patient_key FROM bmc_scope WHERE list_contains($keys, patient_key)",
        {"keys": keys}).fetchall()}
    return [k for k in keys if k not in inside]


@dataclass(frozen=True)
class Records:
    """The FHIR facts the analyses need, for one set of patients (keys 'Patient/<id>')."""

    patients: pd.DataFrame
    breast_cancer: pd.DataFrame
    tumour_facts: pd.DataFrame
    metastases: pd.DataFrame
    marrow_reports: pd.DataFrame
    blood_counts: pd.DataFrame
    administrations: pd.DataFrame
    disease_status: pd.DataFrame
    adverse_events: pd.DataFrame
    chemotherapy_not_done: pd.DataFrame

    def subset(self, patient_keys: Iterable[str]) -> Records:
        keys = set(patient_keys)
        return Records(**{f.name: getattr(self, f.name)[
            getattr(self, f.name)["patient_key"].isin(keys)].reset_index(drop=True)
            for f in fields(self)})


def read_records(con: duckdb.DuckDBPyConnection, patient_keys: Iterable[str]) -> Records:
    """Read every fact the analyses use for these patients (one query per table)."""
    check_tables(con)
    keys = sorted(set(patient_keys))
    statuses = built_parameters(con)["result_statuses"]
    return Records(**{f.name: run_query(con, f.name, patient_keys=keys, result_statuses=statuses)
                      for f in fields(Records)})


def built_parameters(con: duckdb.DuckDBPyConnection) -> dict:
    """The parameters the cohort tables were built with (``bmc_parameter``), defaults for any
    the build did not record: the outcomes read results as the cohort did."""
    from ..definition import built_with
    from ..parameters import BY_NAME, resolve

    recorded = {k: v for k, v in (built_with(con) or {}).items() if k in BY_NAME}
    return resolve(recorded)


def breast_cancer_patients(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every patient with a breast-cancer Condition and its first onset (incidence denominator)."""
    check_tables(con)
    df = run_query(con, "breast_cancer", patient_keys=None)
    return (df.groupby("patient_key", as_index=False)["onset_date"].min()
              .rename(columns={"onset_date": "first_onset"}))


def read_found_cohort(con: duckdb.DuckDBPyConnection, table: str = "bmc_cohort") -> pd.DataFrame:
    """The cohort the tool found: ``patient_id``, ``index_date``, ``route`` from ``table``.

    Raises :class:`DatabaseError` when the table is missing (build the cohort first).
    """
    have = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if table not in have:
        raise DatabaseError(f"the database has no {table} table: build the cohort first "
                            "(`bmc cohort --db FILE`)")
    cols = {r[0] for r in con.execute(f'DESCRIBE "{table}"').fetchall()}
    want = [c for c in ("patient_id", "index_date", "route") if c in cols]
    if "patient_id" not in want or "index_date" not in want:
        raise DatabaseError(f"table {table} lacks patient_id/index_date (has {sorted(cols)})")
    df = con.execute(f'SELECT {", ".join(want)} FROM "{table}"').df()
    df["index_date"] = pd.to_datetime(df["index_date"]).dt.date
    if "route" not in df:
        df["route"] = None
    return df


def as_key(patient_id: str) -> str:
    return patient_id if patient_id.startswith("Patient/") else f"Patient/{patient_id}"


def as_id(patient_key: str) -> str:
    return patient_key.removeprefix("Patient/")


def to_date(value) -> date | None:
    """A pandas/duckdb date-ish value as ``datetime.date`` (None for missing)."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, date):
        return value
    return pd.Timestamp(value).date()


def table_path(name: str) -> Path:
    return queries_dir() / "outcomes" / f"{name}.sql"
