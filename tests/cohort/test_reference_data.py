"""The reference data and the query files are data with rules of their own: every number
cites its source, keys are unique after normalisation, CTCAE bands tile the value axis, every
query declares the parameters it binds, and no code list hides in SQL as a literal."""
from __future__ import annotations

import itertools
import re
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest

from cohort.errors import ReferenceDataError
from cohort.parameters import BY_NAME, PARAMETERS, defaults
from cohort.paths import queries_dir
from cohort.reference import REFERENCE_FILES, code_key, load_reference, read_reference, unit_key
from cohort.runner import stages

REF = {spec.file: read_reference(spec) for spec in REFERENCE_FILES}


def test_every_reference_file_loads_into_its_ref_table():
    con = duckdb.connect()
    counts = load_reference(con)
    assert counts == {spec.table: len(REF[spec.file]) for spec in REFERENCE_FILES}
    assert all(n > 0 for n in counts.values())


#: What a source may cite: CODES.md, CTCAE, a sourced code list of ../shared/clinical/codesets,
#: a repository at a commit (owner/repo@commit12), a package at a version (name==x.y), or the
#: issue that asked for the row with what it saw.
CITATION = re.compile(r"CODES\.md|CTCAE|codesets/[A-Za-z_0-9]+\.(csv|md)|[\w.-]+/[\w.-]+@[0-9a-f]{12}"
                      r"|[\w.-]+==\d[\w.]*|issue 11 §")


def test_every_code_number_and_unit_cites_its_source():
    for spec in REFERENCE_FILES:
        for n, row in enumerate(REF[spec.file], start=2):
            src = row["source"] or ""
            assert CITATION.search(src), f"{spec.file} line {n}: {src!r}"


def test_a_row_without_a_citation_fails_the_citation_rule():
    assert not CITATION.search("from memory")
    assert not CITATION.search("some-repo (no commit read)")
    assert CITATION.search("codesets/breast_cancer.csv: OHDSI/PhenotypeLibrary@40106e4e2892:x")


def test_value_set_rows_carry_a_confidence_mark():
    for n, row in enumerate(REF["valuesets.csv"], start=2):
        assert row["confidence"] in ("✅", "◐", "⚠️ UNVERIFIED"), f"line {n}"


def test_units_convert_to_the_analytes_canonical_unit():
    canonical = {r["analyte"]: r["canonical_unit"] for r in REF["analytes.csv"]}
    for r in REF["units.csv"]:
        assert r["canonical_unit"] == canonical[r["analyte"]]
        if unit_key(r["unit"]) == unit_key(canonical[r["analyte"]]):
            assert r["factor"] == 1.0


@pytest.mark.parametrize("analyte, unit, factor", [
    ("hgb", "g/L", 0.1), ("hgb", "mmol/L", 1.6114), ("plt", "10*9/L", 1.0), ("plt", "/uL", 0.001),
    ("wbc", "K/uL", 1.0), ("plt", "/mm3", 0.001), ("wbc", "G/L", 1.0), ("nrbc_ratio", "%", 1.0),
])
def test_the_conversions_of_codes_md_4_2(analyte, unit, factor):
    got = {(r["analyte"], unit_key(r["unit"])): r["factor"] for r in REF["units.csv"]}
    assert got[(analyte, unit_key(unit))] == factor


def _bands_in_use(anemia_grade4: bool) -> dict[tuple[str, str], list[tuple[int, float | None, float | None]]]:
    """(grade, low, high) per analyte and unit as 30_lab_grade.sql uses them: without the CTC
    anaemia grade-4 rows unless asked, a missing lower limit ending at the next grade's upper one."""
    rows = defaultdict(dict)
    for r in REF["ctcae_v5.csv"]:
        if anemia_grade4 or (r["analyte"], r["grade"]) != ("hgb", 4):
            rows[(r["analyte"], r["unit"])][r["grade"]] = r
    out = {}
    for analyte, by in rows.items():
        out[analyte] = [(g, r["low"] if r["low"] is not None else
                         (by[g + 1]["high"] if g + 1 in by else None), r["high"])
                        for g, r in sorted(by.items())]
    return out


