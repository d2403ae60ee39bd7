"""The cohort rerun over a parameter grid: reuse of stages never changes an answer, the user's
tables are left alone, and the command's contract (columns, formats, exit codes)."""
from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cohort.check import check, read_truth
from cohort.cli import app
from cohort.definition import build_cohort
from cohort.errors import UsageError
from cohort.outcomes.sensitivity import (
    RESULT_COLUMNS,
    GridAxis,
    grid_points,
    one_at_a_time,
    read_grid,
    run_sensitivity,
    stage_dependencies,
)
from cohort.parameters import defaults
from cohort.runner import open_database, stages
from tests.cohort.outcomes_db import SAMPLE, sample_db

TRUTH = SAMPLE / "truth_labels.csv"


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    """A private copy of the sample database (the tests rebuild its cohort tables)."""
    copy = tmp_path_factory.mktemp("sens") / "sample.duckdb"
    shutil.copy(sample_db(), copy)
    return copy


def test_stage_dependencies_follow_the_tables_a_stage_reads():
    deps = stage_dependencies(stages("cohort"))
    assert "smear_window_days" in deps["bmc_smear"] and "smear_window_days" in deps["bmc_cohort"]
    assert "smear_window_days" not in deps["bmc_lab_grade"]
    assert "anemia_grade4" in deps["bmc_lab_grade"] and "anemia_grade4" in deps["bmc_smear"]
    assert "coded_condition" not in deps["bmc_smear"]
    assert "coded_condition" in deps["bmc_histology"] and "coded_condition" in deps["bmc_cohort"]


def test_full_grid_and_one_at_a_time_both_contain_the_default():
    axes = (GridAxis("smear_window_days", (0, 14), ""), GridAxis("exclude_alt_causes", (True, False), ""))
    base = defaults()
    full = grid_points(axes, base)
    assert len(full) == 4 and sum(p == base for p in full) == 1
    single = one_at_a_time(axes, base)
    assert single[0] == base and len(single) == 3
    outside = grid_points((GridAxis("smear_window_days", (0, 7), ""),), base)
    assert outside[-1] == base and len(outside) == 3  # the default added when the grid lacks it


def test_grid_file_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "grid.csv"
    bad.write_text("parameter,values,why\nsmear_window_days,0;7,x\nsmear_widow_days,0,x\n")
    with pytest.raises(UsageError, match=r"grid.csv line 3: unknown parameter 'smear_widow_days'"):
        read_grid(bad)
    bad.write_text("parameter,values,why\ncytopenia_min_grade,1;0,x\n")
    with pytest.raises(UsageError, match=r"grid.csv line 2: .*must be >= 1"):
        read_grid(bad)


def test_the_shipped_grid_is_the_issue_grid():
    grid = {a.parameter: a.values for a in read_grid()}
    assert grid["smear_window_days"] == (0, 7, 14, 21, 28)
    assert grid["cytopenia_min_grade"] == (1, 2)
    assert set(grid["exclude_alt_causes"]) == {True, False}
    assert set(grid["anemia_grade4"]) == {True, False}
    assert "never" in grid["coded_condition"] and "unless-lab-evidence" in grid["coded_condition"]


def test_each_grid_point_equals_a_full_build_with_its_parameters(db):
    axes = (GridAxis("smear_window_days", (7, 14, 21), ""),
            GridAxis("exclude_alt_causes", (True, False), ""),
            GridAxis("coded_condition", ("unless-lab-evidence", "proof"), ""))
    con = open_database(db, read_only=True)
    try:
        result = run_sensitivity(con, axes=axes, truth=read_truth(TRUTH))
    finally:
        con.close()
    assert result.stage_builds < result.stage_builds_without_reuse
    con = open_database(db)
    try:
        for row in result.table.itertuples():
            params = {"smear_window_days": int(row.smear_window_days),
                      "exclude_alt_causes": row.exclude_alt_causes == "true",
                      "coded_condition": row.coded_condition}
            built = build_cohort(con, params)
            assert row.cohort == len(built.cohort), params
            truth = check(con, TRUTH, params)
            assert (row.tp, row.fp, row.fn) == (truth.tp, truth.fp, truth.fn), params
    finally:
        con.close()


