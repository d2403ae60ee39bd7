"""The DuckDB database: connecting, the bookkeeping schema, and the declared tables' DDL.

The flattened tables are created from their ViewDefinitions (``etl/views/*.json``) -- the one
place a table's columns are written down. Each gets a leading ``_rid`` column that ties every
row to its provenance row in ``resource``.
"""
from __future__ import annotations

import json
from importlib import resources as importlib_resources
from pathlib import Path

import duckdb

from .errors import EtlError, SourceError

# re-exported for etl/load.py and etl/spark/load.py (being reworked); new code imports etl.sql
from .sql import quote_ident, sql_string

SCHEMA_VERSION = "1"
#: The DuckDB storage format a new database file is written in: the oldest that the DuckDB
#: CLI from the package registries (1.5.x, `duckdb hospital.duckdb`) opens; DuckDB 2.x reads
#: and writes it too. It is kept by the file (set when the file is created).
STORAGE_VERSION = "v1.5.0"

# A DuckDB database file starts with an 8-byte checksum, then this magic (DuckDB's storage
# format, since 0.x). Checked before DuckDB opens a file: given a SQLite file, DuckDB would try
# to install its sqlite extension over the network.
DUCKDB_MAGIC = b"DUCK"
DUCKDB_MAGIC_OFFSET = 8


class NotADatabase(SourceError):
    """``--db`` names an existing file that is not a DuckDB database (a usage error)."""


def check_database_file(db: str | Path) -> None:
    """Raise :class:`NotADatabase` when ``db`` exists but is not a DuckDB database file.

    A missing path is fine (a load creates it) and so is a folder (a Spark lake); only the
    file's first bytes are read, so a CSV, a JSON export or a SQLite file is refused before
    any input is read and before DuckDB sees it.
    """
    path = Path(db)
    if not path.is_file():
        return
    try:
        with path.open("rb") as f:
            head = f.read(16)  # room for the SQLite header too
    except OSError as e:
        raise NotADatabase(f"{db}: cannot read the database file ({e.strerror or e})") from None
    if head[DUCKDB_MAGIC_OFFSET:DUCKDB_MAGIC_OFFSET + len(DUCKDB_MAGIC)] != DUCKDB_MAGIC:
        what = "a SQLite database" if head.startswith(b"SQLite format 3") else \
            "an empty file" if not head else "another kind of file"
        raise NotADatabase(f"{db}: is {what}, not a DuckDB database; give --db a new file "
                           f"name or a database made by `bmc load`")


def connect(db: str | Path, *, memory_limit: str | None = None,
            threads: int | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (or create) the database file with the loader's settings.

    Extensions are never installed from the network (``autoinstall_known_extensions`` off):
    the loader needs only what the DuckDB package ships.
    """
    check_database_file(db)
    try:
        con = duckdb.connect(str(db), read_only=read_only,
                             config={"autoinstall_known_extensions": False,
                                     "storage_compatibility_version": STORAGE_VERSION})
    except duckdb.Error as e:  # locked by another process, not a DuckDB file, ...
        raise EtlError(f"{db}: cannot open the database: {e}") from None
    if memory_limit:
        con.execute(f"SET memory_limit = {sql_string(memory_limit)}")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")  # our own bar is on stderr; keep stdout clean
    return con


def schema_sql() -> str:
    return importlib_resources.files("etl").joinpath("schema.sql").read_text()


def ensure_schema(con: duckdb.DuckDBPyConnection, views) -> None:
    """Create the bookkeeping tables and one table per declared view, if missing.

    A table that exists with other columns than its view declares is an error with a way out,
    not a silent mismatch.
    """
    con.execute(schema_sql())
    con.execute("CREATE TABLE IF NOT EXISTS bmc_meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute("INSERT OR IGNORE INTO bmc_meta VALUES ('schema_version', ?)", [SCHEMA_VERSION])
    existing = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
    for v in views:
        cols = [("_rid", "BIGINT")] + [(c.name, c.duckdb_type) for c in v.columns]
        if v.name in existing:
            have = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
                [v.name]).fetchall()
            if [h[0] for h in have] != [c[0] for c in cols]:
                raise EtlError(
                    f"table {v.name} in this database has other columns than its declaration "
                    f"(etl/views/{v.name}.json); load into a new database file, or run "
                    f"`bmc rebuild --db FILE` to rebuild the tables from the sources")
            continue
        ddl = ", ".join(f"{quote_ident(n)} {t}" for n, t in cols)
        con.execute(f"CREATE TABLE {quote_ident(v.name)} ({ddl})")
    con.execute("INSERT OR REPLACE INTO bmc_meta VALUES ('views', ?)",
                [json.dumps(sorted(v.name for v in views))])


def run_script(con: duckdb.DuckDBPyConnection, script: str, params: dict | None = None) -> None:
    """Run a multi-statement SQL script, binding the named parameters each statement uses."""
    for stmt in script.split(";\n"):
        body = "\n".join(ln for ln in stmt.splitlines() if not ln.strip().startswith("--"))
        if not body.strip():
            continue
        used = {k: v for k, v in (params or {}).items() if f"${k}" in body}
        con.execute(body, used) if used else con.execute(body)


def next_value(con: duckdb.DuckDBPyConnection, table: str, column: str) -> int:
    """max(column) + 1 of a bookkeeping table (ids are assigned in load order)."""
    (m,) = con.execute(
        f"SELECT coalesce(max({quote_ident(column)}), 0) FROM {quote_ident(table)}").fetchall()[0]
    return int(m) + 1
