"""``bmc export``: every declared table (and the provenance tables) as Parquet, for any engine.

Layout, one folder per table under ``out``::

    out/observation/patient_shard=3/data_0.parquet      (tables with a patient_key)
    out/medication/data_0.parquet                        (tables without one)
    out/_export.json                                     (tables, columns, row counts)

Tables whose rows belong to a patient are hive-partitioned by ``patient_shard``, the first hex
digit of ``md5(patient key)`` (16 shards; Spark, DuckDB and most lakehouse engines compute the
same md5), so one patient's rows of every table sit in the same shard: a cluster can join a
shard of ``observation`` to the same shard of ``condition`` without a shuffle. Readers drop the
partition column or ignore it; it is derived, never a fact.

Timestamps are written in UTC with microsecond precision (``TIMESTAMP WITH TIME ZONE``, Parquet
``isAdjustedToUTC``), which Spark reads as its ``TIMESTAMP`` type. FHIR dates stay ISO text, as
in the declared tables. ``resource_raw`` (the optional raw JSON) and derived tables (``bmc_*``,
``ref_*``) are not exported: the first is a copy of the sources, the others are rebuilt from
``queries/`` by whichever engine reads the export.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from .declared import load_view_json
from .errors import EtlError
from .sql import quote_ident, sql_string

#: The provenance tables written next to the declared ones (when the database has them).
PROVENANCE_TABLES = ("resource", "source_file", "load_run", "load_error", "deletion",
                     "unresolved_reference", "resource_full_url", "resource_identifier")

SHARD_COLUMN = "patient_shard"
MANIFEST = "_export.json"


class ExportError(EtlError):
    """The export could not be written (no such database, output not empty, ...)."""


@dataclass(frozen=True)
class ExportedTable:
    name: str
    rows: int
    partitioned: bool
    columns: tuple[tuple[str, str], ...]  # (name, DuckDB type) as written


def shard_expression(key_sql: str) -> str:
    """The SQL of a row's shard from its patient key (the same text in DuckDB and Spark)."""
    return f"substr(md5({key_sql}), 1, 1)"


def patient_key_column(table: str, columns: list[str]) -> str | None:
    if table == "patient":
        return "resource_key"
    return "patient_key" if "patient_key" in columns else None


def select_list(cols: list[tuple[str, str]]) -> str:
    out = []
    for name, dtype in cols:
        q = quote_ident(name)
        upper = dtype.upper()
        if upper.startswith("TIMESTAMP") and "TIME ZONE" not in upper:
            # naive timestamps are UTC by the loader's convention; ns/ms/s -> microseconds
            out.append(f"timezone('UTC', CAST({q} AS TIMESTAMP)) AS {q}")
        elif upper == "UBIGINT":
            out.append(f"CAST({q} AS DECIMAL(20, 0)) AS {q}")  # Spark has no unsigned 64-bit
        elif upper == "JSON":
            out.append(f"CAST({q} AS VARCHAR) AS {q}")
        else:
            out.append(q)
    return ", ".join(out)


def export_parquet(db: str | Path | duckdb.DuckDBPyConnection, out: str | Path, *,
                   overwrite: bool = False) -> list[ExportedTable]:
    """Write every declared table and the provenance tables of ``db`` under ``out``.

    ``out`` must be missing or empty unless ``overwrite`` (then the table folders this function
    writes are replaced). Returns what was written, also recorded in ``out/_export.json``.
    """
    out = Path(out)
    own = isinstance(db, duckdb.DuckDBPyConnection)
    if isinstance(db, duckdb.DuckDBPyConnection):
        con = db
    else:
        if not Path(db).is_file():
            raise ExportError(f"{db}: no such database file; create it with "
                              f"`bmc load PATH... --db {db}`")
        try:
            con = duckdb.connect(str(db), read_only=True)
        except duckdb.Error as e:  # held for writing by another process, not a database
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ExportError(f"{db}: cannot open the database ({first}); if another "
                              f"program is writing to it, try again when it has finished"
                              ) from None
    try:
        con.execute("SET TimeZone = 'UTC'")
        have = {r[0]: None for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "ORDER BY table_name").fetchall()}
        tables = [t for t in [*load_view_json(), *PROVENANCE_TABLES] if t in have]
        if not any(t in have for t in load_view_json()):
            raise ExportError(f"{db}: no declared tables to export; load an export first with "
                              f"`bmc load PATH... --db FILE`")
        if out.exists() and any(out.iterdir()) and not overwrite:
            raise ExportError(f"{out}: the folder is not empty; choose a new folder or pass "
                              f"--overwrite")
        out.mkdir(parents=True, exist_ok=True)
        written = [_export_table(con, t, out) for t in tables]
    finally:
        if not own:
            con.close()
    (out / MANIFEST).write_text(json.dumps({
        "format": "bmc-cohort parquet export 1",
        "shard_column": SHARD_COLUMN,
        "tables": [{"name": t.name, "rows": t.rows, "partitioned": t.partitioned,
                    "columns": [list(c) for c in t.columns]} for t in written],
    }, indent=1) + "\n", encoding="utf-8")
    return written


def _export_table(con: duckdb.DuckDBPyConnection, table: str, out: Path) -> ExportedTable:
    cols = [(r[0], r[1]) for r in con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
        [table]).fetchall()]
    key = patient_key_column(table, [c for c, _ in cols])
    rows = con.execute(f"SELECT count(*) FROM {quote_ident(table)}").fetchall()[0][0]
    if rows == 0:
        key = None  # no partition folders for no rows: one empty file keeps the schema
    target = out / table
    if target.exists():
        shutil.rmtree(target)
    select = select_list(cols)
    if key is not None:
        shard = shard_expression(f"coalesce({quote_ident(key)}, '')")
        query = f"SELECT {select}, {shard} AS {SHARD_COLUMN} FROM {quote_ident(table)}"
        options = f"FORMAT parquet, PARTITION_BY ({SHARD_COLUMN}), COMPRESSION zstd"
    else:
        query = f"SELECT {select} FROM {quote_ident(table)}"
        options = "FORMAT parquet, COMPRESSION zstd"
    target.mkdir(parents=True)
    dest = target if key is not None else target / "data_0.parquet"
    con.execute(f"COPY ({query}) TO {sql_string(str(dest))} ({options})")
    written = con.execute(f"DESCRIBE {query}").fetchall()
    return ExportedTable(table, rows, key is not None,
                         tuple((r[0], r[1]) for r in written if r[0] != SHARD_COLUMN))