def test_the_users_tables_are_left_as_they_were(db):
    con = open_database(db)
    try:
        build_cohort(con, {"smear_window_days": 0})
        before = con.execute("SELECT count(*) FROM bmc_cohort").fetchone()
        result = run_sensitivity(con, axes=(GridAxis("smear_window_days", (28,), ""),))
        assert con.execute("SELECT count(*) FROM bmc_cohort").fetchone() == before
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone() == (0,)
        assert con.execute("SELECT value FROM bmc_parameter WHERE name = 'smear_window_days'"
                           ).fetchone() == ("0",)
    finally:
        con.close()
    default = result.default_row
    assert default["is_default"] and default["removed"] == 0 and default["added"] == 0
    wide = result.table[~result.table["is_default"]].iloc[0]
    assert wide["overlap_default"] + wide["removed"] == default["cohort"]
    assert wide["overlap_default"] + wide["added"] == wide["cohort"]


def test_median_os_of_the_default_point_is_the_found_cohorts(db):
    from cohort.engine import DuckDBEngine
    from cohort.outcomes.run import build_report

    con = open_database(db)
    try:
        build_cohort(con)
    finally:
        con.close()
    con = open_database(db, read_only=True)
    try:
        result = run_sensitivity(con, axes=(GridAxis("smear_window_days", (14,), ""),))
        report = build_report(DuckDBEngine(con))
    finally:
        con.close()
    km = report.groups["found cohort"].km_bmc
    assert result.default_row["median_os_months"] == pytest.approx(km.median)
    assert result.default_row["deaths"] == km.events


def test_cli_writes_the_grid_as_csv_with_the_contract_columns(db, tmp_path):
    grid = tmp_path / "grid.csv"
    grid.write_text("parameter,values,why\nsmear_window_days,0;14,x\n")
    r = CliRunner().invoke(app, ["sensitivity", "--db", str(db), "--format", "csv",
                                 "--truth", str(TRUTH), "--grid", str(grid)])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 2 and set(RESULT_COLUMNS) <= set(rows[0])
    assert [row["is_default"] for row in rows] == ["false", "true"]


def test_cli_usage_errors(db, tmp_path):
    r = CliRunner().invoke(app, ["sensitivity", "--db", str(db), "--format", "parquet"])
    assert r.exit_code == 2 and "--format must be table, csv or json" in r.stderr
    r = CliRunner().invoke(app, ["sensitivity", "--db", str(db), "--truth", str(tmp_path / "no.csv")])
    assert r.exit_code == 2 and "no such truth file" in r.stderr
    r = CliRunner().invoke(app, ["sensitivity", "--db", str(db), "--grid", str(tmp_path / "g.csv")])
    assert r.exit_code == 2 and "no such file" in r.stderr
    r = CliRunner().invoke(app, ["sensitivity", "--db", str(db), "--param", "smear_window=3"])
    assert r.exit_code == 2 and "unknown parameter 'smear_window'" in r.stderr


def test_report_adds_the_section_only_when_asked(db, tmp_path):
    from cohort.outcomes.run import write_report

    con = open_database(db)
    try:
        build_cohort(con)
    finally:
        con.close()
    _, plain = write_report(db, tmp_path / "plain")
    assert "sensitivity.csv" not in plain
    assert "`bmc report --sensitivity` adds it" in plain["markdown"].read_text()
    _, asked = write_report(db, tmp_path / "asked", truth_file=TRUTH, sensitivity=True)
    with asked["sensitivity.csv"].open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    default = next(r for r in rows if r["variant"] == "default")
    truth = check(open_database(db, read_only=True), TRUTH)
    assert (int(default["cohort"]), default["sensitivity"]) == (
        truth.tp + truth.fp, f"{truth.sensitivity:.3f}")
    assert {r["variant"] for r in rows} >= {"smear_window_days=0", "exclude_alt_causes=false",
                                           "cytopenia_min_grade=2"}
    assert "sensitivity.png" in asked
