"""The one reference resolver: every reference column ends up holding ``Type/id``.

Views compute reference keys with ``getReferenceKey()``, which normalises everything it can
from the string alone (relative ``Type/id``, absolute URLs, ``_history/n``). What needs the
rest of the load is rewritten here, after versions are settled:

* ``urn:uuid:...`` / ``urn:oid:...`` and absolute fullUrls -> the resource whose Bundle entry
  had that ``fullUrl`` (any Bundle of any load);
* conditional references ``Type?identifier=system|value`` (as Synthea's bulk exporter writes
  for Practitioner, Organization, Location) -> the current resource of that type carrying that
  identifier, when exactly one does;
* ``#id`` (contained) -> ``Type/id#id`` of the containing resource.

Whatever is left is listed in ``unresolved_reference`` with a reason, never dropped.
"""
from __future__ import annotations

import duckdb

from .sql import quote_ident
from .viewdef.macros import PLAIN_PATTERN

_LOOKS_UNRESOLVED = "({c} LIKE 'urn:%' OR {c} LIKE '%?%')"
# A typed key column's value is final when it is a plain key of one of its types; anything else
# that is not a urn, conditional or #contained reference cannot name such a resource
# ('patient/x', '5', ' Patient/x ', 'Patient/'): NULL, listed with this reason.
_TYPED_KEY = "(regexp_full_match({c}, $plain) AND split_part({c}, '/', 1) = ANY($types::VARCHAR[]))"


def wrong_type_reason(types) -> str:
    """The unresolved_reference reason of a value that cannot name a resource of ``types``."""
    names = " or ".join(types)
    return f"not {'an' if names[:1] in 'AEIOU' else 'a'} {names} reference"

_MAP = """
CREATE OR REPLACE TEMP TABLE _refmap AS
WITH refs AS (SELECT DISTINCT ref FROM _refs),
by_url AS (
    SELECT f.full_url AS ref, any_value(r.resource_type || '/' || r.id) AS key,
           count(DISTINCT r.resource_type || '/' || r.id) AS n
    FROM resource_full_url f JOIN resource r ON r._rid = f._rid AND r.status = 'current'
    WHERE f.full_url IN (SELECT ref FROM refs)
    GROUP BY f.full_url),
cond AS (
    SELECT ref,
           regexp_extract(ref, '^([A-Za-z]+)\\?', 1) AS rtype,
           replace(replace(regexp_extract(ref, '[?&]identifier=([^&]*)', 1), '%7C', '|'), '%7c', '|') AS ident
    FROM refs WHERE ref LIKE '%?%identifier=%'),
cond_split AS (
    SELECT ref, rtype,
           CASE WHEN contains(ident, '|') THEN split_part(ident, '|', 1) END AS system,
           CASE WHEN contains(ident, '|') THEN substr(ident, strpos(ident, '|') + 1) ELSE ident END AS value
    FROM cond),
by_ident AS (
    SELECT c.ref, any_value(r.resource_type || '/' || r.id) AS key,
           count(DISTINCT r.resource_type || '/' || r.id) AS n
    FROM cond_split c
    JOIN resource_identifier i ON i.value = c.value
         AND (c.system IS NULL OR c.system = '' OR i.system = c.system)
    JOIN resource r ON r._rid = i._rid AND r.status = 'current' AND r.resource_type = c.rtype
    GROUP BY c.ref)
SELECT ref, key FROM by_url WHERE n = 1
UNION ALL
SELECT ref, key FROM by_ident WHERE n = 1
"""


def _elements(v, c) -> str:
    """(rowid, _rid, i, ref) for every value of a reference column, scalar or list."""
    col, tbl = quote_ident(c.name), quote_ident(v.name)
    if c.collection:
        return (f"SELECT rowid AS row_id, _rid, i, {col}[i] AS ref FROM "
                f"(SELECT rowid, _rid, {col}, generate_subscripts({col}, 1) AS i FROM {tbl})")
    return f"SELECT rowid AS row_id, _rid, 1 AS i, {col} AS ref FROM {tbl}"


