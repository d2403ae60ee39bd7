"""The user's own codes (`--codes FILE_OR_DIR`, `bmc.toml`): a hospital adds its local lab code,
unit spelling or parameter without editing the package; what it added is recorded beside the
tables, a changed file rebuilds them, and a bad row is refused with its file and line.

The export: breast cancer and an nRBC-positive smear (LOINC) for every patient; the only
cytopenia of 'local-anaemia' is a haemoglobin of 9.0 g/dL under the hospital's own code HB,
which no shipped code list knows. 'local-normal' has HB 12.5 g/dL (above the LLN 12.0): even
with the code known, no cytopenia. 'local-spelling' has HB 9.0 in the lab's own unit
spelling 'g/100mL', which units.csv does not know.
"""
from __future__ import annotations

import csv
import io

import duckdb
import pytest
from typer.testing import CliRunner

from cohort.cli import app
from cohort.definition import build_cohort
from cohort.usercodes import collect
from tests.cohort.test_cohort_charts import LAB, Chart, at, build_db

LOCAL = "http://lab.example-hospital.org/codes"
HEADER = "analyte,system,code,display,source,confidence\n"
HB_ROW = f"hgb,{LOCAL},HB,Haemoglobin (local),hospital lab catalogue 2024,\n"
runner = CliRunner()


def local_hb(ch: Chart, value: float, unit: str = "g/dL") -> str:
    """A haemoglobin under the hospital's local code, with the lab's own range."""
    return ch.add({"resourceType": "Observation", "id": ch._id("hb"), "status": "final",
                   "category": LAB,
                   "code": {"coding": [{"system": LOCAL, "code": "HB",
                                        "display": "Haemoglobin"}], "text": "Hb"},
                   "subject": ch.subject, "effectiveDateTime": at("2004-06-02"),
                   "valueQuantity": {"value": value, "unit": unit},
                   "referenceRange": [{"low": {"value": 12.0, "unit": unit}}]})


def smear_only(name: str) -> Chart:
    ch = Chart(name)
    ch.breast_cancer()
    ch.bone_mets()
    ch.lab("nrbc", 3, at("2004-06-01"))
    return ch


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("usercodes")
    anaemia, normal, spelling = (smear_only("local-anaemia"), smear_only("local-normal"),
                                 smear_only("local-spelling"))
    local_hb(anaemia, 9.0)
    local_hb(normal, 12.5)
    local_hb(spelling, 9.0, unit="g/100mL")
    build_db(tmp, [anaemia, normal, spelling]).close()
    (tmp / "codes.csv").write_text(HEADER + HB_ROW, encoding="utf-8")
    return tmp


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def cohort_ids(res) -> set[str]:
    assert res.exit_code == 0, res.output
    return {r["patient_id"] for r in csv.DictReader(io.StringIO(res.stdout))}


def test_a_local_lab_code_added_with_codes_puts_the_patient_in(folder):
    db = folder / "bulk.duckdb"
    assert cohort_ids(run("cohort", "--db", db, "--format", "csv")) == set()
    res = run("cohort", "--db", db, "--format", "csv", "--codes", folder / "codes.csv")
    assert cohort_ids(res) == {"local-anaemia"}          # local-normal: HB 12.5 >= LLN 12.0
    assert f"codes: {folder / 'codes.csv'} (lab_codes.csv, 1 rows, sha256 " in res.stderr


