"""The library entry inside a Spark session someone already has (a Databricks notebook): the
cohort over tables that live in the session's catalog, named by a mapping of declared table
-> catalog table, instead of a lake folder (docs/spark.md, "Inside an existing session")."""
from __future__ import annotations

import json

import pytest

from cohort.errors import DatabaseError
from cohort.runner import REQUIRED_TABLES


@pytest.fixture(scope="module")
def sample_lake(tmp_path_factory):
    """The committed sample loaded and its cohort built by DuckDB, and ``bmc export`` of it
    -> (the DuckDB cohort's patient ids, the lake folder)."""
    from cohort.definition import build_cohort
    from cohort.paths import sample_bundles_dir
    from cohort.runner import open_database
    from etl.export import export_parquet
    from etl.load import load

    base = tmp_path_factory.mktemp("catalog")
    db = base / "db.duckdb"
    load(db, [sample_bundles_dir() / "bulk"])
    con = open_database(db)
    ids = sorted(build_cohort(con).cohort.patient_id)
    con.close()
    export_parquet(db, base / "lake")
    return ids, base / "lake"


def _as_catalog(spark, lake) -> dict[str, str]:
    """Every table of the lake as a table of the session's catalog (a temporary view named
    ``hospital_<table>``, as a Databricks schema would hold them); the mapping to them."""
    tables = [t["name"] for t in json.loads((lake / "_export.json").read_text())["tables"]]
    for t in tables:
        spark.read.parquet(str(lake / t)).createOrReplaceTempView(f"hospital_{t}")
    return {t: f"hospital_{t}" for t in tables}


@pytest.mark.slow
def test_the_cohort_over_catalog_tables_is_the_duckdb_cohort(spark, sample_lake):
    from cohort.spark_runner import cohort_spark

    duck_ids, lake = sample_lake
    result = cohort_spark(spark, _as_catalog(spark, lake))
    assert duck_ids  # the sample has a cohort: the comparison can fail
    assert sorted(result.cohort.patient_id) == duck_ids


def test_a_mapping_without_a_table_the_cohort_reads_is_refused_naming_it(spark, sample_lake):
    from cohort.spark_runner import cohort_spark

    mapping = _as_catalog(spark, sample_lake[1])
    del mapping["observation"]
    assert "observation" in REQUIRED_TABLES
    with pytest.raises(DatabaseError, match="the table mapping has no observation"):
        cohort_spark(spark, mapping)


def test_a_catalog_table_that_does_not_exist_is_named(spark, sample_lake):
    from cohort.spark_runner import register_catalog

    mapping = _as_catalog(spark, sample_lake[1]) | {"patient": "hospital_no_such_table"}
    with pytest.raises(DatabaseError, match="patient: the catalog table 'hospital_no_such_"
                                            "table' cannot be read"):
        register_catalog(spark, mapping)
