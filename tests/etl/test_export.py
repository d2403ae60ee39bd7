"""`bmc export`: every declared and provenance table as hive-partitioned Parquet that reads
back (here with DuckDB) to the same rows; timestamps in UTC, microseconds."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from etl.declared import load_view_json
from etl.export import SHARD_COLUMN, ExportError, export_parquet
from etl.load import load

BULK = Path(__file__).resolve().parents[2] / "sample_bundles" / "bulk"


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("export") / "db.duckdb"
    load(db, [BULK])
    return db


def _rows(con, sql):
    return sorted(con.execute(sql).fetchall(), key=repr)


def test_every_table_reads_back_the_same(sample_db, tmp_path):
    out = tmp_path / "pq"
    written = {t.name: t for t in export_parquet(sample_db, out)}
    assert set(load_view_json()) <= set(written)
    assert {"resource", "source_file", "load_run"} <= set(written)
    manifest = json.loads((out / "_export.json").read_text())
    assert [t["name"] for t in manifest["tables"]] == list(written)
    con = duckdb.connect(str(sample_db), read_only=True)
    for name, t in written.items():
        cols = ", ".join(f'"{c}"' for c, _ in t.columns if c != "content_hash")
        back = f"read_parquet('{out / name}/**/*.parquet', hive_partitioning = true)"
        assert _rows(con, f"SELECT {cols} FROM {back}") == \
            _rows(con, f'SELECT {cols} FROM "{name}"'), name
    con.close()


def test_patient_tables_are_sharded_by_patient(sample_db, tmp_path):
    out = tmp_path / "pq"
    export_parquet(sample_db, out)
    shards = {p.name for p in (out / "observation").iterdir()}
    assert shards and all(s.startswith(f"{SHARD_COLUMN}=") for s in shards)
    con = duckdb.connect()
    # one patient's rows of every table are in the same shard
    mixed = con.execute(f"""
        SELECT count(*) FROM (
          SELECT patient_key, count(DISTINCT {SHARD_COLUMN}) AS n
          FROM read_parquet('{out}/*/{SHARD_COLUMN}=*/*.parquet', hive_partitioning = true,
                            union_by_name = true)
          WHERE patient_key IS NOT NULL GROUP BY patient_key) WHERE n > 1""").fetchone()[0]
    assert mixed == 0


def test_timestamps_are_utc_microseconds(sample_db, tmp_path):
    out = tmp_path / "pq"
    export_parquet(sample_db, out)
    con = duckdb.connect()
    kinds = dict(con.execute(
        f"SELECT name, logical_type FROM parquet_schema('{out}/load_run/data_0.parquet')"
    ).fetchall())
    assert "isAdjustedToUTC=1" in kinds["started_at"].replace(" ", "").replace("true", "1")
    assert "MICROS" in kinds["started_at"].upper()


def test_refuses_a_folder_that_is_not_empty(sample_db, tmp_path):
    (tmp_path / "x.txt").write_text("mine")
    with pytest.raises(ExportError, match="not empty; choose a new folder or pass --overwrite"):
        export_parquet(sample_db, tmp_path)


def test_missing_database(tmp_path):
    with pytest.raises(ExportError, match="no such database file"):
        export_parquet(tmp_path / "nope.duckdb", tmp_path / "out")


def test_cli_export_and_refusal(sample_db, tmp_path):
    from typer.testing import CliRunner

    from cohort.cli import app

    out = tmp_path / "pq"
    done = CliRunner().invoke(app, ["export", "--db", str(sample_db), "--out", str(out)])
    assert done.exit_code == 0
    assert (out / "_export.json").is_file()
    again = CliRunner().invoke(app, ["export", "--db", str(sample_db), "--out", str(out)])
    assert again.exit_code == 1
    assert "not empty; choose a new folder or pass --overwrite" in again.output