@pytest.mark.parametrize("anemia_grade4", [True, False])
def test_ctcae_bands_in_use_tile_the_axis_below_the_lln_without_gaps_or_overlaps(anemia_grade4):
    bands = _bands_in_use(anemia_grade4)
    assert set(bands) == {("hgb", "g/dL"), ("hgb", "mmol/L"), ("plt", "10*3/uL"),
                          ("wbc", "10*3/uL"), ("anc", "10*3/uL")}
    for analyte, rows in bands.items():
        assert rows[0][0] == 1 and rows[0][2] is None, analyte  # grade 1 ends at the LLN
        for (g_up, low_up, _), (g_low, _, high_low) in itertools.pairwise(rows):
            assert g_low == g_up + 1
            assert high_low == low_up, (analyte, g_low)
        assert rows[-1][1] is None
    assert len(bands[("hgb", "g/dL")]) == (4 if anemia_grade4 else 3)
    assert len(bands[("hgb", "mmol/L")]) == (4 if anemia_grade4 else 3)


def test_ctcae_bands_are_in_the_canonical_unit_or_a_unit_that_converts_to_it():
    canonical = {r["analyte"]: r["canonical_unit"] for r in REF["analytes.csv"]}
    units = {(r["analyte"], unit_key(r["unit"])) for r in REF["units.csv"]}
    for r in REF["ctcae_v5.csv"]:
        assert r["unit"] == canonical[r["analyte"]] or (r["analyte"], unit_key(r["unit"])) in units


def test_ctcae_v5_gives_anaemia_in_mmol_per_litre_too():
    """CTCAE v5.0 Anemia: G1 <LLN-6.2, G2 <6.2-4.9, G3 <4.9 mmol/L (issue 11 §5)."""
    mmol = {r["grade"]: (r["low"], r["high"]) for r in REF["ctcae_v5.csv"]
            if (r["analyte"], r["unit"]) == ("hgb", "mmol/L")}
    assert mmol[1] == (6.2, None) and mmol[2] == (4.9, 6.2) and mmol[3] == (None, 4.9)


def test_ctcae_v5_limits_of_codes_md_5_1():
    limits = {(r["analyte"], r["grade"]): (r["low"], r["high"]) for r in REF["ctcae_v5.csv"]
              if r["unit"] != "mmol/L"}
    assert limits[("hgb", 2)] == (8.0, 10.0)
    assert limits[("hgb", 3)] == (None, 8.0)  # v5.0: no lower limit
    assert limits[("plt", 4)] == (None, 25.0)
    assert limits[("wbc", 3)] == (1.0, 2.0)
    assert limits[("anc", 1)] == (1.5, None)


def test_the_only_band_not_from_ctcae_v5_is_the_ctc_anaemia_grade_4():
    """CTCAE v5.0 grades anaemia 4 only with clinical context; the row is CTC v2.0/v3.0's."""
    legacy = [r for r in REF["ctcae_v5.csv"] if not r["source"].startswith("CTCAE v5.0")]
    assert [(r["analyte"], r["grade"], r["low"], r["high"], r["unit"]) for r in legacy] == [
        ("hgb", 4, None, 6.5, "g/dL"), ("hgb", 4, None, 4.0, "mmol/L")]
    for row in legacy:
        assert "CODES.md §5.3" in row["source"] and "⚠️" in row["source"]
        assert "anemia_grade4" in row["source"]
    assert defaults()["anemia_grade4"] is True


def test_default_ranges_are_sex_specific_for_haemoglobin_only():
    by = {(r["analyte"], r["sex"]): r["low"] for r in REF["default_ranges.csv"]}
    assert (by[("hgb", "female")], by[("hgb", "male")]) == (12.0, 13.5)
    assert by[("plt", "any")] == 150 and by[("wbc", "any")] == 4.5


