"""`--format table` as a reader sees it at 80 and 200 columns and in a pipe (issue 14 §1):
ids whole on one line (copyable into `bmc evidence`), text wrapped inside its column, no line
wider than the terminal, one block per row when the columns cannot all fit; `bmc evidence` as a
vertical ledger (per rule its outcome, then one line per resource) that shows what put a
patient on the screen; `bmc demo` writing into ./bmc-demo/."""
from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cohort.cli import app
from cohort.text_table import TextTable, cell_width, records_text, wrap
from tests.cohort.test_cohort_charts import Chart, at, build_db

# a FHIR id as long as FHIR allows (64): it must never be folded, whatever the width
LONG_ID = "smear-case-" + "0123456789" * 5 + "012"


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("terminal")
    smear = Chart(LONG_ID)  # tier 1: nRBC with anaemia, nobody named it
    smear.breast_cancer()
    smear.cbc(at("2004-06-01"), hgb=9.2, nrbc=4)
    unexplained = Chart("bone-anaemia")  # tier 2: bone metastases, anaemia, no chemotherapy
    unexplained.breast_cancer()
    unexplained.bone_mets()
    unexplained.cbc(at("2004-06-01"), hgb=9.0)
    inside = Chart("chemo-21-days")  # chemotherapy ended 21 days before: explains the anaemia
    inside.breast_cancer()
    inside.bone_mets()
    inside.chemo(at("2004-05-11"))
    inside.cbc(at("2004-06-01"), hgb=9.0)
    outside = Chart("chemo-22-days")  # 22 days before: outside the look-back, tier 2
    outside.breast_cancer()
    outside.bone_mets()
    outside.chemo(at("2004-05-10"))
    outside.cbc(at("2004-06-01"), hgb=9.0)
    no_nrbc = Chart("no-nrbc")  # the smear rules were never applied: no nRBC result at all
    no_nrbc.breast_cancer()
    no_nrbc.cbc(at("2004-06-01"), hgb=9.0)
    nrbc_zero = Chart("nrbc-zero")  # an nRBC result of 0: checked, nothing to pair
    nrbc_zero.breast_cancer()
    nrbc_zero.cbc(at("2004-06-01"), hgb=9.0, nrbc=0)
    build_db(tmp, [smear, unexplained, inside, outside, no_nrbc, nrbc_zero]).close()
    return tmp / "bulk.duckdb"


def run(*args, columns: int | None = None):
    env = {"COLUMNS": str(columns)} if columns else {"COLUMNS": ""}
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def widest(text: str) -> int:
    return max(cell_width(line) for line in text.splitlines())


# -- the layout itself ---------------------------------------------------------------------------
def test_an_id_is_never_folded_and_text_wraps_inside_its_column():
    reasons = "meets the smear rule: nRBC 4 /100{WBCs} with anaemia grade 2 on 2004-06-01"
    pid = "0025bdc1-7b6a-4590-ad9c-33244ddcfaf6"
    t = TextTable(["patient_id", "tier", "reasons"], [[pid, "1", reasons]], 80)
    lines = t.render().splitlines()
    assert max(cell_width(x) for x in lines) <= 80 and len(lines) > 3
    assert lines[2].startswith(pid + "  1")
    column = lines[0].index("reasons")
    assert " ".join(x[column:].strip() for x in lines[2:]) == reasons


def test_text_that_fits_is_one_line_and_a_long_path_breaks_after_a_slash():
    assert wrap("grade 2", 7) == ["grade 2"]
    assert wrap("/data/exports/2024-06/Observation.000.ndjson:1203", 24) == [
        "/data/exports/2024-06/", "Observation.000.ndjson:", "1203"]
    assert wrap("bundles/patient-0025bdc1.json#entry[12]", 30) == [
        "bundles/patient-0025bdc1.json", "#entry[12]"]


def test_columns_that_cannot_all_fit_become_one_block_per_row_naming_every_column():
    header = ["patient_id", "index_date", "route", "anemia_grade", "platelet_grade",
              "breast_cancer_date"]
    row = [LONG_ID, "2004-06-01", "smear", "2", "0", "2001-03-02"]
    assert TextTable(header, [row], 200).dropped == []
    assert TextTable(header, [row], 80).dropped
    text = records_text(header, [row], 100, "BMC cohort")
    assert text.splitlines()[2:] == [f"{h:18}  {v}" for h, v in zip(header, row, strict=True)]