def test_a_folder_of_code_files_is_read_like_each_file(folder, tmp_path):
    (tmp_path / "a_labs.csv").write_text(HEADER + HB_ROW, encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a code file", encoding="utf-8")
    res = run("cohort", "--db", folder / "bulk.duckdb", "--format", "csv", "--codes", tmp_path)
    assert cohort_ids(res) == {"local-anaemia"}


def test_what_was_added_is_recorded_beside_the_tables(folder):
    db = folder / "bulk.duckdb"
    assert run("cohort", "--db", db, "--codes", folder / "codes.csv").exit_code == 0
    con = duckdb.connect(str(db), read_only=True)
    try:
        (files,) = con.execute("SELECT code_files FROM bmc_build").fetchone()
        added = con.execute("SELECT reference, file, line, concept, system, code "
                            "FROM bmc_user_code").fetchall()
    finally:
        con.close()
    assert len(files) == 1 and files[0].startswith(f"{folder / 'codes.csv'} (lab_codes.csv, 1 rows")
    assert added == [("lab_codes.csv", str(folder / "codes.csv"), 2, "hgb", LOCAL, "HB")]


def test_a_changed_codes_file_rebuilds_the_cohort(folder, tmp_path):
    con = duckdb.connect(str(folder / "bulk.duckdb"))
    try:
        path = tmp_path / "codes.csv"
        path.write_text(HEADER + HB_ROW, encoding="utf-8")
        first = build_cohort(con, codes=collect([path]), reuse=True)
        again = build_cohort(con, codes=collect([path]), reuse=True)
        path.write_text(HEADER + HB_ROW.replace(",HB,", ",HB-OTHER,"), encoding="utf-8")
        changed = build_cohort(con, codes=collect([path]), reuse=True)
    finally:
        con.close()
    assert "cohort tables reused (same parameters, data and queries)" in again.notes
    assert not any("reused" in n for n in changed.notes)
    assert set(first.cohort.patient_id) == {"local-anaemia"} and changed.cohort.empty


def test_bmc_toml_beside_the_database_adds_rows_units_and_parameters(folder, tmp_path):
    db = tmp_path / "hospital.duckdb"
    db.write_bytes((folder / "bulk.duckdb").read_bytes())
    (tmp_path / "bmc.toml").write_text(f'''
[parameters]
smear_window_days = 3

[[lab_codes]]
analyte = "hgb"
system = "{LOCAL}"
code = "HB"
display = "Haemoglobin (local)"
source = "hospital lab catalogue 2024"
confidence = ""

[[units]]
analyte = "hgb"
unit = "g/100mL"
canonical_unit = "g/dL"
factor = 1
source = "g/100 mL = g/dL"
''', encoding="utf-8")
    res = run("cohort", "--db", db, "--format", "csv")
    assert cohort_ids(res) == {"local-anaemia", "local-spelling"}
    assert f"parameters from {tmp_path / 'bmc.toml'}: smear_window_days=3" in res.stderr
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT value, set_by FROM bmc_parameter WHERE name = "
                           "'smear_window_days'").fetchone() == ("3", str(tmp_path / "bmc.toml"))
        assert con.execute("SELECT config FROM bmc_build").fetchone() == (
            str(tmp_path / "bmc.toml"),)
    finally:
        con.close()


def test_param_overrides_the_project_files_parameter(folder, tmp_path):
    cfg = tmp_path / "project.toml"
    cfg.write_text("[parameters]\nsmear_window_days = 0\n", encoding="utf-8")
    db = folder / "bulk.duckdb"
    # the local HB is one day after the nRBC: outside a 0-day window, inside a 1-day one
    base = ("cohort", "--db", db, "--format", "csv", "--codes", folder / "codes.csv",
            "--config", cfg)
    assert cohort_ids(run(*base)) == set()
    assert cohort_ids(run(*base, "--param", "smear_window_days=1")) == {"local-anaemia"}


@pytest.mark.parametrize("text, message", [
    (HEADER + "hgb,http://x,HB,Hb,src\n", "line 2: expected 6 fields"),
    (HEADER + "haemoglobin,http://x,HB,Hb,src,\n",
     "line 2: unknown analyte 'haemoglobin'; known: hgb, plt, wbc, anc, nrbc_ratio, nrbc_abs"),
    (HEADER + HB_ROW + "hgb,http://loinc.org,718-7,Hb,src,\n",
     "line 3: duplicates {ref}/lab_codes.csv line 2 (system, code = http://loinc.org, 718-7)"),
    ("analyte,code\nhgb,HB\n", "line 1: the header must be that of one reference file"),
    ("analyte,unit,canonical_unit,factor,source\nhgb,g/100mL,g/dL,ten,src\n",
     "line 2 column factor: 'ten' is not a valid double"),
])
def test_a_bad_row_is_refused_with_its_file_and_line(folder, tmp_path, text, message):
    from cohort.paths import queries_dir

    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    res = run("cohort", "--db", folder / "bulk.duckdb", "--codes", path)
    assert res.exit_code == 2
    assert f"error: {path} " + message.format(ref=queries_dir() / "reference") in res.stderr
    assert "Traceback" not in res.output