def test_a_duplicate_after_normalisation_is_refused_with_file_and_line(tmp_path):
    for spec in REFERENCE_FILES:
        (tmp_path / spec.file).write_bytes((queries_dir() / "reference" / spec.file).read_bytes())
    with (tmp_path / "valuesets.csv").open("a") as f:
        f.write("breast_cancer,http://hl7.org/fhir/sid/icd-10-cm,C50,dup,prefix,CODES.md §1.1,✅\n")
    lines = (tmp_path / "valuesets.csv").read_text().count("\n")
    with pytest.raises(ReferenceDataError, match=rf"valuesets.csv line {lines}: duplicates line 2"):
        load_reference(duckdb.connect(), tmp_path)


def test_default_ranges_cover_every_sex_exactly_once(tmp_path):
    spec = next(s for s in REFERENCE_FILES if s.file == "default_ranges.csv")
    for other in REFERENCE_FILES:
        (tmp_path / other.file).write_bytes((queries_dir() / "reference" / other.file).read_bytes())
    text = (tmp_path / spec.file).read_text().replace("hgb,unknown,12.0,17.5", "hgb,any,12.0,17.5")
    (tmp_path / spec.file).write_text(text)
    with pytest.raises(ReferenceDataError, match="hgb needs either one row for sex 'any' or one "
                                                 "each for female, male and unknown"):
        load_reference(duckdb.connect(), tmp_path)


def test_a_malformed_number_is_refused_with_file_line_and_column(tmp_path):
    spec = next(s for s in REFERENCE_FILES if s.file == "units.csv")
    (tmp_path / "units.csv").write_text("analyte,unit,canonical_unit,factor,source\n"
                                        "hgb,g/L,g/dL,ten,CODES.md §4.2\n")
    with pytest.raises(ReferenceDataError, match=r"units\.csv line 2 column factor: 'ten' is not "
                                                 r"a valid double"):
        read_reference(spec, tmp_path)


@pytest.mark.parametrize("line", ["hgb,g/L,g/dL,0.1", "hgb,g/L,g/dL,0.1,CODES.md §4.2,extra"])
def test_a_line_with_too_few_or_too_many_fields_is_refused(tmp_path, line):
    spec = next(s for s in REFERENCE_FILES if s.file == "units.csv")
    (tmp_path / "units.csv").write_text(f"analyte,unit,canonical_unit,factor,source\n{line}\n")
    with pytest.raises(ReferenceDataError, match=r"units\.csv line 2: expected 5 fields"):
        read_reference(spec, tmp_path)


# --- the query files -------------------------------------------------------------------------------
ALL_STAGES = stages("cohort") + stages("screen")


@pytest.mark.parametrize("stage", ALL_STAGES, ids=lambda s: s.path.name)
def test_each_query_file_is_one_select_with_a_header_naming_its_table_and_parameters(stage):
    assert stage.sql.startswith(f"-- {stage.table}:"), "header must start with the table name"
    assert "Parameters:" in stage.header
    assert stage.declared == stage.params, "header and SQL disagree on the parameters"
    assert all(p in BY_NAME for p in stage.params)
    statements = duckdb.extract_statements(stage.sql)
    assert len(statements) == 1, "one statement per file"
    assert statements[0].type == duckdb.StatementType.SELECT


def test_every_parameter_is_used_by_some_query():
    used = {p for s in ALL_STAGES for p in s.params}
    assert used == {p.name for p in PARAMETERS}


def test_no_clinical_code_is_a_sql_literal():
    """Codes live in queries/reference/*.csv: no LOINC, ICD-10, SNOMED or RxNorm literal."""
    code = re.compile(r"'(\d{3,5}-\d|[A-Z]\d\d(\.\d+)?|\d{6,18})'")
    for s in ALL_STAGES:
        body = re.sub(r"--[^\n]*", "", s.sql)
        assert not code.findall(body), (s.path.name, code.findall(body))


