"""Condition.evidence: from the condition table's column when the view declares it, else read
back from the sources through provenance; without either, coded diagnoses are taken at their
word and the user is told."""
from __future__ import annotations

import shutil

import duckdb

from cohort.definition import build_cohort
from cohort.provenance import VIEW_COLUMN, condition_evidence
from tests.cohort.test_cohort_charts import Chart, at, build_db


def smear_coded_without_cytopenia() -> Chart:
    ch = Chart("coded-smear")
    ch.breast_cancer()
    keys = ch.cbc(at("2007-01-07"), nrbc=5)
    ch.marrow_dx(onset="2007-01-07", evidence=[keys["nrbc"]])
    return ch


def test_the_view_column_is_used_when_it_exists():
    con = duckdb.connect()
    con.execute(f"CREATE TABLE condition (resource_key VARCHAR, {VIEW_COLUMN} VARCHAR[])")
    con.execute("INSERT INTO condition VALUES ('Condition/c1', ['Observation/o1', "
                "'DiagnosticReport/r1']), ('Condition/c1', ['Observation/o1', "
                "'DiagnosticReport/r1']), ('Condition/c2', [])")
    assert condition_evidence(con) == "view"
    assert sorted(con.execute("SELECT * FROM bmc_condition_evidence").fetchall()) == [
        ("Condition/c1", "DiagnosticReport/r1"), ("Condition/c1", "Observation/o1")]


def test_evidence_is_read_back_from_ndjson_lines_and_bundle_entries(tmp_path):
    for shape in ("bulk", "bundle"):
        con = build_db(tmp_path, [smear_coded_without_cytopenia()], shape)
        result = build_cohort(con)
        assert result.counts["cohort"] == 0, shape
        assert any("read back from the source files" in n for n in result.notes)
        (n,) = con.execute("SELECT count(*) FROM bmc_condition_evidence "
                           "WHERE evidence_key LIKE 'Observation/%'").fetchone()
        assert n == 1, shape


def test_without_the_sources_coded_diagnoses_are_taken_at_their_word_and_the_user_is_told(tmp_path):
    con = build_db(tmp_path, [smear_coded_without_cytopenia()])
    shutil.rmtree(tmp_path / "src-bulk")
    result = build_cohort(con)
    assert result.counts["cohort"] == 1
    assert any("could not be read (source files moved)" in n for n in result.notes)
