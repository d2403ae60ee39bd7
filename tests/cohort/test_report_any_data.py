"""Results on any data: every folder of ../shared/external (real exports nobody on the team
wrote; none holds a BMC case) goes through `bmc load`, then `bmc report`, `screen`, `evidence`
and `check`. Each command must finish with exit code 0 and say in plain words what the data
lack, and the report must still show the funnel and the incidence (0 of N).

One database per folder, loaded once for the module (the loads are most of the time)."""
from __future__ import annotations

import csv
import json

import duckdb
import pytest
from typer.testing import CliRunner

from cohort.cli import app
from tests.conftest import EXTERNAL

FOLDERS = sorted(p.name for p in EXTERNAL.iterdir() if p.is_dir()) if EXTERNAL.is_dir() else []


@pytest.fixture(scope="module", params=FOLDERS)
def loaded(request, tmp_path_factory):
    """(folder, database) after `bmc load FOLDER --db FILE` (exit 0, or 3 for an export with
    rejected records: both leave a loaded database)."""
    if not EXTERNAL.is_dir():
        pytest.skip(f"{EXTERNAL} is not present")
    folder = request.param
    db = tmp_path_factory.mktemp(folder) / "export.duckdb"
    res = CliRunner().invoke(app, ["load", str(EXTERNAL / folder), "--db", str(db)])
    assert res.exit_code in (0, 3), res.output
    return folder, db


def _query(db, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def reported(loaded, tmp_path_factory):
    """`bmc report` on the loaded folder: (folder, db, result, out dir, funnel counts)."""
    from cohort.outcomes import run

    folder, db = loaded
    out = tmp_path_factory.mktemp(f"{folder}-report") / "report"
    results = []

    def kept(*args, **kwargs):  # the command runs as a user runs it; its result is kept
        results.append(write_report(*args, **kwargs))
        return results[-1]

    write_report = run.write_report
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run, "write_report", kept)
        res = CliRunner().invoke(app, ["report", "--db", str(db), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    funnel = dict(_query(db, "SELECT rule, patients FROM bmc_funnel"))
    cohort = _query(db, "SELECT count(*) FROM bmc_cohort")[0][0]
    return folder, db, out, funnel, cohort, results[0][0]


def test_report_says_why_there_is_nothing_to_compare(reported):
    _, _, out, funnel, cohort, _ = reported
    md = (out / "report.md").read_text(encoding="utf-8")
    if cohort:
        pytest.skip("this export has a BMC case")
    assert "## No BMC case in this database" in md
    assert f"The database holds {funnel['population']} patient" in md or (
        funnel["population"] == 0 and "holds no Patient resource" in md)
    if funnel["population"] and funnel["breast_cancer"] == 0:
        assert "No patient has breast cancer coded" in md
    assert "## Published vs reproduced" not in md  # no verdicts without a single patient


def test_report_shows_the_funnel_and_the_incidence_0_of_n(reported):
    _, _, out, funnel, cohort, _ = reported
    with (out / "funnel.csv").open(newline="") as fh:
        rows = {r["rule"]: r["patients"] for r in csv.DictReader(fh)}
    assert rows["population"] == str(funnel["population"])
    assert rows["breast_cancer"] == str(funnel["breast_cancer"])
    with (out / "incidence.csv").open(newline="") as fh:
        inc = {r["group"]: r for r in csv.DictReader(fh)}
    found = inc["found cohort"]
    assert (found["cases"], found["breast-cancer patients"]) == (
        str(cohort), str(funnel["breast_cancer"]))
    if funnel["breast_cancer"] == 0:
        assert found["proportion"] == "NA"
    elif cohort == 0:
        assert found["proportion"] == "0.0%"


def test_report_summary_names_the_empty_cohort(reported):
    from cohort.outcomes.run import report_summary

    _, _, _, funnel, cohort, result = reported
    summary = report_summary(result)
    json.dumps(summary)  # what `bmc demo` prints
    assert summary["incidence"]["found cohort"] == f"{cohort} of {funnel['breast_cancer']}"
    if not cohort:
        assert summary["groups"] == {} and summary["message"].startswith("no BMC case")


def test_screen_on_the_export(reported):
    _, db, *_ = reported
    res = CliRunner().invoke(app, ["screen", "--db", str(db), "--format", "csv"])
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0].startswith("patient_id,tier,reasons")
    tiers = _query(db, "SELECT tier, count(*) FROM bmc_screen GROUP BY tier")
    assert len(res.stdout.splitlines()) == 1 + sum(n for _, n in tiers)


def test_cohort_table_output_says_no_rows_when_empty(reported):
    _, db, _, _, cohort, _ = reported
    res = CliRunner().invoke(app, ["cohort", "--db", str(db)])
    assert res.exit_code == 0, res.output
    if not cohort:
        assert "BMC cohort: no rows" in res.stdout


def test_evidence_and_check_on_a_patient_of_the_export(reported, tmp_path):
    _, db, *_ = reported
    ids = _query(db, "SELECT id FROM patient ORDER BY id LIMIT 1")
    if not ids:
        res = CliRunner().invoke(app, ["evidence", "--db", str(db), "nobody"])
        assert res.exit_code == 1
        assert "no Patient with id 'nobody' in this database" in res.output
        return
    pid = ids[0][0]
    res = CliRunner().invoke(app, ["evidence", "--db", str(db), pid])
    assert res.exit_code == 0, res.output
    assert f"Patient/{pid}: " in res.output and "Traceback" not in res.output
    truth = tmp_path / "truth.csv"
    truth.write_text(f"patient_id,label\n{pid},1\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["check", "--db", str(db), "--truth", str(truth),
                                   "--format", "json"])
    assert res.exit_code == 0, res.output
    in_cohort = bool(_query(db, f"SELECT count(*) FROM bmc_cohort WHERE patient_id = '{pid}'")
                     [0][0])
    summary = json.loads(res.stdout)[0]
    assert (summary["tp"], summary["fn"]) == ((1, 0) if in_cohort else (0, 1))
