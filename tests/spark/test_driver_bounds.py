"""What must not depend on the driver, run as a user would (``bmc load --engine spark`` in its
own process, so the session gets settings the shared test session cannot change):

* a large bad export finishes like DuckDB's (exit 3, every rejected line in ``load_error``)
  even with a 1 MiB ``spark.driver.maxResultSize``: rejected lines are classified and written
  on the executors, their text never collected;
* executors that cannot start Python end in one line naming ``PYSPARK_PYTHON`` and what to do,
  never a Java or Python traceback."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import duckdb
import pytest

from etl.spark.session import java_version

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(java_version() is None, reason="no Java runtime")]
pytest.importorskip("pyspark")


def _patient(i: int) -> str:
    return json.dumps({"resourceType": "Patient", "id": f"p{i}", "gender": "female",
                       "birthDate": "1961-04-02"})


def _bad_export(folder, n_bad: int):
    """Patients, and ``n_bad`` Observations cut mid-record, each ~1 KB of text (a truncated
    export: 3,000 of them are ~3 MB, three times a 1 MiB maxResultSize)."""
    note = "Hemoglobin measured on the morning ward round; " * 20
    lines = [_patient(i) for i in range(20)]
    for i in range(n_bad):
        full = json.dumps({"resourceType": "Observation", "id": f"o{i}", "status": "final",
                           "note": [{"text": note}], "subject": {"reference": "Patient/p1"}})
        lines.append(full[:-5])  # cut: invalid JSON
    path = folder / "export.ndjson"
    path.write_text("\n".join(lines) + "\n")
    return path


def _bmc(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cohort.cli", *args], capture_output=True,
                          text=True, timeout=1800, env={**os.environ, **(env or {})})


def test_three_thousand_bad_lines_pass_a_one_mib_max_result_size_like_duckdb(tmp_path):
    src = _bad_export(tmp_path, 3000)
    assert src.stat().st_size > 3 * (1 << 20)
    duck = _bmc("load", "--db", str(tmp_path / "db.duckdb"), str(src))
    done = _bmc("load", "--engine", "spark", "--spark-master", "local[1]",
                "--spark-conf", "spark.driver.maxResultSize=1m",
                "--db", str(tmp_path / "lake"), str(src))
    assert duck.returncode == 3
    assert done.returncode == 3, done.stderr[-2000:]
    con = duckdb.connect()
    spark_rows = con.execute(
        f"SELECT line, reason FROM read_parquet('{tmp_path}/lake/load_error/*.parquet') "
        f"ORDER BY line").fetchall()
    duck_rows = duckdb.connect(str(tmp_path / "db.duckdb"), read_only=True).execute(
        "SELECT line, reason FROM load_error ORDER BY line").fetchall()
    assert len(spark_rows) == 3000
    assert spark_rows == duck_rows


def test_executors_without_python_end_in_one_line_naming_pyspark_python(tmp_path):
    src = _bad_export(tmp_path, 1)  # a rejected line: its reason is decided by a Python UDF
    done = _bmc("load", "--engine", "spark", "--spark-master", "local[1]",
                "--db", str(tmp_path / "lake"), str(src),
                env={"PYSPARK_PYTHON": "/nonexistent/bin/python3"})
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert "executors could not start Python (PYSPARK_PYTHON=/nonexistent/bin/python3)" in last
    assert "Traceback" not in done.stderr
    assert "\tat " not in done.stderr  # no Java stack frame
    assert not (tmp_path / "lake").exists()
