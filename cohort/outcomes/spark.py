"""``bmc report`` on Spark: the outcome analyses over a Parquet lake.

The heavy part -- the cohort stages and the joins of ``queries/outcomes/`` over every
resource -- runs on the cluster through a :class:`~cohort.engine.SparkEngine`; what comes back
to the driver is the per-patient facts of the analysed patients (a few hundred rows per
patient) and the breast-cancer onsets for the incidence, and the analyses run on them in
pandas, the same code as on DuckDB (:func:`.run.build_report`). So both engines print the
same report from the same data (tests/spark/test_parity_outcomes.py).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from ..engine import SparkEngine
from ..parameters import resolve
from .report import write_document
from .run import ReportResult, build_report, read_id_list


def lake_report_engine(spark, lake: str | Path, params: Mapping[str, Any] | None = None
                       ) -> SparkEngine:
    """A Spark engine over ``lake`` with the cohort tables the outcomes read, built with
    ``params`` (defaults for the rest) when the lake does not hold them up to date.

    Uses :func:`cohort.spark_runner.lake_engine` (tables stored in the lake, reused by later
    runs); without it, the lake is registered and the cohort stages are built in this
    session, and ``bmc_parameter`` is registered from the values used, so the outcomes read
    results with the ``result_statuses`` the cohort was built with."""
    from .. import spark_runner

    values = resolve(params)
    lake_engine = getattr(spark_runner, "lake_engine", None)
    if lake_engine is not None:
        return lake_engine(spark, lake, values, group="cohort")
    import pandas as pd

    from ..parameters import BY_NAME

    spark_runner.register_export(spark, lake)
    spark_runner.run_group_spark(spark, "cohort", values)
    engine = SparkEngine(spark)
    engine.register("bmc_parameter", pd.DataFrame(
        [(k, BY_NAME[k].show(v), BY_NAME[k].why) for k, v in values.items()],
        columns=["name", "value", "why"]))
    return engine


def write_report_spark(spark, lake: Path, out_dir: Path, *, ids_file: Path | None = None,
                       cutoff: date | None = None, params: Mapping[str, Any] | None = None,
                       progress: Callable[[str], None] = lambda _: None
                       ) -> tuple[ReportResult, dict]:
    """``bmc report --engine spark --db LAKE``: build the report from a Parquet lake (a folder
    written by ``bmc export``) and write it into ``out_dir``, as :func:`.run.write_report`
    does from a DuckDB file. ``params`` are cohort parameter overrides (``--param``), used
    when the cohort tables have to be built; returns the result and the written files."""
    ids = read_id_list(ids_file) if ids_file else None
    progress("registering the lake; the cohort tables are built on Spark if missing or stale")
    engine = lake_report_engine(spark, lake, params)
    result = build_report(engine, ids=ids, cutoff=cutoff, progress=progress)
    progress(f"writing {out_dir}")
    return result, write_document(result.document, out_dir)
