"""`bmc codes`: the inventory of codes in the data, what the definition maps, what it does not
see (candidates), units it cannot convert and displays that contradict their code; the hint
at the end of a load and the warning in the funnel; and the third-party exports in
../shared/external, whose breast-cancer codes must all be mapped.

The export below has one record per case, each named for what it shows.
"""
from __future__ import annotations

import csv
import io
import json

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from cohort.cli import app
from cohort.codes import (
    CODES_COLUMNS,
    WordRule,
    classify,
    code_inventory,
    display_conflict,
    fold,
    matches,
    read_concept_words,
    read_vocabulary,
)
from cohort.definition import build_cohort
from cohort.usercodes import collect
from etl.load import load
from tests.cohort.test_cohort_charts import ICD10CM, LAB, LOINC, RXNORM, SCT, Chart, at, build_db
from tests.conftest import EXTERNAL

LOCAL = "http://lab.example-hospital.org/codes"
runner = CliRunner()


def coded_condition(ch: Chart, system: str, code: str, display: str) -> str:
    return ch.add({"resourceType": "Condition", "id": ch._id("c"), "subject": ch.subject,
                   "code": {"coding": [{"system": system, "code": code, "display": display}]},
                   "onsetDateTime": "2003-02-01"})


def observation(ch: Chart, system: str, code: str, display: str | None, value: float,
                unit: str | None) -> str:
    coding = {"system": system, "code": code, **({"display": display} if display else {})}
    res = {"resourceType": "Observation", "id": ch._id("o"), "status": "final",
           "category": LAB, "code": {"coding": [coding]}, "subject": ch.subject,
           "effectiveDateTime": at("2004-06-01"), "valueQuantity": {"value": value}}
    if unit:
        res["valueQuantity"]["unit"] = unit
    return ch.add(res)


def administration(ch: Chart, code: str, display: str) -> str:
    return ch.add({"resourceType": "MedicationAdministration", "id": ch._id("ma"),
                   "status": "completed", "subject": ch.subject,
                   "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code,
                                                             "display": display}]},
                   "effectiveDateTime": at("2004-03-01")})


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("codes")
    a = Chart("codes-a")
    coded_condition(a, SCT, "254837009", "Malignant neoplasm of breast (disorder)")
    coded_condition(a, ICD10CM, "C50.912", "Malignant neoplasm of unspecified site of left "
                                           "female breast")
    coded_condition(a, LOCAL, "BRCA-1", "Carcinoma of breast")             # candidate
    coded_condition(a, LOCAL, "DCIS", "Carcinoma in situ of breast")       # in situ: not one
    a.lab("nrbc", 3, at("2004-06-01"))
    observation(a, LOCAL, "HB", "Haemoglobin", 9.1, "g/dL")                # candidate by words
    observation(a, LOCAL, "X17", None, 70, "10*9/L")                       # candidate by unit
    observation(a, LOCAL, "GLU", "Glucose", 5.4, "mmol/L")  # words decide: not hgb (mmol/L)
    observation(a, LOINC, "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", 6.1, "%")
    observation(a, LOINC, "718-7", "Hemoglobin [Mass/volume] in Blood", 9.0, "g/dL")
    observation(a, LOINC, "718-7", "Hemoglobin [Mass/volume] in Blood", 90, "mg")
    administration(a, "3002", "Alendronate (Fosamax)")                     # contradicts 3002
    a.add({"resourceType": "DiagnosticReport", "id": "codes-a-dr1", "status": "final",
           "subject": a.subject, "effectiveDateTime": at("2004-06-03"),
           "code": {"coding": [{"system": LOCAL, "code": "BMBX",
                                "display": "Bone marrow trephine biopsy report"}]}})
    a.add({"resourceType": "Procedure", "id": "codes-a-pr1", "status": "completed",
           "subject": a.subject, "performedDateTime": at("2004-06-03"),
           "code": {"coding": [{"system": LOCAL, "code": "BMBX-P",
                                "display": "Bone marrow biopsy"}]}})
    b = Chart("codes-b")
    coded_condition(b, SCT, "254837009", "Malignant neoplasm of breast (disorder)")
    administration(b, "3002", "cyclophosphamide")
    build_db(tmp, [a, b]).close()
    return tmp / "bulk.duckdb"


