"""Rebuild every declared table from the sources recorded in the provenance tables.

The database keeps, for every load, which files were read and in which order
(``source_file``). Replaying those loads, in the same order, into a fresh database file
reproduces the same current versions -- with today's ViewDefinitions, which is what makes a
changed declaration (a new column) safe to roll out. Files that changed or vanished since
they were loaded are reported, not silently skipped.

Tables a user added to the database (anything the loader does not create and that is not a
derived cohort table ``bmc_*`` / ``ref_*``, which the next ``bmc cohort`` rebuilds) are copied
into the new file, views re-created. The old file is checkpointed first, so a write-ahead
log left by a crashed process is folded into it (and copied), never left beside the new file
where DuckDB would replay it against the wrong database.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from .errors import EtlError
from .load import LoadOptions, LoadResult, load
from .sources import content_sha256
from .sql import quote_ident, sql_string

#: Derived tables the cohort commands rebuild from the loaded tables: not copied.
DERIVED_PREFIXES = ("bmc_", "ref_")


@dataclass
class RebuildResult:
    loads: list[LoadResult] = field(default_factory=list)
    changed_files: list[str] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)
    kept_tables: list[str] = field(default_factory=list)  # the user's tables, copied over
    kept_views: list[str] = field(default_factory=list)
    dropped_views: list[str] = field(default_factory=list)  # they read a derived table


def _open(db: Path) -> duckdb.DuckDBPyConnection:
    """The database, for writing: a rebuild replaces the file, so no other process may have
    it open (a lock is a clear error, not a traceback)."""
    try:
        return duckdb.connect(str(db))
    except duckdb.Error as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise EtlError(f"{db}: cannot open the database for the rebuild ({first}); close the "
                       f"other programs using it and try again") from None


def rebuild(db: str | Path, *, allow_changed: bool = False) -> RebuildResult:
    """Replay every recorded load of ``db`` into a new file, then swap it in atomically."""
    db = Path(db)
    if not db.is_file():
        raise EtlError(f"{db}: no such database file")
    con = _open(db)
    try:
        con.execute("CHECKPOINT")  # fold a pending write-ahead log into the file
        runs = con.execute(
            "SELECT load_id, options FROM load_run ORDER BY load_id").fetchall()
        files = con.execute(
            "SELECT load_id, path, sha256 FROM source_file WHERE NOT non_resource "
            "ORDER BY file_id").fetchall()
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND NOT temporary ORDER BY table_name").fetchall()]
        views = con.execute(
            "SELECT view_name, sql FROM duckdb_views() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND NOT internal AND NOT temporary "
            "ORDER BY view_name").fetchall()
    except duckdb.Error as e:
        raise EtlError(f"{db}: not a bmc database ({str(e).splitlines()[0]})") from None
    finally:
        con.close()
    result = RebuildResult()
    by_load: dict[int, list[str]] = {}
    for load_id, path, sha in files:
        p = Path(path)
        if not p.is_file():
            result.missing_files.append(path)
            continue
        if sha and content_sha256(p) != sha:
            result.changed_files.append(path)
        by_load.setdefault(load_id, []).append(path)
    if (result.missing_files or result.changed_files) and not allow_changed:
        raise EtlError(
            f"{len(result.missing_files)} source file(s) are missing and "
            f"{len(result.changed_files)} changed since they were loaded; the rebuilt tables "
            f"would differ (first: {(result.missing_files + result.changed_files)[0]}). "
            f"Use --allow-changed to rebuild from the files as they are now")
    tmp = db.with_name(db.name + ".rebuild")
    _remove(tmp)
    try:
        for load_id, options in runs:
            paths = by_load.get(load_id)
            if not paths:
                continue
            opts = json.loads(options or "{}")
            result.loads.append(load(tmp, paths, LoadOptions(
                validate=opts.get("validate", False), keep_raw=opts.get("keep_raw", False))))
        _keep_user_objects(tmp, db, tables, views, result)
    except BaseException:
        _remove(tmp)  # the old database stays as it was
        raise
    os.replace(tmp, db)  # atomic: readers see the old or the new database, never half of one
    wal = Path(str(db) + ".wal")
    if wal.exists():  # checkpointed above: a leftover belongs to the old file, never the new
        wal.unlink()
    return result


def _keep_user_objects(tmp: Path, db: Path, tables: list[str], views: list[tuple[str, str]],
                       result: RebuildResult) -> None:
    """Copy the user's tables of ``db`` into the rebuilt ``tmp`` and re-create their views."""
    con = duckdb.connect(str(tmp))
    try:
        ours = {r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main'").fetchall()}
        mine = [t for t in tables if t not in ours and not t.startswith(DERIVED_PREFIXES)]
        if mine:
            con.execute(f"ATTACH {sql_string(str(db))} AS _old (READ_ONLY)")
            for t in mine:
                con.execute(f"CREATE TABLE main.{quote_ident(t)} AS "
                            f"SELECT * FROM _old.main.{quote_ident(t)}")
                result.kept_tables.append(t)
            con.execute("DETACH _old")
        for name, sql in views:
            try:
                con.execute(sql)
                result.kept_views.append(name)
            except duckdb.CatalogException:  # it reads a derived table: listed, not kept
                result.dropped_views.append(name)
        con.execute("CHECKPOINT")
    finally:
        con.close()


def _remove(path: Path) -> None:
    for f in (path, Path(str(path) + ".wal")):
        if f.exists():
            f.unlink()