def test_every_value_set_a_query_names_exists():
    names = {r["valueset"] for r in REF["valuesets.csv"]}
    for s in ALL_STAGES:
        for vs in re.findall(r"valueset\s*(?:=|IN \()\s*'([a-z_0-9]+)'", s.sql):
            assert vs in names, (s.path.name, vs)
    for name in defaults()["alt_cause_valuesets"]:
        assert name in names


def test_stage_tables_are_the_documented_ones():
    tables = [s.table for s in ALL_STAGES]
    for t in ("bmc_breast_cancer", "bmc_lab", "bmc_lab_grade", "bmc_histology", "bmc_smear",
              "bmc_exclusion", "bmc_cohort", "bmc_funnel", "bmc_evidence", "bmc_screen"):
        assert t in tables
    assert len(tables) == len(set(tables))
    assert Path(queries_dir(), "bmc").is_dir()


# --- the files built from ../shared/clinical/codesets -----------------------------------------------
def _builder():
    import importlib.util

    path = queries_dir() / "reference" / "build_from_codesets.py"
    spec = importlib.util.spec_from_file_location("build_from_codesets", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_committed_code_lists_are_what_the_build_writes_from_the_sourced_lists(shared, tmp_path):
    _builder().build(shared / "clinical" / "codesets", tmp_path)
    for name in ("valuesets.csv", "lab_codes.csv", "drug_names.csv"):
        assert (tmp_path / name).read_text() == (queries_dir() / "reference" / name).read_text(), name


def test_a_flagged_row_without_a_decision_stops_the_build_naming_it(shared, tmp_path):
    src = shared / "clinical" / "codesets"
    for f in src.glob("*.csv"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    with (tmp_path / "mds.csv").open("a") as fh:
        fh.write("http://snomed.info/sct,999999999,Made-up flagged row,test,FLAG: needs review\n")
    mod = _builder()
    with pytest.raises(mod.BuildError, match=r"mds\.csv line \d+: FLAG: row "
                                             r"http://snomed.info/sct\|999999999 has no decision"):
        mod.build(tmp_path, tmp_path)


def test_every_flagged_row_of_the_sourced_lists_was_decided_and_excluded_rows_stay_out(shared):
    import csv

    decided = {(r["system"], r["code"]) for r in csv.DictReader(
        (queries_dir() / "reference" / "sources" / "decisions.csv").open(encoding="utf-8"))}
    codesets = shared / "clinical" / "codesets"
    dotted = {r["system"] for r in REF["code_systems.csv"] if r["strip_dots"]}
    in_use = {(r["system"], code_key(r["system"], r["code"], dotted), r["match"])
              for r in REF["valuesets.csv"]} | {
        (r["system"], r["code"], "exact") for r in REF["lab_codes.csv"]}
    for f in codesets.glob("*.csv"):
        for r in csv.DictReader(f.open(encoding="utf-8")):
            if "FLAG:" in r["how_obtained"] and f.name != "review_excluded.csv":
                assert (r["system"], r["code"]) in decided, (f.name, r["code"])
    kept_anyway = {("http://loinc.org", "771-6")}  # CODES.md §4.1; see reference/README.md
    for r in csv.DictReader((codesets / "review_excluded.csv").open(encoding="utf-8")):
        k = code_key(r["system"], r["code"], dotted)
        if (r["system"], r["code"]) not in kept_anyway:
            assert (r["system"], k, "exact") not in in_use, r["code"]


def test_value_sets_keep_their_sources_and_the_supporting_marrow_codes_apart():
    rows = REF["valuesets.csv"]
    proof = {(r["system"], r["code"]) for r in rows if r["valueset"] == "marrow_metastasis"}
    assert proof == {("http://hl7.org/fhir/sid/icd-10-cm", "C79.52"),
                     ("http://snomed.info/sct", "94217008")}
    supporting = {r["code"] for r in rows
                  if r["valueset"] in ("myelophthisis", "bone_or_marrow_metastasis")}
    assert {"D61.82", "2694001", "284.2", "198.5", "C79.5"} <= supporting
    assert all(r["source"] for r in rows)
