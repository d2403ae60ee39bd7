"""A real DuckDB built once per test run from the committed sample: loaded with the ETL, the
cohort tables built, and the outcomes report computed (shared by the outcome/report tests)."""
from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_bundles"


@cache
def sample_db() -> Path:
    from cohort.parameters import defaults
    from cohort.runner import open_database, run_group
    from etl.load import load

    db = Path(tempfile.mkdtemp(prefix="bmc-outcomes-test-")) / "sample.duckdb"
    load(db, [SAMPLE / "bundles"])
    con = open_database(db)
    try:
        run_group(con, "cohort", defaults())
    finally:
        con.close()
    return db


@cache
def sample_report():
    """(ReportResult, written files) for the sample with the paper's 22 listed."""
    from cohort.outcomes.run import write_report

    out = Path(tempfile.mkdtemp(prefix="bmc-outcomes-report-"))
    return write_report(sample_db(), out, ids_file=SAMPLE / "roles.csv")
