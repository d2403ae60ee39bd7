"""bmc_lab_grade (queries/bmc/30_lab_grade.sql) grades values at the band edges of
queries/reference/ctcae_v5.csv: the one grading the cohort, the screen and the outcomes share.
Each case is a hand-made bmc_lab row graded by the real stage in an in-memory DuckDB."""
from __future__ import annotations

import duckdb

from cohort.parameters import resolve
from cohort.reference import load_reference
from cohort.runner import run_stage, stages

GRADE_STAGE = next(s for s in stages("cohort") if s.table == "bmc_lab_grade")

CASES = [  # analyte, value, comparator, lln, grade (anaemia grade 4 in use)
    ("hgb", 12.0, None, 12.0, 0), ("hgb", 11.99, None, 12.0, 1), ("hgb", 10.0, None, 12.0, 1),
    ("hgb", 9.99, None, 12.0, 2), ("hgb", 8.0, None, 12.0, 2), ("hgb", 7.99, None, 12.0, 3),
    ("hgb", 6.5, None, 12.0, 3), ("hgb", 6.49, None, 12.0, 4), ("hgb", 6.5, "<", 12.0, 4),
    ("plt", 75.0, None, 150.0, 1), ("plt", 74.9, None, 150.0, 2), ("plt", 24.9, None, 150.0, 4),
    ("wbc", 2.0, None, 4.0, 2), ("wbc", 0.99, None, 4.0, 4), ("wbc", 4.2, None, 4.5, 1),
    ("anc", 0.49, None, 1.5, 4), ("plt", 150.0, "<", 150.0, 1), ("plt", 150.0, "<=", 150.0, 0),
]


def graded(anemia_grade4: bool) -> list[int]:
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
        "'final', '2005-01-01', DATE '2005-01-01', DATE '2005-01-01', 'day', ?, ?, NULL, ?, "
        "NULL, ?, 'test', true)",
        [(n, n, a, v, c, v, lln) for n, (a, v, c, lln, _) in enumerate(CASES)])
    run_stage(con, GRADE_STAGE, resolve({"anemia_grade4": anemia_grade4}))
    return [g for (g,) in con.execute("SELECT grade FROM bmc_lab_grade ORDER BY _rid").fetchall()]


def test_band_edges_with_the_ctc_anaemia_grade_4():
    assert graded(True) == [case[-1] for case in CASES]


def test_without_it_anaemia_stops_at_grade_3_as_ctcae_v5():
    want = [3 if (a == "hgb" and g == 4) else g for a, _, _, _, g in CASES]
    assert graded(False) == want

