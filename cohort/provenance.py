"""What the declared tables do not (yet) carry, read back from the sources via provenance.

``Condition.evidence.detail`` says what a coded marrow metastasis rests on (a pathology
report, or a blood-count Observation for a smear-based diagnosis). The ``condition`` view has
no column for it yet (requested: ``evidence_detail_keys`` =
``evidence.detail.getReferenceKey()``, collection). Until it has, :func:`condition_evidence`
re-reads just the marrow-metastasis Conditions from their source file and line / bundle entry
(the ``resource`` and ``source_file`` tables say where each was read) and resolves the
references the way the loader does (``urn:uuid:`` through ``resource_full_url``, relative and
absolute ``Type/id``). When the column exists it is used instead and nothing is read.
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import duckdb
import orjson

from etl.sources import open_bytes, read_document

VIEW_COLUMN = "evidence_detail_keys"
_ENTRY = re.compile(r"entry\[(\d+)\]")
_TYPE_ID = re.compile(r"([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' "
        "AND table_name = ?", [table]).fetchall()}


def _navigate(doc: dict, entry: str | None) -> dict | None:
    """The resource at bundle entry path ``entry[3].entry[0]`` of ``doc``."""
    node: object = doc
    for i in _ENTRY.findall(entry or ""):
        try:
            node = node["entry"][int(i)]["resource"]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return None
    return node if isinstance(node, dict) else None


def _read_lines(path: Path, wanted: set[int]) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    last = max(wanted)
    with open_bytes(path) as f:
        for n, line in enumerate(f, start=1):
            if n in wanted:
                found[n] = line
                if len(found) == len(wanted):
                    break
            if n >= last:
                break
    return found


def _evidence_refs(resource: dict | None) -> list[str]:
    out = []
    for ev in (resource or {}).get("evidence") or []:
        for d in (ev or {}).get("detail") or []:
            ref = (d or {}).get("reference")
            if isinstance(ref, str) and ref:
                out.append(ref)
    return out


def condition_evidence(con: duckdb.DuckDBPyConnection, valueset: str = "marrow_metastasis") -> str:
    """Create ``bmc_condition_evidence(resource_key, evidence_key)``; return the method used:
    'view' (the condition column), 'sources' (re-read), or 'unavailable' (sources gone: the
    table is empty and every coded Condition is taken at face value)."""
    if VIEW_COLUMN in _columns(con, "condition"):
        con.execute(f"CREATE OR REPLACE TABLE bmc_condition_evidence AS "
                    f"SELECT DISTINCT resource_key, unnest({VIEW_COLUMN}) AS evidence_key "
                    f"FROM condition")
        return "view"
    con.execute("CREATE OR REPLACE TABLE bmc_condition_evidence "
                "(resource_key VARCHAR, evidence_key VARCHAR)")
    rows = con.execute(
        "SELECT DISTINCT k.resource_key, r.line, r.entry, f.path "
        "FROM bmc_coded k JOIN resource r ON r._rid = k._rid "
        "JOIN source_file f ON f.file_id = r.file_id "
        "WHERE k.source = 'condition' AND k.valueset = ?", [valueset]).fetchall()
    by_file: dict[str, list[tuple[str, int | None, str | None]]] = defaultdict(list)
    for key, line, entry, path in rows:
        by_file[path].append((key, line, entry))
    raw: list[tuple[str, str]] = []
    missing = 0
    for path, items in by_file.items():
        p = Path(path)
        if not p.is_file():
            missing += len(items)
            continue
        lines = _read_lines(p, {ln for _, ln, _ in items if ln is not None}) \
            if any(ln is not None for _, ln, _ in items) else {}
        whole = orjson.loads(read_document(p)) if any(ln is None for _, ln, _ in items) else None
        for key, line, entry in items:
            doc = orjson.loads(lines[line]) if line is not None and line in lines else whole
            if not isinstance(doc, dict):
                continue
            for ref in _evidence_refs(_navigate(doc, entry)):
                raw.append((key, ref))
    if raw:
        con.execute("CREATE OR REPLACE TEMP TABLE _ev_raw (resource_key VARCHAR, ref VARCHAR)")
        con.executemany("INSERT INTO _ev_raw VALUES (?, ?)", raw)
        resolved = []
        by_url = dict(con.execute(
            "SELECT u.full_url, r.resource_type || '/' || r.id FROM resource_full_url u "
            "JOIN resource r ON r._rid = u._rid AND r.status = 'current' "
            "WHERE u.full_url IN (SELECT ref FROM _ev_raw)").fetchall())
        for key, ref in raw:
            target = by_url.get(ref)
            if target is None:
                m = _TYPE_ID.search(ref.split("#", 1)[0])
                target = f"{m.group(1)}/{m.group(2)}" if m else None
            if target is not None:
                resolved.append((key, target))
        con.execute("DROP TABLE _ev_raw")
        if resolved:
            con.executemany("INSERT INTO bmc_condition_evidence VALUES (?, ?)", sorted(set(resolved)))
    return "unavailable" if missing and not raw else "sources"