def _has_candidates(con: duckdb.DuckDBPyConnection, v, c) -> bool:
    """Does any value of this column need the rewrite (a cheap scan, no joins)?"""
    types = list(c.reference_types)
    cond = (f"{_LOOKS_UNRESOLVED.format(c='ref')} OR ref LIKE '#%'"
            + (f" OR NOT {_TYPED_KEY.format(c='ref')}" if types else ""))
    col, tbl = quote_ident(c.name), quote_ident(v.name)
    src = (f"(SELECT unnest({col}) AS ref FROM {tbl})" if c.collection
           else f"(SELECT {col} AS ref FROM {tbl})")
    return con.execute(f"SELECT EXISTS (SELECT 1 FROM {src} WHERE ref IS NOT NULL AND ({cond}))",
                       {"types": types, "plain": PLAIN_PATTERN} if types else {}).fetchall()[0][0]


def rewrite(con: duckdb.DuckDBPyConnection, views) -> None:
    """Resolve what getReferenceKey() could not, in every reference-key column.

    Scalar columns are updated in place; list columns (``collection``) element by element,
    keeping their order.
    """
    targets = [(v, c) for v in views for c in v.columns if c.is_reference_key
               and _has_candidates(con, v, c)]
    if not targets:  # the common case: every reference was normalised from its text alone
        return
    con.execute("CREATE OR REPLACE TEMP TABLE _refs (ref VARCHAR)")
    for v, c in targets:
        con.execute(f"INSERT INTO _refs SELECT DISTINCT ref FROM ({_elements(v, c)}) "
                    f"WHERE {_LOOKS_UNRESOLVED.format(c='ref')}")
    con.execute(_MAP)
    for v, c in targets:
        col, tbl = quote_ident(c.name), quote_ident(v.name)
        types = list(c.reference_types)
        # the new value of every element that changes: resolved, contained, or of another type
        new = ("CASE WHEN m.key IS NOT NULL THEN m.key "
               "WHEN e.ref LIKE '#%' THEN r.resource_type || '/' || r.id || e.ref ELSE e.ref END")
        keep_type = ("TRUE" if not types else
                     f"(n IS NULL OR {_LOOKS_UNRESOLVED.format(c='n')} OR n LIKE '%#%' "
                     f"OR {_TYPED_KEY.format(c='n')})")
        params = {"types": types, "plain": PLAIN_PATTERN} if types else {}
        # only elements that can change are looked at: unresolved, contained, wrong type
        candidates = (f"{_LOOKS_UNRESOLVED.format(c='e.ref')} OR e.ref LIKE '#%'"
                      + (f" OR NOT {_TYPED_KEY.format(c='e.ref')}" if types else ""))
        if types:  # what cannot name a resource of the column's type is listed, then NULLed
            con.execute(
                f"INSERT INTO unresolved_reference SELECT DISTINCT $view, $column, _rid, ref, "
                f"$reason FROM (SELECT e._rid, e.ref, {new} AS n FROM ({_elements(v, c)}) e "
                f"LEFT JOIN _refmap m ON m.ref = e.ref "
                f"LEFT JOIN resource r ON r._rid = e._rid AND e.ref LIKE '#%' "
                f"WHERE e.ref IS NOT NULL AND ({candidates})) WHERE NOT {keep_type}",
                {**params, "view": v.name, "column": c.name, "reason": wrong_type_reason(types)})
        changed = (f"SELECT e.row_id, e.i, e.ref, {new} AS n FROM ({_elements(v, c)}) e "
                   f"LEFT JOIN _refmap m ON m.ref = e.ref "
                   f"LEFT JOIN resource r ON r._rid = e._rid AND e.ref LIKE '#%' "
                   f"WHERE e.ref IS NOT NULL AND ({candidates})")
        if c.collection:
            every = (f"SELECT e.row_id, e.i, e.ref, {new} AS n FROM ({_elements(v, c)}) e "
                     f"LEFT JOIN _refmap m ON m.ref = e.ref "
                     f"LEFT JOIN resource r ON r._rid = e._rid AND e.ref LIKE '#%' "
                     f"WHERE e.row_id IN (SELECT row_id FROM ({changed}))")
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE _fix AS SELECT row_id, "
                f"list(n ORDER BY i) FILTER (WHERE {keep_type}) AS val, "
                f"bool_or(n IS DISTINCT FROM ref OR NOT {keep_type}) AS dirty "
                f"FROM ({every}) GROUP BY row_id", params)
            con.execute(f"UPDATE {tbl} SET {col} = coalesce(f.val, []) FROM _fix f "
                        f"WHERE {tbl}.rowid = f.row_id AND f.dirty")
        else:
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE _fix AS SELECT row_id, "
                f"CASE WHEN {keep_type} THEN n END AS val FROM ({changed}) "
                f"WHERE n IS DISTINCT FROM ref OR NOT {keep_type}", params)
            con.execute(f"UPDATE {tbl} SET {col} = f.val FROM _fix f WHERE {tbl}.rowid = f.row_id")
    for t in ("_refs", "_refmap", "_fix"):
        con.execute(f"DROP TABLE IF EXISTS {t}")