def test_an_id_too_long_to_sit_beside_its_name_goes_whole_on_the_next_line():
    assert records_text(["patient_id"], [[LONG_ID]], 76) == f"patient_id  {LONG_ID}\n"
    text = records_text(["patient_id", "route"], [[LONG_ID, "smear"]], 75)
    assert text.splitlines() == ["patient_id", f"  {LONG_ID}", "route       smear"]


def test_wide_characters_take_two_cells_and_control_characters_are_escaped():
    import pandas as pd

    from cohort.output import to_table

    text = to_table(pd.DataFrame({"code": ["C50"], "display": ["乳腺癌\x1b[31m"]}), 80, "codes")
    assert "\x1b" not in text and "\\x1b[31m" in text
    assert cell_width("乳腺癌") == 6


# -- bmc screen / cohort at 80 and 200 columns, and in a pipe -------------------------------------
@pytest.mark.parametrize("columns", [80, 200])
def test_screen_keeps_every_id_whole_within_the_width(db, columns):
    res = run("screen", "--db", db, columns=columns)
    assert res.exit_code == 0, res.output
    assert widest(res.stdout) <= columns
    ids = [r["patient_id"] for r in csv.DictReader(io.StringIO(
        run("screen", "--db", db, "--format", "csv").stdout))]
    assert LONG_ID in ids and len(ids) == 4
    for pid in ids:  # each id whole on one line, where a reader can copy it
        assert re.search(rf"(^|\s){re.escape(pid)}(\s|$)", res.stdout, re.M), pid


def test_screen_is_a_table_at_200_and_one_block_per_patient_at_80(db):
    wide = run("screen", "--db", db, columns=200).stdout.splitlines()
    assert wide[0] == "BMC screen"
    assert re.match(r"patient_id +tier +reasons +rank +worst_grade +finding_date$", wide[1])
    narrow = run("screen", "--db", db, columns=80).stdout.splitlines()
    assert narrow[2] == f"patient_id    {LONG_ID}"
    assert narrow[3] == "tier          1"
    assert narrow[4].startswith("reasons       meets the smear rule: nRBC 4")


def test_cohort_at_80_columns_shows_every_column(db):
    res = run("cohort", "--db", db, columns=80)
    assert widest(res.stdout) <= 80
    names = [line.split()[0] for line in res.stdout.splitlines()[2:]
             if line and not line.startswith(" ")]
    assert names[:3] == ["patient_id", "index_date", "route"]
    assert "breast_cancer_date" in names