@pytest.fixture(scope="module")
def table(db):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return code_inventory(con).table
    finally:
        con.close()


def row(table: pd.DataFrame, code: str, display: str | None = None, source: str | None = None
        ) -> dict:
    hit = table[(table["code"] == code) & ((table["display"] == display) if display else True)
                & ((table["source"] == source) if source else True)]
    assert len(hit) == 1, hit
    return hit.iloc[0].to_dict()


# -- mapped -------------------------------------------------------------------------------------
def test_codes_of_the_value_sets_are_mapped_to_their_value_set(table):
    assert row(table, "254837009", source="condition")["mapped_to"] == "valueset:breast_cancer"
    icd = row(table, "C50.912")                       # prefix C50, dots normalised
    assert (icd["status"], icd["mapped_to"]) == ("mapped", "valueset:breast_cancer")


def test_lab_codes_are_mapped_to_their_analyte_with_units_and_counts(table):
    hb = row(table, "718-7")
    assert (hb["status"], hb["mapped_to"]) == ("mapped", "lab:hgb")
    assert (hb["n_records"], hb["n_patients"], hb["units"]) == (2, 1, "g/dL (1); mg (1)")


def test_units_of_a_mapped_lab_code_that_units_csv_cannot_convert_are_listed(table):
    assert row(table, "718-7")["unconvertible_units"] == "mg"
    assert row(table, "58413-6")["unconvertible_units"] is None   # nRBC is read in any unit


# -- candidates ---------------------------------------------------------------------------------
def test_an_unmapped_breast_carcinoma_is_a_breast_cancer_candidate(table):
    r = row(table, "BRCA-1")
    assert (r["status"], r["candidate_for"]) == ("candidate", "breast_cancer")
    assert r["candidate_reason"] == ("display/text has breast + carcinom* "
                                     "(add to valuesets.csv breast_cancer)")


def test_carcinoma_in_situ_of_the_breast_is_not_a_candidate(table):
    assert row(table, "DCIS")["status"] == "unmapped"


def test_a_local_haemoglobin_is_a_candidate_by_its_words_in_british_spelling(table):
    r = row(table, "HB")
    assert (r["status"], r["candidate_for"]) == ("candidate", "hgb")


def test_a_local_code_without_words_is_a_candidate_by_its_unit(table):
    r = row(table, "X17")
    assert (r["status"], r["candidate_for"]) == ("candidate", "anc, nrbc_abs, plt, wbc")
    assert r["units"] == "10*9/L (1)"


def test_a_concept_is_a_candidate_only_where_the_rules_read_it(table):
    report, procedure = row(table, "BMBX"), row(table, "BMBX-P")
    assert (report["status"], report["candidate_for"]) == ("candidate", "marrow_report")
    assert procedure["status"] == "unmapped"  # a biopsy done is not a report of its result


def test_neither_words_nor_unit_leaves_a_code_unmapped(table):
    assert row(table, "GLU")["status"] == "unmapped"
    assert row(table, "4548-4")["status"] == "unmapped"     # HbA1c is not haemoglobin


def test_candidates_come_first_and_every_contract_column_is_there(table):
    assert tuple(table.columns) == CODES_COLUMNS
    statuses = list(table["status"])
    assert statuses == sorted(statuses, key=["candidate", "mapped", "unmapped"].index)


# -- display conflicts --------------------------------------------------------------------------
def test_a_display_that_contradicts_the_sourced_display_of_its_code_is_flagged(table):
    wrong = row(table, "3002", "Alendronate (Fosamax)")
    assert wrong["status"] == "mapped"
    assert wrong["display_conflict"].startswith("sourced display: ")
    assert "cyclophosphamide" in wrong["display_conflict"].lower()
    assert row(table, "3002", "cyclophosphamide")["display_conflict"] is None


