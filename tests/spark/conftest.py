"""Spark test bed: one local[2] session (UTC, 1 shuffle partition) and one corpus per test
session, taken through both engines once:

* the corpus: a 1,000-patient synthetic Bulk export, the committed sample's Bulk export
  (the paper's 22 and the planted edge cases: CBC panels with components, unit variants,
  a corrected version) and a handcrafted export of loader edge cases (versions, a deleted/
  file, rejections, a conditional reference, gzip, a transaction Bundle);
* DuckDB: ``bmc load`` of the corpus, the cohort and screen built (``duck_db``), and
  ``bmc export`` of it (``duck_lake``);
* Spark: ``load_lake`` of the same corpus (``lake``), the cohort and screen built on it and
  stored there (``spark_screen``).

Every parity test compares these. Every test here is skipped, with the reason, where pyspark
or a Java runtime is missing."""
from __future__ import annotations

import pytest
from small_export import write_small_export

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
def small_export(tmp_path_factory):
    return write_small_export(tmp_path_factory.mktemp("small") / "export")


@pytest.fixture(scope="session")
def corpus(bulk_1000, small_export):
    """The inputs both engines load: the 1,000 patients, the committed sample, the edge cases."""
    from cohort.paths import sample_bundles_dir

    return [bulk_1000, sample_bundles_dir() / "bulk", small_export]


@pytest.fixture(scope="session")
def duck_db(corpus, tmp_path_factory):
    """The corpus loaded by the DuckDB loader; the cohort and screen built on DuckDB."""
    from cohort.definition import build_cohort
    from cohort.runner import open_database, run_group
    from etl.load import load

    db = tmp_path_factory.mktemp("duck") / "db.duckdb"
    load(db, corpus)
    con = open_database(db)
    result = build_cohort(con)
    run_group(con, "screen", result.params)
    con.close()
    return db


@pytest.fixture(scope="session")
def duck_lake(duck_db, tmp_path_factory):
    """``bmc export`` of the DuckDB database."""
    from etl.export import export_parquet

    out = tmp_path_factory.mktemp("ducklake") / "export"
    export_parquet(duck_db, out)
    return out


@pytest.fixture(scope="session")
def lake_build(spark, corpus, tmp_path_factory):
    """``load_lake`` of the corpus, written over an older lake (``overwrite`` replaces it as
    a whole) -> (the lake folder, its summary, its progress messages)."""
    from etl.spark.load import load_lake

    lake = tmp_path_factory.mktemp("sparklake") / "lake"
    (lake / "stale_table").mkdir(parents=True)
    (lake / "_export.json").write_text("{}")
    messages: list[str] = []
    summary = load_lake(spark, corpus, lake, overwrite=True, progress=messages.append)
    return lake, summary, messages


@pytest.fixture(scope="session")
def lake(lake_build):
    """The Parquet lake Spark built from the corpus (every Spark-side test reads this one)."""
    return lake_build[0]


@pytest.fixture(scope="session")
def lake_load(lake_build):
    """What ``load_lake`` reported: (summary, progress messages)."""
    return lake_build[1], lake_build[2]


@pytest.fixture(scope="session")
def spark_screen(spark, lake):
    """``bmc screen --engine spark`` over the Spark-built lake: every cohort and screen stage,
    run once per test session and stored in the lake; the stage tables stay registered in
    ``spark`` as temporary views."""
    from cohort.spark_runner import screen_spark

    return screen_spark(spark, lake)