def test_a_pipe_gets_80_columns_without_terminal_codes(db):
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run([sys.executable, "-m", "cohort.cli", "screen", "--db", str(db)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert widest(done.stdout) <= 80 and "\x1b" not in done.stdout
    assert f"patient_id    {LONG_ID}" in done.stdout.splitlines()


def test_table_to_a_file_is_200_columns(db, tmp_path):
    out = tmp_path / "screen.txt"
    assert run("screen", "--db", db, "--out", out, columns=80).exit_code == 0
    text = out.read_text(encoding="utf-8")
    assert re.match(r"patient_id +tier +reasons", text.splitlines()[1])
    assert 80 < widest(text) <= 200


# -- bmc evidence --------------------------------------------------------------------------------
def sections(text: str) -> dict[str, list[str]]:
    """The ledger's sections: 'rule: outcome' lines and the indented lines under each."""
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines()[3:]:
        if not line.startswith(" ") and ": " in line and not line.startswith("--format"):
            current, outcome = line.split(": ", 1)
            out[current] = [outcome]
        elif current and line.startswith("  "):
            out[current].append(line)
    return out


@pytest.mark.parametrize("columns", [80, 200])
def test_evidence_reads_top_to_bottom_within_the_width(db, columns):
    res = run("evidence", "--db", db, LONG_ID, columns=columns)
    assert res.exit_code == 0, res.output
    assert widest(res.stdout) <= columns
    assert " ".join(res.stdout.splitlines()[:2]).startswith(
        f"Patient/{LONG_ID}: in the cohort, index date 2004-06-01, route smear")
    got = sections(res.stdout)
    assert list(got) == ["breast_cancer", "marrow_evidence", "smear_cytopenia", "no_alt_cause",
                         "screen", "index_grades"]
    assert got["smear_cytopenia"][0] == "pass"
    assert got["screen"][0] == "tier 1 (rank 1)"
    body = "\n".join(got["smear_cytopenia"])
    assert re.search(r"^  2004-06-01  nRBC result: nRBC > 0 ", body, re.M)
    assert re.search(r"^  2004-06-01  cytopenia \(Anemia\):.* 9\.2 g/dL, grade 2;", body, re.M)
    assert "Observation.000.ndjson:" in body  # where to open it
    assert res.stdout.rstrip().endswith("dates' precision)")


def test_evidence_at_200_columns_is_one_line_per_resource(db):
    res = run("evidence", "--db", db, "bone-anaemia", columns=200)
    screen = sections(res.stdout)["screen"]
    resources = [x for x in screen if re.match(r"  \d{4}-\d\d-\d\d  ", x)]
    assert [x.split()[1:3] for x in resources] == [["bone", "metastasis:"],
                                                    ["cytopenia", "(Anemia):"]]
    anaemia = resources[1]
    assert "no chemotherapy in the 21 days before" in anaemia
    assert "9 g/dL, grade 2; LLN 12 from result" in anaemia
    assert re.search(r"/Observation\.000\.ndjson:\d+$", anaemia)


def test_a_screened_patient_shows_what_put_them_on_the_screen(db):
    res = run("evidence", "--db", db, "bone-anaemia", "--format", "csv")
    rows = [r for r in csv.DictReader(io.StringIO(res.stdout)) if r["rule"] == "screen"]
    assert [(r["role"], r["counted"]) for r in rows] == [
        ("bone metastasis", "true"), ("cytopenia (Anemia)", "true")]
    assert rows[0]["code"] == ("http://hl7.org/fhir/sid/icd-10-cm|C79.51 "
                               "http://snomed.info/sct|94222008")
    assert rows[1]["grade"] == "2" and rows[1]["lln"] == "12.0"


def test_chemotherapy_21_days_before_explains_the_cytopenia_and_22_days_does_not(db):
    def screen_rows(pid):
        res = run("evidence", "--db", db, pid, "--format", "csv")
        return {r["role"]: r for r in csv.DictReader(io.StringIO(res.stdout))
                if r["rule"] == "screen"}

    inside, outside = screen_rows("chemo-21-days"), screen_rows("chemo-22-days")
    assert inside["chemotherapy (administration)"]["counted"] == "true"
    assert inside["chemotherapy (administration)"]["note"].endswith(
        "explains 1 cytopenia(s) from 2004-06-01")
    assert inside["cytopenia (Anemia)"]["counted"] == "false"
    assert inside["cytopenia (Anemia)"]["note"].startswith(
        "explained by chemotherapy: ") and " 21 days before (MedicationAdministration" \
        in inside["cytopenia (Anemia)"]["note"]
    assert outside["chemotherapy (administration)"]["counted"] == "false"
    assert outside["chemotherapy (administration)"]["note"].endswith(
        "explains no cytopenia of grade >= 2")
    assert outside["cytopenia (Anemia)"]["counted"] == "true"
    table = run("evidence", "--db", db, "chemo-21-days", columns=200).stdout
    assert sections(table)["screen"][0] == "tier excluded (rank 4)"


@pytest.mark.parametrize("pid, why", [
    ("no-nrbc", "no nRBC result on file"),
    ("nrbc-zero", "no nRBC-positive result"),
])
def test_a_rule_never_applied_says_not_applicable_never_pass(db, pid, why):
    got = sections(run("evidence", "--db", db, pid, columns=80).stdout)
    assert got["smear_cytopenia"][0] == f"not applicable ({why})"
    assert got["no_alt_cause"][0] == f"not applicable ({why})"
    assert got["screen"] == ["not on the screen"]


def test_evidence_csv_and_json_keep_the_full_ledger_and_the_summary_on_stderr(db):
    res = run("evidence", "--db", db, "bone-anaemia", "--format", "json")
    assert res.stderr.startswith("Patient/bone-anaemia: not in the cohort (fails: "
                                 "marrow_evidence)\n")
    import json

    ledger = json.loads(res.stdout)
    assert {r["rule"] for r in ledger} == {"breast_cancer", "screen"}
    assert all(r["resource_key"] and r["source_file"] for r in ledger)


# -- bmc demo ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_demo_writes_into_bmc_demo_and_ends_with_the_report_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["demo"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "bmc-demo" / "demo.duckdb").is_file()
    last = res.stderr.splitlines()[-1]
    assert last == ("demo: the report, to open in a browser: "
                    f"{tmp_path / 'bmc-demo' / 'report' / 'report.html'}")
    assert Path(last.rsplit(": ", 1)[1]).is_file()
