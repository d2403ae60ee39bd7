"""Move one batch of records (NDJSON lines or Bundle entries) into DuckDB.

Each batch is handed to DuckDB as an Arrow table of JSON texts (zero-copy for NDJSON), parsed
*once* per resource type with ``json_transform`` and a typed structure that merges the
provenance header with every declared view of that type, then fanned out into the
provenance table and the declared tables. Rows are only *staged* here; ``versions`` decides
afterwards which version of each resource is current.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources as importlib_resources

import duckdb
import numpy as np
import orjson
import pyarrow as pa

from .errors import InputError, Location
from .store import quote_ident, sql_string

HEADER_STRUCTURE: dict = {
    "resourceType": "VARCHAR",
    "id": "VARCHAR",
    "meta": {"versionId": "VARCHAR", "lastUpdated": "VARCHAR"},
}


@cache
def resource_types() -> frozenset[str]:
    """Every FHIR R4 resource type name (data file etl/data/resource_types.txt)."""
    text = importlib_resources.files("etl").joinpath("data/resource_types.txt").read_text()
    return frozenset(ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#"))


@cache
def identifier_shape(resource_type: str) -> str | None:
    """'list', 'single' or None: how this type carries ``identifier`` (from the R4B models)."""
    try:
        from fhir.resources.R4B import get_fhir_model_class
        field_info = get_fhir_model_class(resource_type).model_fields.get("identifier")
    except Exception:  # an unknown type simply has no identifier index
        return None
    if field_info is None:
        return None
    return "list" if "List" in str(field_info.annotation) else "single"


def merge_structures(a: dict, b: dict) -> dict:
    """Union of two json_transform structures (a field typed JSON in either stays JSON)."""
    out = dict(a)
    for k, v in b.items():
        if k not in out:
            out[k] = v
        elif out[k] == v:
            continue
        elif isinstance(out[k], dict) and isinstance(v, dict):
            out[k] = merge_structures(out[k], v)
        elif isinstance(out[k], list) and isinstance(v, list) and out[k] and v \
                and isinstance(out[k][0], dict) and isinstance(v[0], dict):
            out[k] = [merge_structures(out[k][0], v[0])]
        elif "JSON" in (out[k], v):
            out[k] = "JSON"
        else:
            raise ValueError(f"conflicting types for field {k!r}: {out[k]!r} vs {v!r}")
    return out


def structure_type_sql(structure) -> str:
    """The DuckDB type a json_transform structure produces (for read_json columns=)."""
    if isinstance(structure, dict):
        fields = ", ".join(f'"{k}" {structure_type_sql(v)}' for k, v in structure.items())
        return f"STRUCT({fields})"
    if isinstance(structure, list):
        return structure_type_sql(structure[0]) + "[]"
    return str(structure)


@dataclass
class TypePlan:
    """How one resource type is parsed and where its rows go."""

    resource_type: str
    structure_sql: str  # json_transform structure literal
    views: list  # CompiledView objects of this type
    required: dict[str, list[str]]  # view name -> columns that must not be NULL
    identifier: str | None


@dataclass
class FileStats:
    records: int = 0
    rejected: int = 0
    non_resource_lines: int = 0
    blank_lines: int = 0
    lines: int = 0
    errors: list[tuple] = field(default_factory=list)  # buffered load_error rows


class Ingestor:
    """Stages batches of one load into the database (inside the load's transaction)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, views, view_json: dict[str, dict],
                 load_id: int, first_rid: int, *, keep_raw: bool = False,
                 strict: bool = False):
        self.con = con
        self.views = list(views)
        self.view_json = view_json
        self.load_id = load_id
        self.next_rid = first_rid
        self.keep_raw = keep_raw
        self.strict = strict
        self._plans: dict[str, TypePlan] = {}

    # -- plans ---------------------------------------------------------------------------
    def plan(self, resource_type: str) -> TypePlan:
        p = self._plans.get(resource_type)
        if p is None:
            structure = dict(HEADER_STRUCTURE)
            shape = identifier_shape(resource_type)
            if shape == "list":
                structure["identifier"] = [{"system": "VARCHAR", "value": "VARCHAR"}]
            elif shape == "single":
                structure["identifier"] = {"system": "VARCHAR", "value": "VARCHAR"}
            mine = [v for v in self.views if v.resource == resource_type]
            for v in mine:
                structure = merge_structures(structure, v.structure)
            required = {}
            for v in mine:
                cols = [c.get("name") for sel in _walk_selects(self.view_json.get(v.name, {}))
                        for c in sel.get("column", [])
                        if any(t.get("name") == "required" for t in c.get("tag", []) or [])]
                if cols:
                    required[v.name] = cols
            p = TypePlan(resource_type, sql_string(json.dumps(structure)), mine, required, shape)
            self._plans[resource_type] = p
        return p

    def take_rids(self, n: int) -> np.ndarray:
        rids = np.arange(self.next_rid, self.next_rid + n, dtype=np.int64)
        self.next_rid += n
        return rids

    # -- errors ----------------------------------------------------------------------------
    def reject(self, stats: FileStats, loc: Location, reason: str) -> None:
        if self.strict:
            raise InputError(loc, reason)
        stats.rejected += 1
        stats.errors.append((self.load_id, loc.file, loc.line, loc.entry,
                             loc.resource_type, loc.resource_id, reason))

    def flush_errors(self, stats: FileStats) -> None:
        if stats.errors:
            self.con.executemany("INSERT INTO load_error VALUES (?, ?, ?, ?, ?, ?, ?)", stats.errors)
            stats.errors.clear()

    # -- staging -----------------------------------------------------------------------------
    def stage_parsed(self, parsed: str, resource_type: str, file_id: int, display: str,
                     stats: FileStats) -> int:
        """Fan the rows of type ``resource_type`` in temp table ``parsed`` out to the tables."""
        p = self.plan(resource_type)
        con = self.con
        src = (f"(SELECT * FROM {parsed} WHERE r.resourceType = {sql_string(resource_type)} "
               f"AND r.id IS NOT NULL)")
        (n,) = con.execute(f"SELECT count(*) FROM {src}").fetchall()[0]
        if not n:
            return 0
        con.execute(
            f"INSERT INTO resource SELECT _rid, ?, ?, line, entry, r.resourceType, r.id, "
            f"id_derived, r.meta.versionId, r.meta.lastUpdated, h, full_url, 'staged' FROM {src}",
            [self.load_id, file_id])
        if p.identifier == "list":
            con.execute(f"INSERT INTO resource_identifier SELECT _rid, i.system, i.value FROM "
                        f"(SELECT _rid, unnest(r.identifier) AS i FROM {src}) WHERE i.value IS NOT NULL")
        elif p.identifier == "single":
            con.execute(f"INSERT INTO resource_identifier SELECT _rid, r.identifier.system, "
                        f"r.identifier.value FROM {src} WHERE r.identifier.value IS NOT NULL")
        con.execute(f"INSERT INTO resource_full_url SELECT _rid, full_url FROM {src} "
                    f"WHERE full_url IS NOT NULL")
        if self.keep_raw:
            con.execute(f"INSERT INTO resource_raw SELECT _rid, text::JSON FROM {src}")
        first = con.execute(f"SELECT min(_rid) FROM {src}").fetchall()[0][0]
        for v in p.views:
            sql = v.sql.replace("{source}", f"(SELECT _rid, r FROM {src})")
            con.execute(f"INSERT INTO {quote_ident(v.name)} {sql}")
        bad = self._check_required(p, first)
        for _rid, rtype, rid_str, line, entry, reason in bad:
            self.reject(stats, Location(display, line, entry, rtype, rid_str), reason)
        stats.records += n - len(bad)
        return n - len(bad)

    def _check_required(self, p: TypePlan, first_rid: int) -> list[tuple]:
        """Resources missing what a table needs (e.g. an Observation without a subject)."""
        bad: dict[int, str] = {}
        for vname, cols in p.required.items():
            cond = " OR ".join(f"{quote_ident(c)} IS NULL" for c in cols)
            for (rid,) in self.con.execute(
                    f"SELECT DISTINCT _rid FROM {quote_ident(vname)} WHERE _rid >= ? AND ({cond})",
                    [first_rid]).fetchall():
                bad.setdefault(rid, f"table {vname} needs {', '.join(cols)}; "
                                    f"the resource has none (e.g. no subject)")
        if not bad:
            return []
        rids = list(bad)
        for v in p.views:
            self.con.execute(f"DELETE FROM {quote_ident(v.name)} WHERE _rid IN "
                             f"(SELECT unnest(?::BIGINT[]))", [rids])
        self.con.execute("UPDATE resource SET status = 'rejected' WHERE _rid IN "
                         "(SELECT unnest(?::BIGINT[]))", [rids])
        rows = self.con.execute(
            "SELECT _rid, resource_type, id, line, entry FROM resource WHERE _rid IN "
            "(SELECT unnest(?::BIGINT[])) ORDER BY _rid", [rids]).fetchall()
        return [(r[0], r[1], r[2], r[3], r[4], bad[r[0]]) for r in rows]

    def parse_into(self, name: str, arrow_table: pa.Table, resource_type: str | None,
                   where: str = "") -> None:
        """Parse an Arrow batch of JSON texts into temp table ``name`` (typed struct ``r``)."""
        structure = self.plan(resource_type).structure_sql if resource_type \
            else sql_string(json.dumps(HEADER_STRUCTURE))
        raw = ", text" if self.keep_raw else ""
        self.con.register("_batch", arrow_table)
        try:
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT _rid, line, entry, full_url, "
                f"id_derived, hash(text) AS h, try(json_transform(text, {structure})) AS r{raw} "
                f"FROM _batch {where}")
        finally:
            self.con.unregister("_batch")


def _walk_selects(node: dict):
    for sel in node.get("select", []) or []:
        yield sel
        yield from _walk_selects(sel)
        for u in sel.get("unionAll", []) or []:
            yield u
            yield from _walk_selects(u)


def diagnose(text: bytes) -> tuple[str, str | None, str | None]:
    """Why a line was not accepted: (reason, resourceType, id). Never echoes content."""
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        msg = str(e).split(":", 1)[0]
        return f"invalid JSON ({msg}, at character {e.pos})", None, None
    if not isinstance(doc, dict):
        return "not a JSON object", None, None
    rtype = doc.get("resourceType")
    rid = doc.get("id") if isinstance(doc.get("id"), str) else None
    if not isinstance(rtype, str) or not rtype:
        return "missing resourceType", None, rid
    if rtype not in resource_types():
        return "unknown resourceType", rtype[:40], rid
    if rid is None:
        return "resource without id", rtype, None
    return "resource could not be read", rtype, rid
