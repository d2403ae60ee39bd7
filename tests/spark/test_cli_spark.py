"""`bmc cohort|screen|evidence|check --engine spark`: the same output as on DuckDB; the lake
keeps the bmc_* tables and reuses them only while they match; clear messages otherwise."""
from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from cohort.cli import app
from cohort.parameters import resolve
from cohort.spark_runner import BUILD_MANIFEST, lake_fingerprint, lake_up_to_date, stored_build

SPARK = ["--engine", "spark", "--spark-master", "local[2]"]


def _both(args: list[str], duck_db, lake) -> tuple:
    run = CliRunner()
    on_duck = run.invoke(app, [*args, "--db", str(duck_db)])
    on_spark = run.invoke(app, [*args, *SPARK, "--db", str(lake)])
    return on_duck, on_spark


def test_cohort_csv_is_the_duckdb_csv_and_reuses_the_stored_tables(spark_screen, lake,
                                                                   duck_db):
    on_duck, on_spark = _both(["cohort", "--format", "csv"], duck_db, lake)
    assert on_duck.exit_code == 0 and on_spark.exit_code == 0
    assert on_spark.stdout == on_duck.stdout
    assert "cohort tables reused (same parameters, lake files and queries)" in on_spark.stderr


def test_a_spark_run_leaves_its_tables_and_parameters_in_the_lake(spark_screen, lake):
    built = stored_build(lake)
    assert built["groups"] == ["cohort", "screen"]
    assert {"bmc_cohort", "bmc_evidence", "bmc_screen", "bmc_parameter"} <= set(built["tables"])
    assert all((lake / t).is_dir() for t in built["tables"])
    assert built["parameters"]["smear_window_days"] == "14"


def test_evidence_of_a_cohort_patient_and_of_an_outsider_equal_duckdb(spark_screen,
                                                                      lake, duck_db):
    inside = spark_screen.cohort.cohort.patient_id.iloc[0]
    outside = spark_screen.screen.patient_id[spark_screen.screen.tier == "excluded"].iloc[0]
    for pid in (inside, outside):
        on_duck, on_spark = _both(["evidence", pid, "--format", "csv"], duck_db, lake)
        assert on_duck.exit_code == 0 and on_spark.exit_code == 0, on_spark.output
        assert on_spark.stdout == on_duck.stdout
        assert on_spark.stderr.splitlines()[-5:] == on_duck.stderr.splitlines()[-5:]


def test_evidence_of_an_unknown_patient_exits_1(spark_screen, lake):
    done = CliRunner().invoke(app, ["evidence", "no-such-patient", *SPARK,
                                    "--db", str(lake)])
    assert done.exit_code == 1
    assert "no Patient with id 'no-such-patient' in this database" in done.output


def test_check_against_the_truth_labels_equals_duckdb(spark_screen, lake, duck_db,
                                                      bulk_1000):
    truth = str(bulk_1000 / "truth_labels.csv")
    on_duck, on_spark = _both(["check", "--truth", truth, "--format", "json"], duck_db,
                              lake)
    assert on_duck.exit_code == 0 and on_spark.exit_code == 0
    assert json.loads(on_spark.stdout) == json.loads(on_duck.stdout)


def test_spark_needs_a_lake_folder(spark, duck_db):
    done = CliRunner().invoke(app, ["cohort", *SPARK, "--db", str(duck_db)])
    assert done.exit_code == 1
    assert "not a Parquet export (no _export.json); with --engine spark, --db is a folder " \
           "written by `bmc export" in done.output


def test_bad_engine_and_conf_are_usage_errors(tmp_path):
    run = CliRunner()
    bad = run.invoke(app, ["cohort", "--engine", "spork", "--db", str(tmp_path)])
    assert bad.exit_code == 2 and "--engine must be duckdb or spark, not 'spork'" in bad.output
    conf = run.invoke(app, ["check", "--engine", "spark", "--spark-conf", "memory",
                            "--truth", str(tmp_path), "--db", str(tmp_path)])
    assert conf.exit_code == 2 and "expected key=value" in conf.output


# -- when stored tables are stale (no Spark needed: the decision is on files) ------------------

def _lake_with_stored_cohort(tmp_path, params=None) -> tuple:
    lake = tmp_path / "lake"
    (lake / "observation" / "patient_shard=a").mkdir(parents=True)
    data = lake / "observation" / "patient_shard=a" / "data_0.parquet"
    pd.DataFrame({"x": [1]}).to_parquet(data)
    (lake / "_export.json").write_text(json.dumps(
        {"tables": [{"name": "observation", "rows": 1}]}))
    values = resolve(params)
    from cohort.parameters import BY_NAME

    (lake / BUILD_MANIFEST).write_text(json.dumps({
        "fingerprint": lake_fingerprint(lake), "groups": ["cohort"], "tables": [],
        "parameters": {k: BY_NAME[k].show(v) for k, v in values.items()}}))
    return lake, data, values


def test_stored_tables_are_reused_with_the_same_parameters_and_files(tmp_path):
    lake, _, values = _lake_with_stored_cohort(tmp_path)
    assert lake_up_to_date(lake, values, "cohort")
    assert not lake_up_to_date(lake, values, "screen")  # only the cohort group was stored


def test_other_parameters_make_the_stored_tables_stale(tmp_path):
    lake, _, _ = _lake_with_stored_cohort(tmp_path)
    assert not lake_up_to_date(lake, resolve({"smear_window_days": 7}), "cohort")


def test_a_rewritten_data_file_with_the_same_row_count_makes_them_stale(tmp_path):
    lake, data, values = _lake_with_stored_cohort(tmp_path)
    pd.DataFrame({"x": [2, 3]}).to_parquet(data)  # a re-export of other data
    assert not lake_up_to_date(lake, values, "cohort")

