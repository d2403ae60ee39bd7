"""A disk cache of compiled views, so a new process need not import the FHIR models.

Compiling needs element metadata from the ``fhir.resources.R4B`` pydantic models, and
building those classes costs about half a second per process -- a third of loading 100 MB.
The compiled result depends only on the view's JSON, this package's source and the
installed ``fhir.resources``/``pydantic``, so it is stored under a hash of all of them and
read back instead of compiled. A changed view or compiler gets a new key, never a stale
entry; a cache that cannot be read or written is simply not used.

Where: ``$BMC_CACHE_DIR/viewdef``, else ``$XDG_CACHE_HOME/bmc-cohort/viewdef``, else
``~/.cache/bmc-cohort/viewdef``. ``BMC_CACHE_DIR=off`` turns it off.
"""
from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from etl.viewdef.compiled import CompiledView, ViewColumn


def cache_dir() -> Path | None:
    """The cache folder, or None when caching is off."""
    explicit = os.environ.get("BMC_CACHE_DIR")
    if explicit == "off":
        return None
    if explicit:
        return Path(explicit) / "viewdef"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bmc-cohort" / "viewdef"


@cache
def _fingerprint() -> str:
    """Hash of what compilation depends on besides the view: this package's source and the
    versions of the model packages."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for dist in ("fhir.resources", "fhir-core", "pydantic"):
        try:
            h.update(f"{dist}={metadata.version(dist)}\0".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{dist}=none\0".encode())
    return h.hexdigest()


def _key(view: dict[str, Any]) -> str | None:
    try:
        text = json.dumps(view, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        return None  # not plain JSON: compile it, do not cache it
    return hashlib.sha256((_fingerprint() + "\0" + text).encode()).hexdigest()


def load(view: dict[str, Any]) -> CompiledView | None:
    """The cached compilation of ``view``, or None."""
    folder, key = cache_dir(), _key(view)
    if folder is None or key is None:
        return None
    try:
        data = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
        columns = tuple(ViewColumn(**{**c, "reference_types": tuple(c["reference_types"]),
                                      "tags": tuple(tuple(t) for t in c["tags"])})
                        for c in data["columns"])
        return CompiledView(data["name"], data["resource"], columns, data["structure"],
                            data["sql"], tuple((p, t) for p, t in data["checks"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent, unreadable or from an older layout: compile instead


def store(view: dict[str, Any], compiled: CompiledView) -> None:
    """Remember ``compiled`` for ``view``; silently does nothing if it cannot be written."""
    from dataclasses import asdict

    folder, key = cache_dir(), _key(view)
    if folder is None or key is None:
        return
    data = {"name": compiled.name, "resource": compiled.resource,
            "columns": [asdict(c) for c in compiled.columns],
            "structure": compiled.structure, "sql": compiled.sql,
            "checks": [list(c) for c in compiled.checks]}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"{key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(folder / f"{key}.json")  # atomic: readers never see half a file
    except OSError:
        pass  # a read-only or full disk only costs the compile time next time
