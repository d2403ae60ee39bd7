"""Parity: every stage of queries/bmc/ (cohort and screen) gives the same rows on Spark, over
the Parquet export of a 1,000-patient synthetic export, as on DuckDB over the database."""
from __future__ import annotations

import datetime as dt
import math
import re

import duckdb
import pandas as pd
import pytest

from cohort.runner import stages

# string_agg(DISTINCT ...) without ORDER BY has no defined order in either engine (Spark's
# translation sorts): these columns are compared as the multiset of their words.
UNORDERED_TEXT = {
    ("bmc_histology", "code"), ("bmc_histology", "evidence_types"),
    ("bmc_patient_rule", "alt_causes"), ("bmc_evidence", "code"),
    ("bmc_screen_cytopenia", "bone_codes"), ("bmc_screen", "reasons"),
}


def _cell(v):
    if v is None or v is pd.NaT or v is pd.NA:
        return None
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 9)
    if isinstance(v, pd.Timestamp | dt.datetime):
        return v.date().isoformat() if v == v.normalize() else v.isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if hasattr(v, "tolist"):  # numpy arrays and scalars
        v = v.tolist()
    if isinstance(v, list | tuple):
        return tuple(_cell(x) for x in v)
    return v


def canonical(df: pd.DataFrame, table: str) -> list[tuple]:
    rows = []
    for rec in df.itertuples(index=False):
        row = []
        for col, v in zip(df.columns, rec, strict=True):
            v = _cell(v)
            if (table, col) in UNORDERED_TEXT and isinstance(v, str):
                v = " ".join(sorted(re.findall(r"[^\s,;()]+", v)))
            row.append(v)
        rows.append(tuple(row))
    return sorted(rows, key=repr)


@pytest.fixture(scope="module")
def spark_screen(spark, parquet_1000):
    """``bmc screen --engine spark``: every cohort and screen stage, run once."""
    from cohort.spark_runner import screen_spark

    return screen_spark(spark, parquet_1000)


@pytest.fixture(scope="module")
def spark_stages(spark, spark_screen):
    return spark  # the stages are its temporary views now


ALL_STAGES = [s.table for s in stages("cohort")] + [s.table for s in stages("screen")]


@pytest.mark.parametrize("table", ALL_STAGES)
def test_stage_parity(spark_stages, duck_1000, table):
    con = duckdb.connect(str(duck_1000), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    duck = con.execute(f'SELECT * FROM "{table}"').df()
    con.close()
    sp = spark_stages.table(table).toPandas()
    assert list(sp.columns) == list(duck.columns)
    assert len(sp) == len(duck)
    a, b = canonical(duck, table), canonical(sp, table)
    diff = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
    assert not diff, f"{table}: {len(diff)} rows differ, first: {diff[0]}"


def test_cohort_and_screen_results(spark_screen, duck_1000):
    """What `bmc cohort` / `bmc screen --engine spark` print equals the DuckDB result."""
    from cohort.runner import open_database
    from cohort.screen import run_screen

    on_spark = spark_screen
    con = open_database(duck_1000)
    on_duck = run_screen(con)
    con.close()
    assert on_spark.cohort.counts == on_duck.cohort.counts
    assert canonical(on_spark.cohort.cohort, "c") == canonical(on_duck.cohort.cohort, "c")
    assert canonical(on_spark.cohort.funnel, "f") == canonical(on_duck.cohort.funnel, "f")
    assert on_spark.counts == on_duck.counts
    assert list(on_spark.screen.patient_id) == list(on_duck.screen.patient_id)
