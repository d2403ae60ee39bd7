"""Spark test bed: one local[2] session (UTC, 1 shuffle partition) and one 1,000-patient
synthetic Bulk export per test session, loaded into DuckDB and exported as Parquet.

Every test here is skipped, with the reason, where pyspark or a Java runtime is missing."""
from __future__ import annotations

import pytest

from etl.spark.session import java_version


def _spark_or_skip():
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[spark]')")
    if java_version() is None:
        pytest.skip("no Java runtime (`java -version` failed): the Spark engine needs Java 17+")


@pytest.fixture(scope="session")
def spark():
    _spark_or_skip()
    from etl.spark.session import spark_session

    session = spark_session("local[2]", {"spark.sql.shuffle.partitions": "1",
                                         "spark.default.parallelism": "2"},
                            app_name="bmc-cohort-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def bulk_1000(tmp_path_factory):
    """A 1,000-patient synthetic Bulk NDJSON export (written once per session)."""
    from cohort.synth import stream_bulk

    out = tmp_path_factory.mktemp("bulk1000")
    stream_bulk(out, 1000)
    return out


@pytest.fixture(scope="session")
def duck_1000(bulk_1000, tmp_path_factory):
    """The export loaded by the DuckDB loader; the cohort and screen built on DuckDB."""
    from cohort.definition import build_cohort
    from cohort.runner import open_database, run_group
    from etl.load import load

    db = tmp_path_factory.mktemp("duck1000") / "db.duckdb"
    load(db, [bulk_1000])
    con = open_database(db)
    result = build_cohort(con)
    run_group(con, "screen", result.params)
    con.close()
    return db


@pytest.fixture(scope="session")
def parquet_1000(duck_1000, tmp_path_factory):
    """``bmc export`` of the DuckDB database."""
    from etl.export import export_parquet

    out = tmp_path_factory.mktemp("pq1000") / "export"
    export_parquet(duck_1000, out)
    return out


@pytest.fixture(scope="session")
def spark_screen(spark, parquet_1000):
    """``bmc screen --engine spark`` over the export: every cohort and screen stage, run once
    per test session; the stage tables stay registered in ``spark`` as temporary views."""
    from cohort.spark_runner import screen_spark

    return screen_spark(spark, parquet_1000)
