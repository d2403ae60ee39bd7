"""bmc_lab_grade (queries/bmc/30_lab_grade.sql) grades values at the band edges of
queries/reference/ctcae_v5.csv: the one grading the cohort, the screen and the outcomes share.
Each case is a hand-made bmc_lab row graded by the real stage in an in-memory DuckDB."""
from __future__ import annotations

import duckdb

from cohort.parameters import resolve
from cohort.reference import load_reference
from cohort.runner import run_stage, stages

GRADE_STAGE = next(s for s in stages("cohort") if s.table == "bmc_lab_grade")
UNIT_KEY_STAGE = next(s for s in stages("cohort") if s.table == "bmc_unit_key")

CASES = [  # analyte, value, comparator, lln, grade (anaemia grade 4 in use)
    ("hgb", 12.0, None, 12.0, 0), ("hgb", 11.99, None, 12.0, 1), ("hgb", 10.0, None, 12.0, 1),
    ("hgb", 9.99, None, 12.0, 2), ("hgb", 8.0, None, 12.0, 2), ("hgb", 7.99, None, 12.0, 3),
    ("hgb", 6.5, None, 12.0, 3), ("hgb", 6.49, None, 12.0, 4), ("hgb", 6.5, "<", 12.0, 4),
    ("plt", 75.0, None, 150.0, 1), ("plt", 74.9, None, 150.0, 2), ("plt", 24.9, None, 150.0, 4),
    ("wbc", 2.0, None, 4.0, 2), ("wbc", 0.99, None, 4.0, 4), ("wbc", 4.2, None, 4.5, 1),
    ("anc", 0.49, None, 1.5, 4), ("plt", 150.0, "<", 150.0, 1), ("plt", 150.0, "<=", 150.0, 0),
]


def graded(anemia_grade4: bool, cases=None, unit_raw: str | None = None,
           factor: float = 1.0) -> list[int]:
    """Grades of ``cases`` (default CASES); values and LLNs are given in ``unit_raw`` and
    stored as bmc_lab does: value_raw as reported, value and lln x ``factor`` (canonical)."""
    cases = CASES if cases is None else cases
    con = duckdb.connect()
    load_reference(con)
    con.execute("""
        CREATE TABLE bmc_lab (_rid BIGINT, resource_key VARCHAR, patient_key VARCHAR,
            value_source VARCHAR, component_no INTEGER, analyte VARCHAR, code VARCHAR,
            status VARCHAR, effective_text VARCHAR, date_lo DATE, date_hi DATE,
            date_precision VARCHAR, value_raw DOUBLE, comparator VARCHAR, unit_raw VARCHAR,
            value DOUBLE, unit VARCHAR, lln DOUBLE, lln_source VARCHAR, usable BOOLEAN)""")
    con.executemany(
        "INSERT INTO bmc_lab VALUES (?, 'Observation/' || ?, 'Patient/p', 'value', -1, ?, NULL, "
        "'final', '2005-01-01', DATE '2005-01-01', DATE '2005-01-01', 'day', ?, ?, ?, ?, "
        "NULL, ?, 'test', true)",
        [(n, n, a, v, c, unit_raw, v * factor, lln * factor)
         for n, (a, v, c, lln, _) in enumerate(cases)])
    # the unit keys the real stage gives the values' units (as if the Observations had them)
    con.execute("CREATE TABLE observation AS SELECT ?::VARCHAR AS value_unit_code, "
                "NULL::VARCHAR AS value_unit", [unit_raw])
    con.execute("CREATE TABLE observation_reference_range (low_code VARCHAR, low_unit VARCHAR)")
    run_stage(con, UNIT_KEY_STAGE, {})
    run_stage(con, GRADE_STAGE, resolve({"anemia_grade4": anemia_grade4}))
    return [g for (g,) in con.execute("SELECT grade FROM bmc_lab_grade ORDER BY _rid").fetchall()]


def test_band_edges_with_the_ctc_anaemia_grade_4():
    assert graded(True) == [case[-1] for case in CASES]


def test_without_it_anaemia_stops_at_grade_3_as_ctcae_v5():
    want = [3 if (a == "hgb" and g == 4) else g for a, _, _, _, g in CASES]
    assert graded(False) == want



# Haemoglobin reported in mmol/L (issue 11 §5): CTCAE v5.0 gives the anaemia bands in mmol/L
# too (G1 < LLN - 6.2, G2 < 6.2 - 4.9, G3 < 4.9); converted with 1.6114 g/dL per mmol/L,
# 6.2 mmol/L is 9.99 g/dL (grade 2) and 4.9 is 7.90 g/dL (grade 3), where CTCAE says 1 and 2.
MMOL = 1.6114
MMOL_CASES = [  # value and LLN in mmol/L (LLN 7.447 = the default female 12.0 g/dL)
    ("hgb", 7.45, None, 12.0 / MMOL, 0), ("hgb", 7.44, None, 12.0 / MMOL, 1),
    ("hgb", 6.2, None, 12.0 / MMOL, 1), ("hgb", 6.19, None, 12.0 / MMOL, 2),
    ("hgb", 4.9, None, 12.0 / MMOL, 2), ("hgb", 4.89, None, 12.0 / MMOL, 3),
    ("hgb", 4.0, None, 12.0 / MMOL, 3), ("hgb", 3.99, None, 12.0 / MMOL, 4),
    ("hgb", 4.9, "<", 12.0 / MMOL, 3),
]


def test_haemoglobin_in_mmol_per_litre_is_graded_on_ctcaes_mmol_bands():
    assert graded(True, MMOL_CASES, "mmol/L", MMOL) == [g for *_, g in MMOL_CASES]


def test_the_mmol_boundaries_6_2_and_4_9_are_grades_1_and_2_not_2_and_3():
    cases = [("hgb", 6.2, None, 12.0 / MMOL, 1), ("hgb", 4.9, None, 12.0 / MMOL, 2)]
    assert graded(True, cases, "mmol/L", MMOL) == [1, 2]
    # the same amounts reported in g/dL are graded on the g/dL bands: 9.99 and 7.90 g/dL
    in_g_dl = [("hgb", 6.2 * MMOL, None, 12.0, 2), ("hgb", 4.9 * MMOL, None, 12.0, 3)]
    assert graded(True, in_g_dl, "g/dL") == [2, 3]


def test_mmol_grade_4_is_the_ctc_row_and_follows_the_parameter():
    assert graded(False, [("hgb", 3.99, None, 12.0 / MMOL, 3)], "mmol/L", MMOL) == [3]


def test_a_unit_spelled_differently_is_graded_on_the_same_mmol_bands():
    assert graded(True, [("hgb", 6.2, None, 12.0 / MMOL, 1)], "mmol / L", MMOL) == [1]