def list_unresolved(con: duckdb.DuckDBPyConnection, views, since_rid: int = 0,
                    full: bool = True) -> dict[str, int]:
    """Bring ``unresolved_reference`` up to date; return counts per reason.

    'unresolvable' rows are recomputed from the columns (a cheap text filter). 'target not
    loaded' needs an anti-join against every current key: with ``full=False`` only rows loaded
    from ``since_rid`` on are checked, and earlier rows whose target has arrived (or that are no
    longer current) are dropped -- enough unless this load deleted resources.
    """
    con.execute("DELETE FROM unresolved_reference WHERE reason = 'unresolvable'")
    con.execute("CREATE OR REPLACE TEMP TABLE _keys AS "
                "SELECT resource_type || '/' || id AS key FROM resource WHERE status = 'current'")
    if full:  # what rewrite() listed as not naming its type is kept while its row is current
        con.execute("DELETE FROM unresolved_reference WHERE reason NOT SIMILAR TO 'not an? .* reference' "
                    "OR _rid NOT IN (SELECT _rid FROM resource WHERE status = 'current')")
    else:
        con.execute("DELETE FROM unresolved_reference WHERE reference IN (SELECT key FROM _keys) "
                    "OR _rid NOT IN (SELECT _rid FROM resource WHERE status = 'current')")
    for v in views:
        for c in v.columns:
            if not c.is_reference_key:
                continue
            elems = _elements(v, c)
            con.execute(
                f"INSERT INTO unresolved_reference SELECT DISTINCT ?, ?, _rid, ref, 'unresolvable' "
                f"FROM ({elems}) WHERE {_LOOKS_UNRESOLVED.format(c='ref')}", [v.name, c.name])
            con.execute(
                f"INSERT INTO unresolved_reference SELECT DISTINCT ?, ?, e._rid, e.ref, "
                f"'target not loaded' FROM ({elems}) e ANTI JOIN _keys k ON k.key = e.ref "
                f"WHERE e._rid >= ? AND e.ref IS NOT NULL "
                f"AND NOT {_LOOKS_UNRESOLVED.format(c='e.ref')} AND e.ref NOT LIKE '%#%'",
                [v.name, c.name, since_rid if not full else 0])
    con.execute("DROP TABLE IF EXISTS _keys")
    return dict(con.execute(
        "SELECT reason, count(*) FROM unresolved_reference GROUP BY 1").fetchall())