@pytest.mark.parametrize("display, sourced, conflict", [
    ("Hgb Bld-mCnc", "Hemoglobin [Mass/volume] in Blood", False),           # LOINC short name
    ("WBC Auto (Bld) [#/Vol]", "Leukocytes [#/volume] in Blood by Automated count", False),
    ("Platelet count", "Platelets [#/volume] in Blood", False),             # plural
    ("Leucocytes", "Leukocytes [#/volume] in Blood", False),                # British spelling
    ("Malignant neoplasm of lung", "Malignant neoplasm of breast", True),   # shared words only
    ("Alendronate (Fosamax)", "Cyclophosphamide", True),
    (None, "Cyclophosphamide", False),                                      # nothing to compare
])
def test_display_comparison(display, sourced, conflict):
    assert (display_conflict(display, [sourced], read_vocabulary()) is not None) is conflict


# -- words --------------------------------------------------------------------------------------
def test_words_fold_british_spelling_and_stars_match_word_starts():
    rule = WordRule("x", "valuesets.csv x", ("condition",), ("hemoly*", "anemi*"), ("carrier",),
                    "", 2)
    assert fold("Haemolytic anaemia, NOS") == ["hemolytic", "anemia", "nos"]
    assert matches(rule, fold("Autoimmune haemolytic anaemia"))
    assert not matches(rule, fold("Haemolytic anaemia carrier"))
    assert not matches(rule, fold("Haemolysis"))


def test_every_concept_word_rule_is_read_and_names_where_to_add_the_code():
    rules = read_concept_words()
    assert {r.concept for r in rules} >= {"breast_cancer", "marrow_metastasis", "hgb", "plt",
                                         "wbc", "nrbc"}
    assert all(r.add_to.split()[0] in ("valuesets.csv", "lab_codes.csv") for r in rules)


def test_classify_marks_nothing_mapped_when_no_code_list_knows_the_code():
    rows = pd.DataFrame([{
        "source": "observation", "system": LOCAL, "code": "PLT", "display": "Thrombocytes",
        "text": None, "n_records": 3, "n_patients": 2, "units": "G/L (3)",
        "mapped_valuesets": [], "mapped_analytes": [], "unconvertible_units": [],
        "unit_fits": ["plt"], "sourced_displays": [], "known_system": False}])
    out = classify(rows, read_concept_words(), read_vocabulary()).iloc[0]
    assert (out["status"], out["candidate_for"]) == ("candidate", "plt")


# -- the user's codes ---------------------------------------------------------------------------
def test_a_code_added_with_codes_is_mapped(db, tmp_path):
    path = tmp_path / "labs.csv"
    path.write_text("analyte,system,code,display,source,confidence\n"
                    f"hgb,{LOCAL},HB,Haemoglobin (local),lab catalogue,\n", encoding="utf-8")
    res = runner.invoke(app, ["codes", "--db", str(db), "--format", "json",
                              "--codes", str(path)])
    assert res.exit_code == 0, res.output
    hb = next(r for r in json.loads(res.stdout) if r["code"] == "HB")
    assert (hb["status"], hb["mapped_to"]) == ("mapped", "lab:hgb")


