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

from .report import write_document
from .run import ReportResult, build_report, read_id_list


def write_report_spark(spark, lake: Path, out_dir: Path, *, ids_file: Path | None = None,
                       cutoff: date | None = None, params: Mapping[str, Any] | None = None,
                       progress: Callable[[str], None] = lambda _: None
                       ) -> tuple[ReportResult, dict]:
    """``bmc report --engine spark --db LAKE``: build the report from a Parquet lake (a folder
    written by ``bmc export``) and write it into ``out_dir``, as :func:`.run.write_report`
    does from a DuckDB file; returns the result and the written files.

    The cohort tables come from :func:`cohort.spark_runner.lake_engine`: read from the lake
    when stored there up to date, else built on Spark and stored. ``params`` are cohort
    parameter overrides (``--param``); without them the report reads the cohort the lake
    holds, built with whatever parameters it was (as the DuckDB report reads the database's
    ``bmc_*`` tables), and only a lake without one gets the defaults."""
    from ..parameters import BY_NAME
    from ..spark_runner import lake_engine, stored_build

    if params is None:
        shown = (stored_build(lake) or {}).get("parameters", {})
        params = {k: v for k, v in shown.items() if k in BY_NAME}
    ids = read_id_list(ids_file) if ids_file else None
    progress("registering the lake; the cohort tables are built on Spark if missing or stale")
    engine = lake_engine(spark, lake, params, group="cohort")
    result = build_report(engine, ids=ids, cutoff=cutoff, progress=progress)
    progress(f"writing {out_dir}")
    return result, write_document(result.document, out_dir)
