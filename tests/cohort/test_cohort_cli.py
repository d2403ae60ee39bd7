"""`bmc cohort`, `bmc screen`, `bmc evidence`, `bmc check`: exit codes, output columns and the
exact user-facing messages."""
from __future__ import annotations

import csv
import io
import json

import duckdb
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cohort.cli import app
from tests.cohort.test_cohort_charts import Chart, at, build_db

runner = CliRunner()


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    smear = Chart("smear-case")
    smear.breast_cancer()
    smear.bone_mets()
    smear.cbc(at("2004-06-01"), hgb=9.2, nrbc=4)
    hist = Chart("histology-case")
    hist.breast_cancer()
    hist.marrow_report(at("2005-02-03"))
    other = Chart("no-bmc")
    other.breast_cancer()
    build_db(tmp, [smear, hist, other]).close()
    return tmp / "bulk.duckdb"


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_cohort_prints_the_cohort_to_stdout_and_the_funnel_to_stderr(db):
    res = run("cohort", "--db", db, "--format", "csv")
    assert res.exit_code == 0, res.output
    out = rows(res.stdout)
    assert list(out[0])[:3] == ["patient_id", "index_date", "route"]
    assert [(r["patient_id"], r["index_date"], r["route"]) for r in out] == [
        ("smear-case", "2004-06-01", "smear"), ("histology-case", "2005-02-03", "histology")]
    assert "attrition, per person" in res.stderr
    assert "cohort 2 of 3 patients (histology only 1, smear only 1, both 0; without a coded " \
           "marrow diagnosis 2)" in res.stderr


def test_cohort_json_has_iso_dates_and_nulls(db):
    res = run("cohort", "--db", db, "--format", "json")
    data = json.loads(res.stdout)
    assert data[0]["index_date"] == "2004-06-01" and data[0]["histology_date"] is None


def test_cohort_parquet_goes_to_out_with_date_columns(db, tmp_path):
    out = tmp_path / "c.parquet"
    res = run("cohort", "--db", db, "--format", "parquet", "--out", out)
    assert res.exit_code == 0, res.output
    table = pq.read_table(out)
    assert str(table.schema.field("index_date").type) == "date32[day]"
    assert table.num_rows == 2


def test_cohort_parameters_change_the_result(db):
    res = run("cohort", "--db", db, "--format", "csv", "--param", "cytopenia_min_grade=3")
    assert [r["patient_id"] for r in rows(res.stdout)] == ["histology-case"]


def test_the_tables_stay_in_the_database_for_sql_users(db):
    run("cohort", "--db", db, "--format", "csv")
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM bmc_cohort").fetchone() == (2,)
        assert con.execute("SELECT count(*) FROM bmc_funnel WHERE kind = 'rule'").fetchone() == (5,)
    finally:
        con.close()


@pytest.mark.parametrize("args, message", [
    (["--param", "window=3"], "error: unknown parameter 'window'; valid parameters: "
                              "smear_window_days, smear_index_date, cytopenia_min_grade, "
                              "cytopenia_lineages, anemia_grade4, exclude_alt_causes, "
                              "alt_cause_valuesets, coded_condition, result_statuses, "
                              "chemo_lookback_days, screen_min_grade\n"),
    (["--param", "smear_window_days"], "error: --param 'smear_window_days': expected name=value\n"),
    (["--param", "coded_condition=maybe"], "error: --param coded_condition: expected one of proof, "
                                           "unless-lab-evidence, never; got 'maybe'\n"),
    (["--param", "cytopenia_lineages="], "error: --param cytopenia_lineages: expected at least one "
                                         "value; valid: hgb, plt, wbc, anc\n"),
    (["--param", "cytopenia_lineages=hgb,rbc"], "error: --param cytopenia_lineages: unknown "
                                                "value(s) rbc; valid: hgb, plt, wbc, anc\n"),
    (["--format", "xml"], "error: --format must be one of table, csv, json, parquet, not 'xml'\n"),
    (["--format", "parquet"], "error: --format parquet needs --out FILE\n"),
])
def test_usage_errors_exit_2_with_the_exact_message(db, args, message):
    for command in ("cohort", "screen"):
        res = run(command, "--db", db, *args)
        assert res.exit_code == 2
        assert res.stderr == message
        assert res.stdout == ""


def test_a_missing_database_is_a_clear_error_exit_1(tmp_path):
    db = tmp_path / "none.duckdb"
    res = run("cohort", "--db", db)
    assert res.exit_code == 1
    assert res.stderr == (f"error: {db}: no such database file; create it with "
                          f"`bmc load PATH... --db {db}`\n")
    assert not db.exists()


