"""The cohort and screen stages of ``queries/bmc/`` on Spark, over a Parquet export.

The stage files are the DuckDB ones, unchanged: each is transpiled by :mod:`cohort.dialect`
and run with its ``$name`` parameters bound by Spark (``spark.sql(text, args=...)``). Each
stage is materialised (``localCheckpoint``) and registered as a temporary view named like the
DuckDB table (``bmc_lab``, ...), so later stages and SQL users read it the same way. The input
is a folder written by ``bmc export``: one sub-folder of Parquet per table. Only the small results (cohort, funnel, screen, unit issues)
come back to the driver as pandas.
"""
from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from etl.export import MANIFEST, SHARD_COLUMN
from etl.spark.session import error_message

from .definition import COHORT_SQL, FUNNEL_SQL, CohortResult, cohort_result
from .dialect import DialectError, to_spark
from .errors import DatabaseError, QueryError
from .parameters import resolve
from .reference import REFERENCE_FILES, load_reference
from .runner import REQUIRED_TABLES, RunInfo, bind_values, stages
from .screen import SCREEN_COLUMNS, ScreenResult

_SPARK_TYPES = {"DOUBLE": "double", "INTEGER": "int", "BOOLEAN": "boolean", "VARCHAR": "string"}


def register_export(spark, folder: str | Path) -> list[str]:
    """Register every table folder of an export as a temporary view; returns their names."""
    root = Path(folder)
    if not (root / MANIFEST).is_file():
        raise DatabaseError(f"{folder}: not a Parquet export (no {MANIFEST}); with --engine "
                            f"spark, --db is a folder written by "
                            f"`bmc export --db FILE --out {folder}`")
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    names = []
    for table in manifest["tables"]:
        df = spark.read.parquet(str(root / table["name"]))
        if SHARD_COLUMN in df.columns:
            df = df.drop(SHARD_COLUMN)
        df.createOrReplaceTempView(table["name"])
        names.append(table["name"])
    missing = [t for t in REQUIRED_TABLES if t not in names]
    if missing:
        raise DatabaseError(f"{folder}: the export has no {', '.join(missing)}; export a "
                            f"loaded database with `bmc export --db FILE --out DIR`")
    return names


def register_reference(spark) -> dict[str, int]:
    """The ``ref_*`` tables from ``queries/reference/`` (checked exactly as for DuckDB)."""
    con = duckdb.connect()
    try:
        counts = load_reference(con)
        for spec in REFERENCE_FILES:
            rows = con.execute(f"SELECT * FROM {spec.table}").fetchall()
            schema = ", ".join(f"`{c}` {_SPARK_TYPES[t]}" for c, t in spec.columns)
            spark.createDataFrame(rows, schema).createOrReplaceTempView(spec.table)
    finally:
        con.close()
    return counts


def _args(params: Mapping[str, Any], names: tuple[str, ...]):
    from pyspark.sql import functions as F

    out = {}
    for name in names:
        value = bind_values(params)[name]
        out[name] = F.array(*[F.lit(v) for v in value]) if isinstance(value, list) else value
    return out


def run_group_spark(spark, group: str, params: Mapping[str, Any],
                    folder: Path | None = None) -> RunInfo:
    """Every stage of ``group`` in order, each materialised as a temporary view."""
    info = RunInfo()
    register_reference(spark)
    for stage in stages(group, folder):
        missing = [p for p in stage.params if p not in params]
        if missing:
            raise QueryError(f"{stage.path.name}: parameter(s) {', '.join(missing)} not "
                             f"declared in cohort/parameters.py")
        try:
            text = to_spark(stage.sql)
        except DialectError as e:
            raise QueryError(f"{stage.path.name}: {e}") from None
        started = time.perf_counter()
        try:
            df = spark.sql(text, args=_args(params, stage.params)).localCheckpoint(eager=True)
        except Exception as e:  # pyspark's errors: AnalysisException, Py4JJavaError, ...
            raise QueryError(f"{stage.path.name} (building {stage.table} on Spark): "
                             f"{error_message(e)}") from None
        df.createOrReplaceTempView(stage.table)
        info.timings[stage.table] = time.perf_counter() - started
    return info


_LAB_ISSUES = """
SELECT analyte, unit_raw AS unit, unit_status, count(*) AS n_values,
       count(DISTINCT patient_key) AS n_patients
FROM bmc_lab
WHERE unit_status NOT IN ('ok') AND analyte NOT IN ('nrbc_ratio', 'nrbc_abs')
  AND list_contains($result_statuses, coalesce(status, 'unknown'))
GROUP BY analyte, unit_raw, unit_status
ORDER BY n_values DESC, analyte"""


def cohort_spark(spark, export: str | Path, params: Mapping[str, Any] | None = None
                 ) -> CohortResult:
    """The cohort over a Parquet export, on Spark; the same result object as on DuckDB."""
    values = resolve(params)
    register_export(spark, export)
    info = run_group_spark(spark, "cohort", values)
    issues = spark.sql(to_spark(_LAB_ISSUES),
                       args=_args(values, ("result_statuses",))).toPandas()
    return cohort_result(spark.sql(COHORT_SQL).toPandas(), spark.sql(FUNNEL_SQL).toPandas(),
                         issues, values, info)


def screen_spark(spark, export: str | Path, params: Mapping[str, Any] | None = None
                 ) -> ScreenResult:
    """The cohort, then the screen, over a Parquet export on Spark."""
    cohort = cohort_spark(spark, export, params)
    info = run_group_spark(spark, "screen", cohort.params)
    screen = spark.sql(f"SELECT {', '.join(SCREEN_COLUMNS)} FROM bmc_screen "
                       f"ORDER BY rank").toPandas()
    counts = {t: int((screen.tier == t).sum()) for t in ("1", "2", "excluded")}
    return ScreenResult(screen, counts, cohort, cohort.notes + info.notes,
                        {**cohort.timings, **info.timings})


def table_pandas(spark, table: str) -> pd.DataFrame:
    """A (small) registered table as pandas, for tests and reports."""
    return spark.table(table).toPandas()