def test_a_bad_row_in_bmc_toml_names_its_line(folder, tmp_path):
    cfg = tmp_path / "bmc.toml"
    cfg.write_text('[parameters]\nsmear_window_days = 7\n\n[[valuesets]]\nvalueset = "breast"\n'
                   'system = "http://x"\ncode = "1"\nmatch = "exact"\n', encoding="utf-8")
    res = run("cohort", "--db", folder / "bulk.duckdb", "--config", cfg)
    assert res.exit_code == 2
    assert f"error: {cfg} line 4: unknown value set 'breast'; known: " in res.stderr


def test_an_unknown_parameter_in_bmc_toml_names_its_line(folder, tmp_path):
    cfg = tmp_path / "bmc.toml"
    cfg.write_text("[parameters]\nsmear_window = 7\n", encoding="utf-8")
    res = run("screen", "--db", folder / "bulk.duckdb", "--config", cfg)
    assert res.exit_code == 2
    assert f"error: {cfg} line 2: unknown parameter 'smear_window'" in res.stderr


def test_a_missing_codes_path_is_a_usage_error(folder, tmp_path):
    res = run("evidence", "local-anaemia", "--db", folder / "bulk.duckdb", "--codes",
              tmp_path / "nope.csv")
    assert res.exit_code == 2
    assert f"error: --codes {tmp_path / 'nope.csv'}: no such file or folder" in res.stderr


def test_evidence_and_check_read_the_same_codes(folder, tmp_path):
    db, codes = folder / "bulk.duckdb", folder / "codes.csv"
    res = run("evidence", "local-anaemia", "--db", db, "--codes", codes)
    assert res.exit_code == 0 and "Patient/local-anaemia: in the cohort" in res.stdout
    truth = tmp_path / "truth.csv"
    truth.write_text("patient_id,label\nlocal-anaemia,1\nlocal-normal,0\n", encoding="utf-8")
    res = run("check", "--db", db, "--truth", truth, "--codes", codes, "--format", "csv")
    row = next(csv.DictReader(io.StringIO(res.stdout)))
    assert (row["tp"], row["fp"], row["fn"], row["tn"]) == ("1", "0", "0", "1")


def test_spark_refuses_code_rows_clearly(folder):
    res = run("cohort", "--db", folder / "lake", "--engine", "spark", "--codes",
              folder / "codes.csv")
    assert res.exit_code == 2
    assert "error: --codes and code rows in bmc.toml work with --engine duckdb only" in res.stderr


def test_report_with_codes_analyses_the_cohort_built_with_them(folder, tmp_path):
    db = tmp_path / "report.duckdb"
    db.write_bytes((folder / "bulk.duckdb").read_bytes())
    res = run("report", "--db", db, "--out", tmp_path / "report", "--codes", folder / "codes.csv")
    assert res.exit_code == 0, res.output
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT patient_id FROM bmc_cohort").fetchall() == [("local-anaemia",)]
        assert con.execute("SELECT code FROM bmc_user_code").fetchall() == [("HB",)]
    finally:
        con.close()


def test_rows_written_as_an_inline_array_are_recorded_by_their_entry_number(tmp_path):
    cfg = tmp_path / "bmc.toml"
    cfg.write_text(f'lab_codes = [{{analyte = "hgb", system = "{LOCAL}", code = "HB", '
                   f'display = "Hb", source = "catalogue", confidence = ""}}]\n', encoding="utf-8")
    (added,) = collect(config=cfg).added()
    assert (added["file"], added["line"], added["code"]) == (f"{cfg} [[lab_codes]] row 1", None,
                                                             "HB")
