"""Rebuild every declared table from the sources recorded in the provenance tables.

The database keeps, for every load, which files were read and in which order
(``source_file``). Replaying those loads, in the same order, into a fresh database file
reproduces the same current versions -- with today's ViewDefinitions, which is what makes a
changed declaration (a new column) safe to roll out. Files that changed or vanished since
they were loaded are reported, not silently skipped.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from .errors import EtlError
from .load import LoadOptions, LoadResult, load
from .sources import content_sha256


@dataclass
class RebuildResult:
    loads: list[LoadResult] = field(default_factory=list)
    changed_files: list[str] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)


def rebuild(db: str | Path, *, allow_changed: bool = False) -> RebuildResult:
    """Replay every recorded load of ``db`` into a new file, then swap it in atomically."""
    db = Path(db)
    if not db.is_file():
        raise EtlError(f"{db}: no such database file")
    con = duckdb.connect(str(db), read_only=True)
    try:
        runs = con.execute(
            "SELECT load_id, options FROM load_run ORDER BY load_id").fetchall()
        files = con.execute(
            "SELECT load_id, path, sha256 FROM source_file WHERE NOT non_resource "
            "ORDER BY file_id").fetchall()
    except duckdb.Error as e:
        raise EtlError(f"{db}: not a bmc database ({e})") from None
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
    for f in (tmp, Path(str(tmp) + ".wal")):
        if f.exists():
            f.unlink()
    import json
    for load_id, options in runs:
        paths = by_load.get(load_id)
        if not paths:
            continue
        opts = json.loads(options or "{}")
        result.loads.append(load(tmp, paths, LoadOptions(validate=opts.get("validate", False),
                                                         keep_raw=opts.get("keep_raw", False))))
    os.replace(tmp, db)  # atomic: readers see the old or the new database, never half of one
    return result
