"""`bmc cohort|screen --engine spark`: the same CSV as on DuckDB; clear messages otherwise."""
from __future__ import annotations

from typer.testing import CliRunner

from cohort.cli import app


def test_cohort_csv_is_the_duckdb_csv(spark, parquet_1000, duck_1000):
    run = CliRunner()
    on_duck = run.invoke(app, ["cohort", "--db", str(duck_1000), "--format", "csv"])
    on_spark = run.invoke(app, ["cohort", "--engine", "spark", "--spark-master", "local[2]",
                                "--db", str(parquet_1000), "--format", "csv"])
    assert on_duck.exit_code == 0 and on_spark.exit_code == 0
    assert on_spark.stdout == on_duck.stdout


def test_spark_needs_an_export_folder(spark, duck_1000):
    done = CliRunner().invoke(app, ["cohort", "--engine", "spark", "--db", str(duck_1000)])
    assert done.exit_code == 1
    assert "not a Parquet export (no _export.json); with --engine spark, --db is a folder " \
           "written by `bmc export" in done.output


def test_bad_engine_and_conf_are_usage_errors(tmp_path):
    run = CliRunner()
    bad = run.invoke(app, ["cohort", "--engine", "spork", "--db", str(tmp_path)])
    assert bad.exit_code == 2 and "--engine must be duckdb or spark, not 'spork'" in bad.output