# -- the command, the load hint, the funnel warning ---------------------------------------------
def test_bmc_codes_writes_csv_with_the_contract_columns_and_a_summary(db, tmp_path):
    out = tmp_path / "codes.csv"
    res = runner.invoke(app, ["codes", "--db", str(db), "--format", "csv", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert tuple(rows[0]) == CODES_COLUMNS
    n = {s: sum(r["status"] == s for r in rows) for s in ("mapped", "candidate", "unmapped")}
    assert (f"codes: {len(rows)} codings (mapped {n['mapped']}, candidate 4, unmapped "
            f"{n['unmapped']}); display conflicts 1; mapped lab codes with unconvertible units "
            f"1") in res.stderr
    assert "warning: 1 unmapped code(s) in the data look like breast_cancer, which decides " \
           "rule_breast_cancer; they are not read" in res.stderr


def test_bmc_codes_refuses_an_unknown_format(db):
    res = runner.invoke(app, ["codes", "--db", str(db), "--format", "parquet"])
    assert res.exit_code == 2
    assert "error: --format must be table, csv or json, not 'parquet'" in res.stderr


def test_the_load_summary_ends_with_a_hint_when_candidates_exist(tmp_path):
    with_candidate, without = Chart("hint-yes"), Chart("hint-no")
    coded_condition(with_candidate, LOCAL, "BRCA-1", "Carcinoma of breast")
    coded_condition(without, SCT, "254837009", "Malignant neoplasm of breast (disorder)")
    for ch in (with_candidate, without):
        src = tmp_path / ch.pid
        src.mkdir()
        (src / "Condition.ndjson").write_text("\n".join(json.dumps(r) for r in ch.resources[1:]))
        (src / "Patient.ndjson").write_text(json.dumps(ch.resources[0]))
        db = tmp_path / f"{ch.pid}.duckdb"
        res = runner.invoke(app, ["load", str(src), "--db", str(db)])
        assert res.exit_code == 0, res.output
        last = res.stderr.strip().splitlines()[-1]
        if ch is with_candidate:
            assert last == (f"hint: 1 unmapped code(s) look like breast_cancer: run "
                            f"`bmc codes --db {db}` to review them")
        else:
            assert not last.startswith("hint:")


def test_the_funnel_warns_when_a_rule_s_concept_has_unmapped_candidates(db):
    res = runner.invoke(app, ["cohort", "--db", str(db), "--format", "csv"])
    assert res.exit_code == 0, res.output
    for concept, rule in (("breast_cancer", "rule_breast_cancer"),
                          ("hgb", "rule_smear_cytopenia"), ("plt", "rule_smear_cytopenia")):
        assert f"warning: 1 unmapped code(s) in the data look like {concept}, which decides " \
               f"{rule}; they are not read: see `bmc codes`" in res.stderr
    assert "look like anc" not in res.stderr            # anc decides no rule


def test_the_inventory_leaves_no_temporary_tables_behind(db):
    con = duckdb.connect(str(db))
    try:
        result = build_cohort(con, codes=collect())
        temp = con.execute("SELECT table_name FROM information_schema.tables "
                           "WHERE table_catalog = 'temp'").fetchall()
    finally:
        con.close()
    assert temp == [] and result.counts["patients"] == 2


# -- third-party exports ------------------------------------------------------------------------
FOLDERS = sorted(p.name for p in EXTERNAL.iterdir()
                 if p.is_dir() and p.name.startswith(("mcode-", "synthea-"))) \
    if EXTERNAL.is_dir() else []


@pytest.fixture(scope="module")
def external(tmp_path_factory):
    if not EXTERNAL.is_dir():
        pytest.skip(f"{EXTERNAL} is not present")
    tmp = tmp_path_factory.mktemp("external-codes")
    out = {}
    for folder in FOLDERS:
        db = tmp / f"{folder}.duckdb"
        load(db, [EXTERNAL / folder])
        con = duckdb.connect(str(db), read_only=True)
        try:
            out[folder] = code_inventory(con).table
        finally:
            con.close()
    return out


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_breast_cancer_code_in_third_party_exports_is_mapped(external, folder):
    table = external[folder]
    left = table[table["candidate_for"].fillna("").str.contains("breast_cancer")]
    assert left.empty, left[["system", "code", "display"]].to_dict("records")


def test_the_breast_cancer_codes_of_the_external_exports_are_listed_as_mapped(external):
    mapped = {(f, r.system, r.code) for f, t in external.items() for r in t.itertuples()
              if r.source == "condition" and r.mapped_to and "breast_cancer" in r.mapped_to}
    # what the exports hold (grep the folders): Synthea's 254837009, mCODE's 353431000119107
    assert {("synthea-bulk-10-patients", SCT, "254837009"),
            ("synthea-pathling-server-import", SCT, "254837009"),
            ("mcode-coverage-checker-bundles", SCT, "353431000119107")} <= mapped
