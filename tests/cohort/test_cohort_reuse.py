"""Stage reuse on DuckDB: a repeated build on unchanged data rebuilds nothing, a changed
parameter rebuilds exactly the stages that bind it and those that read them, and the tables
are then the same as a full rebuild's.

The patients are the screen's small export (smear, histology, coded and excluded cases), so
every stage has rows to compare.
"""
from __future__ import annotations

import re

import pandas as pd
import pytest

from cohort.definition import build_cohort
from cohort.parameters import resolve
from cohort.runner import STATE_TABLE, run_group, stages
from cohort.screen import run_screen
from tests.cohort.test_cohort_charts import build_db
from tests.cohort.test_cohort_screen import CHARTS


@pytest.fixture
def db(tmp_path):
    con = build_db(tmp_path, list(CHARTS.values()))
    run_screen(con)  # every cohort and screen table built once with the defaults
    return con


def readers_of(parameter: str) -> set[str]:
    """Tables whose stage lists ``parameter`` in its header, and every later stage that reads
    one of them (by name in its SQL), worked out from the files independently of the runner."""
    reached: set[str] = set()
    for stage in stages(None):
        declared = re.search(r"^--\s*Parameters:(.*)$", stage.sql, re.MULTILINE)
        body = re.sub(r"--[^\n]*", "", stage.sql)
        if (declared and f"${parameter}" in declared.group(1)) or \
                any(re.search(rf"\b{t}\b", body) for t in reached):
            reached.add(stage.table)
    return reached


def snapshot(con, tables) -> dict[str, pd.DataFrame]:
    return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").df() for t in tables}


def test_a_repeat_on_unchanged_data_rebuilds_no_stage(db):
    again = run_screen(db)
    assert again.timings == {}
    assert build_cohort(db, reuse=True).timings == {}


def test_a_changed_smear_window_rebuilds_exactly_the_stages_that_read_it(db):
    result = build_cohort(db, {"smear_window_days": 7}, reuse=True)
    assert set(result.timings) == readers_of("smear_window_days") & {
        s.table for s in stages("cohort")}
    assert {"bmc_smear", "bmc_index_lab", "bmc_funnel", "bmc_cohort"} <= set(result.timings)
    assert not {"bmc_lab", "bmc_lab_grade", "bmc_coded", "bmc_date"} & set(result.timings)
    screen = run_screen(db, {"smear_window_days": 7})
    assert set(screen.timings) - set(result.timings) == readers_of("smear_window_days") & {
        s.table for s in stages("screen")}
    assert "bmc_screen_chemo" not in screen.timings


def test_tables_after_a_partial_rebuild_equal_a_full_rebuild(db):
    tables = [s.table for s in stages(None)]
    run_screen(db, {"smear_window_days": 7, "anemia_grade4": False})
    partial = snapshot(db, tables)
    build_cohort(db, {"smear_window_days": 7, "anemia_grade4": False})  # reuse=False: all
    db.execute(f"DROP TABLE {STATE_TABLE}")
    run_screen(db, {"smear_window_days": 7, "anemia_grade4": False})
    full = snapshot(db, tables)
    for t in tables:
        pd.testing.assert_frame_equal(partial[t], full[t], obj=t)


def test_a_dropped_stage_table_is_rebuilt_alone(db):
    # its readers were built from the same rows the rebuild gives back, so they are kept
    before = snapshot(db, ["bmc_histology"])["bmc_histology"]
    db.execute("DROP TABLE bmc_histology")
    result = run_group(db, "cohort", resolve(None))
    assert set(result.timings) == {"bmc_histology"}
    pd.testing.assert_frame_equal(snapshot(db, ["bmc_histology"])["bmc_histology"], before)


def test_a_reused_build_still_warns_about_unmapped_codes_of_a_rule(tmp_path):
    from tests.cohort.test_codes import LOCAL, coded_condition
    from tests.cohort.test_cohort_charts import Chart

    local = Chart("local-breast-code")
    coded_condition(local, LOCAL, "BRCA-1", "Carcinoma of breast")
    con = build_db(tmp_path, [local])
    first = build_cohort(con, reuse=True)
    again = build_cohort(con, reuse=True)
    warning = ("warning: 1 unmapped code(s) in the data look like breast_cancer, which decides "
               "rule_breast_cancer; they are not read: see `bmc codes`")
    assert warning in first.notes
    assert "cohort tables reused (same parameters, data and queries)" in again.notes
    assert warning in again.notes
