"""The lake comparison every Spark load test uses: a Spark-built lake is the lake `bmc load`
(DuckDB) followed by `bmc export` writes -- the same declared-table rows, provenance and
rejections. Lakes are read back with DuckDB (``read_parquet``), never with Spark."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import duckdb

from etl.declared import compiled_views

VIEWS = compiled_views()


def lake_rows(root: Path, table: str, columns: list[str]) -> Counter:
    cols = ", ".join(f'"{c}"' for c in columns)
    con = duckdb.connect()
    try:
        rows = con.execute(f"SELECT {cols} FROM read_parquet('{root}/{table}/**/*.parquet', "
                           f"hive_partitioning = false)").fetchall()
    finally:
        con.close()
    return Counter(map(repr, rows))


def manifest(root: Path) -> dict:
    return {t["name"]: t for t in json.loads((root / "_export.json").read_text())["tables"]}


def table_columns(root: Path, table: str, drop=("_rid",)) -> list[str]:
    return [c for c, _ in manifest(root)[table]["columns"] if c not in drop]


def lake_resources(root: Path) -> Counter:
    """(type, id, status, source path, line): what the evidence ledger shows."""
    con = duckdb.connect()
    try:
        rows = con.execute(
            f"SELECT r.resource_type, r.id, r.status, f.path, r.line, r.entry "
            f"FROM read_parquet('{root}/resource/*.parquet') r "
            f"JOIN read_parquet('{root}/source_file/*.parquet') f USING (file_id)").fetchall()
    finally:
        con.close()
    return Counter(map(repr, rows))


def assert_same_lake(duck: Path, spark: Path) -> None:
    theirs, ours = manifest(duck), manifest(spark)
    for view in VIEWS:
        assert ours[view.name]["columns"] == theirs[view.name]["columns"], view.name
        assert ours[view.name]["partitioned"] == theirs[view.name]["partitioned"], view.name
        cols = table_columns(duck, view.name)
        assert lake_rows(spark, view.name, cols) == lake_rows(duck, view.name, cols), view.name
    assert lake_resources(spark) == lake_resources(duck)
    for table in ("load_error", "unresolved_reference", "deletion"):
        cols = table_columns(duck, table, drop=("_rid", "file_id"))
        assert lake_rows(spark, table, cols) == lake_rows(duck, table, cols), table
    for table in ("resource", "source_file", "load_run", "load_error", "deletion"):
        assert ours[table]["columns"] == theirs[table]["columns"], table
