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

from . import findings
from .errors import InputError, Location, printable
from .references import wrong_type_reason
from .sql import quote_ident, sql_string
from .viewdef.macros import PLAIN_PATTERN

HEADER_STRUCTURE: dict = {
    "resourceType": "VARCHAR",
    "id": "VARCHAR",
    "meta": {"versionId": "VARCHAR", "lastUpdated": "VARCHAR"},
    "identifier": "JSON",  # a list in most types, a single Identifier in a few
}
_HEADER_SQL = sql_string(json.dumps(HEADER_STRUCTURE))


@cache
def resource_types() -> frozenset[str]:
    """Every FHIR R4 resource type name (data file etl/data/resource_types.txt)."""
    text = importlib_resources.files("etl").joinpath("data/resource_types.txt").read_text()
    return frozenset(ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#"))


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
    """Where one resource type's rows go: its views (each parsed with its own typed
    structure) and the columns those tables cannot do without."""

    resource_type: str
    views: list  # (CompiledView, structure literal)
    required: dict[str, list[str]]  # view name -> columns that must not be NULL
    checks: tuple = ()  # findings.ValueCheck: typed elements whose JSON values are checked
    # view name -> required reference-key columns (name, types): a reference that cannot name
    # such a resource ('patient/x', '5', 'Patient/') is as missing as no reference
    required_refs: dict = field(default_factory=dict)


#: load_error rows buffered before one insert (bounds the buffer at ~10 MB of Python tuples)
ERROR_BATCH_ROWS = 20_000


@dataclass
class FileStats:
    records: int = 0
    rejected: int = 0
    blank_lines: int = 0
    lines: int = 0
    errors: list[tuple] = field(default_factory=list)  # buffered load_error rows


class Ingestor:
    """Stages batches of one load into the database (inside the load's transaction)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, views, load_id: int, first_rid: int, *, keep_raw: bool = False,
                 strict: bool = False):
        self.files: dict[int, tuple[str, FileStats]] = {}  # file_id -> (display, stats)
        self.con = con
        self.views = list(views)
        self.load_id = load_id
        self.next_rid = first_rid
        self.keep_raw = keep_raw
        self.strict = strict
        self._plans: dict[str, TypePlan] = {}
        self.issues = 0  # load_issue rows this load wrote
        self._header_table = False  # the temp table _h exists (see parse_header)
        self._errors: list[tuple] = []  # load_error rows not yet written (see flush_errors)
        findings.install_rules(con)

    # -- plans ---------------------------------------------------------------------------
    def plan(self, resource_type: str) -> TypePlan:
        p = self._plans.get(resource_type)
        if p is None:
            mine = [v for v in self.views if v.resource == resource_type]
            required, required_refs = {}, {}
            for v in mine:
                cols = [c for c in v.columns if any(n == "required" for n, _ in c.tags)]
                if cols:
                    required[v.name] = [c.name for c in cols]
                refs = [(c.name, c.reference_types) for c in cols
                        if c.is_reference_key and c.reference_types and not c.collection]
                if refs:
                    required_refs[v.name] = refs
            p = TypePlan(resource_type,
                         [(v, sql_string(json.dumps(v.structure))) for v in mine], required,
                         findings.plan(mine), required_refs)
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
        # loc's fields are safe (errors.Location); the reason is the project's own text
        stats.errors.append((self.load_id, loc.file, loc.line, loc.entry,
                             loc.resource_type, loc.resource_id, printable(reason)))

    def validation_issues(self, rid: int, loc: Location, messages: list[str]) -> None:
        """load_issue rows (kind 'validation') for a resource --validate found invalid but that
        is loaded as it is: one per message ('element.path: rule'; never the value)."""
        rows = []
        for m in messages:
            path, _, rule = m.partition(": ") if ": " in m else ("", "", m)
            rows.append((self.load_id, rid, loc.file, loc.line, loc.entry, loc.resource_type,
                         loc.resource_id, ".".join(x for x in (loc.resource_type, path) if x),
                         "validation", f"invalid FHIR R4: {rule}"))
        self.con.executemany(
            f"INSERT INTO load_issue ({', '.join(findings.ISSUE_COLUMNS)}) VALUES "
            f"({', '.join('?' * len(findings.ISSUE_COLUMNS))})", rows)

    def flush_errors(self, stats: FileStats) -> None:
        """Move a file's load_error rows to the load's buffer, written in batches: an
        ``executemany`` costs ~1 ms a row, one Arrow insert of 100,000 rows well under 1 s."""
        if stats.errors:
            self._errors.extend(stats.errors)
            stats.errors.clear()
        if len(self._errors) >= ERROR_BATCH_ROWS:
            self.write_errors()

    def write_errors(self) -> None:
        """Insert the buffered load_error rows (in the order they were met)."""
        if not self._errors:
            return
        cols = list(zip(*self._errors, strict=True))
        self._errors = []
        types = (pa.int32(), pa.string(), pa.int64(), pa.string(), pa.string(), pa.string(),
                 pa.string())
        table = pa.table({f"c{i}": pa.array(c, t) for i, (c, t) in enumerate(zip(cols, types,
                                                                                  strict=True))})
        self.con.register("_errors", table)
        try:
            self.con.execute("INSERT INTO load_error SELECT * FROM _errors")
        finally:
            self.con.unregister("_errors")

    # -- staging -----------------------------------------------------------------------------
    # A batch is an Arrow table (_rid, line, entry, full_url, id_derived, text) registered as
    # ``_batch``. ``parse_header`` materialises only the small provenance header (``_h``);
    # each declared table then parses the text itself with its own typed structure. Parsing
    # is cheap (yyjson); materialising a wide parsed struct is not (measured: 3x the parse).

    def begin_batch(self, arrow_table: pa.Table) -> None:
        self.con.register("_batch", arrow_table)

    def end_batch(self) -> None:
        self.con.unregister("_batch")
        if self._header_table:
            self.con.execute("DELETE FROM _h")

    def parse_header(self) -> None:
        # _h is created once per load and emptied after each batch: a temp table created and
        # dropped per batch leaves ~30 KB of catalog behind until the load's transaction ends
        # (measured), which grew memory with the number of files
        select = (
            f"SELECT _rid, file_id, line, entry, full_url, id_derived, "
            # the hash ignores line endings: an NDJSON line's text may end with its newline
            # (JSON text holds no raw CR or LF; replace, unlike trim, takes any bytes)
            f"hash(replace(replace(text, chr(10), ''), chr(13), '')) AS h, "
            f"try(json_transform(text, {_HEADER_SQL})) AS r FROM _batch")
        if self._header_table:
            self.con.execute(f"INSERT INTO _h {select}")
        else:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE _h AS {select}")
            self._header_table = True
        # an empty id ("") is a missing id: rejected as such, never a resource 'Patient/'
        self.con.execute("UPDATE _h SET r = struct_update(r, id := NULL::VARCHAR) WHERE r.id = ''")

    def stage_type(self, resource_type: str) -> int:
        """Stage the batch's resources of one type: provenance, identifiers, table rows.

        A batch may mix files (small Bundles are batched together); every row carries its
        ``file_id``, and counts and rejections are booked to that file.
        """
        p = self.plan(resource_type)
        con = self.con
        ok = (f"r.resourceType = {sql_string(resource_type)} AND r.id IS NOT NULL")
        per_file = con.execute(f"SELECT file_id, count(*), min(_rid) FROM _h WHERE {ok} "
                               f"GROUP BY 1").fetchall()
        if not per_file:
            return 0
        first = min(f[2] for f in per_file)
        con.execute(
            f"INSERT INTO resource SELECT _rid, ?, file_id, line, entry, r.resourceType, r.id, "
            f"id_derived, r.meta.versionId, r.meta.lastUpdated, h, full_url, 'staged' "
            f"FROM _h WHERE {ok}", [self.load_id])
        con.execute(
            f"INSERT INTO resource_identifier SELECT _rid, json_extract_string(i, '$.system'), "
            f"json_extract_string(i, '$.value') FROM (SELECT _rid, unnest(CASE "
            f"WHEN json_type(r.identifier) = 'ARRAY' THEN json_extract(r.identifier, '$[*]') "
            f"ELSE [r.identifier] END) AS i FROM _h WHERE {ok} AND r.identifier IS NOT NULL) "
            f"WHERE json_extract_string(i, '$.value') IS NOT NULL")
        con.execute(f"INSERT INTO resource_full_url SELECT _rid, full_url FROM _h "
                    f"WHERE {ok} AND full_url IS NOT NULL")
        (total,) = con.execute("SELECT count(*) FROM _batch").fetchall()[0]
        n_ok = sum(n for _, n, _ in per_file)
        # the common case -- a clean one-type batch -- needs no filter (a semi-join costs ~20%)
        mine = "TRUE" if n_ok == total else f"_rid IN (SELECT _rid FROM _h WHERE {ok})"
        if self.keep_raw:
            con.execute(f"INSERT INTO resource_raw SELECT _rid, text::JSON FROM _batch WHERE {mine}")
        for v, structure in p.views:
            src = f"(SELECT _rid, json_transform(text, {structure}) AS r FROM _batch WHERE {mine})"
            con.execute(f"INSERT INTO {quote_ident(v.name)} {v.sql.replace('{source}', src)}")
        self.issues += findings.check_batch(con, resource_type, p.checks, [v for v, _ in p.views],
                                            mine, self.load_id, lambda f: self.files[f][0])
        for file_id, n, _ in per_file:
            self.files[file_id][1].records += n
        bad = self._check_required(p, first)
        for file_id, rtype, rid_str, line, entry, reason in bad:
            display, stats = self.files[file_id]
            stats.records -= 1
            self.reject(stats, Location(display, line, entry, rtype, rid_str), reason)
        return sum(n for _, n, _ in per_file) - len(bad)

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
        for vname, refs in p.required_refs.items():
            for col, types in refs:
                c = quote_ident(col)
                for (rid,) in self.con.execute(
                        f"SELECT DISTINCT _rid FROM {quote_ident(vname)} WHERE _rid >= $first "
                        f"AND {c} IS NOT NULL AND NOT (regexp_full_match({c}, $plain) "
                        f"OR starts_with({c}, 'urn:') OR starts_with({c}, '#') OR contains({c}, '?'))",
                        {"first": first_rid, "plain": PLAIN_PATTERN}).fetchall():
                    bad.setdefault(rid, f"table {vname} needs {col}; the reference is "
                                        f"{wrong_type_reason(types)}")
        if not bad:
            return []
        rids = list(bad)
        for v, _ in p.views:
            self.con.execute(f"DELETE FROM {quote_ident(v.name)} WHERE _rid IN "
                             f"(SELECT unnest(?::BIGINT[]))", [rids])
        self.con.execute("UPDATE resource SET status = 'rejected' WHERE _rid IN "
                         "(SELECT unnest(?::BIGINT[]))", [rids])
        rows = self.con.execute(
            "SELECT _rid, resource_type, id, line, entry, file_id FROM resource WHERE _rid IN "
            "(SELECT unnest(?::BIGINT[])) ORDER BY _rid", [rids]).fetchall()
        return [(r[5], r[1], r[2], r[3], r[4], bad[r[0]]) for r in rows]


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
    if not rid:  # an empty id is a missing id
        return "resource without id", rtype, None
    return "resource could not be read", rtype, rid