def test_a_database_without_loaded_tables_is_a_clear_error_exit_1(tmp_path):
    db = tmp_path / "empty.duckdb"
    duckdb.connect(str(db)).close()
    res = run("screen", "--db", db)
    assert res.exit_code == 1
    assert res.stderr.startswith(f"error: {db} has no loaded FHIR tables (missing: patient, ")
    assert res.stderr.endswith("load an export first with `bmc load PATH... --db FILE`\n")


def test_screen_prints_patient_tier_and_reasons(db):
    res = run("screen", "--db", db, "--format", "csv")
    assert res.exit_code == 0, res.output
    out = rows(res.stdout)
    assert list(out[0])[:3] == ["patient_id", "tier", "reasons"]
    assert [(r["patient_id"], r["tier"]) for r in out] == [("smear-case", "1")]
    assert "screen: tier 1 1, tier 2 0, excluded 0" in res.stderr


def test_evidence_prints_rule_outcomes_and_the_ledger(db):
    res = run("evidence", "--db", db, "smear-case", "--format", "csv")
    assert res.exit_code == 0, res.output
    assert res.stderr.startswith("Patient/smear-case: in the cohort\n  breast_cancer      pass\n")
    assert "  index date 2004-06-01, route smear\n" in res.stderr
    ledger = rows(res.stdout)
    assert {r["rule"] for r in ledger} >= {"breast_cancer", "smear_cytopenia", "index_grades"}
    res = run("evidence", "--db", db, "no-bmc", "--format", "csv")
    assert "Patient/no-bmc: not in the cohort (fails: marrow_evidence)" in res.stderr


def test_evidence_for_an_unknown_patient_exits_1(db):
    res = run("evidence", "--db", db, "nobody")
    assert res.exit_code == 1
    assert res.stderr == "error: no Patient with id 'nobody' in this database\n"


def test_check_prints_the_confusion_counts(db, tmp_path):
    truth = tmp_path / "truth.csv"
    truth.write_text("patient_id,label\nsmear-case,1\nhistology-case,0\nno-bmc,1\n")
    res = run("check", "--db", db, "--truth", truth, "--format", "json")
    assert res.exit_code == 0, res.output
    (summary,) = json.loads(res.stdout)
    assert (summary["tp"], summary["fp"], summary["fn"], summary["tn"]) == (1, 1, 1, 0)
    assert summary["sensitivity"] == 0.5 and summary["ppv"] == 0.5
    assert "false positive: Patient/histology-case (failed rules: none)" in res.stderr
    assert "false negative: Patient/no-bmc (failed rules: marrow_evidence)" in res.stderr


def test_check_with_a_missing_truth_file_exits_2(db, tmp_path):
    res = run("check", "--db", db, "--truth", tmp_path / "nope.csv")
    assert res.exit_code == 2
    assert res.stderr == f"error: {tmp_path / 'nope.csv'}: no such truth file\n"


def test_a_message_with_brackets_prints_them(monkeypatch, tmp_path):
    """Error text is never read as rich markup: `[spark]` in the install hint stays."""
    from etl.spark import session

    def no_pyspark():
        raise session.SparkUnavailable("the Spark engine needs pyspark: "
                                       "pip install 'bmc-cohort[spark]'")

    monkeypatch.setattr(session, "check_available", no_pyspark)
    done = CliRunner().invoke(app, ["cohort", "--engine", "spark", "--db", str(tmp_path)])
    assert done.exit_code == 1
    assert "error: the Spark engine needs pyspark: pip install 'bmc-cohort[spark]'" in done.output


def test_duckdb_commands_do_not_need_the_spark_extra(db, monkeypatch):
    """Without pyspark and sqlglot installed, evidence and check still run on DuckDB."""
    import builtins
    import sys

    for name in [m for m in sys.modules if m.split(".")[0] in ("pyspark", "sqlglot")
                 or m in ("cohort.spark_runner", "etl.spark.dialect")]:
        monkeypatch.delitem(sys.modules, name)
    real_import = builtins.__import__

    def no_spark_extra(name, *args, **kwargs):
        if name.split(".")[0] in ("pyspark", "sqlglot"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_spark_extra)
    run = CliRunner()
    pid = run.invoke(app, ["cohort", "--db", str(db), "--format", "csv"]).stdout.splitlines()[1]
    done = run.invoke(app, ["evidence", pid.split(",")[0], "--db", str(db), "--format", "csv"])
    assert done.exit_code == 0, done.output
