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

from .store import quote_ident

_LOOKS_UNRESOLVED = "({c} LIKE 'urn:%' OR {c} LIKE '%?%')"

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


def rewrite(con: duckdb.DuckDBPyConnection, views, since_rid: int = 0) -> None:
    """Resolve what getReferenceKey() could not, in every reference-key column."""
    targets = [(v, c) for v in views for c in v.columns if c.is_reference_key]
    con.execute("CREATE OR REPLACE TEMP TABLE _refs (ref VARCHAR)")
    for v, c in targets:
        col = quote_ident(c.name)
        con.execute(f"INSERT INTO _refs SELECT DISTINCT {col} FROM {quote_ident(v.name)} "
                    f"WHERE {_LOOKS_UNRESOLVED.format(c=col)}")
    con.execute(_MAP)
    for v, c in targets:
        col, tbl = quote_ident(c.name), quote_ident(v.name)
        con.execute(f"UPDATE {tbl} SET {col} = m.key FROM _refmap m "
                    f"WHERE {tbl}.{col} = m.ref")
        if c.reference_types:  # getReferenceKey(Patient): a resolved key of another type is NULL
            types = list(c.reference_types)
            con.execute(f"UPDATE {tbl} SET {col} = NULL WHERE {col} IS NOT NULL "
                        f"AND NOT {_LOOKS_UNRESOLVED.format(c=col)} AND {col} NOT LIKE '%#%' "
                        f"AND split_part({col}, '/', 1) <> ALL(?::VARCHAR[])", [types])
        con.execute(f"UPDATE {tbl} SET {col} = r.resource_type || '/' || r.id || {tbl}.{col} "
                    f"FROM resource r WHERE r._rid = {tbl}._rid AND {tbl}.{col} LIKE '#%'")
    con.execute("DROP TABLE IF EXISTS _refs")
    con.execute("DROP TABLE IF EXISTS _refmap")


def list_unresolved(con: duckdb.DuckDBPyConnection, views) -> dict[str, int]:
    """Rebuild ``unresolved_reference``; return counts per reason."""
    con.execute("DELETE FROM unresolved_reference")
    con.execute("CREATE OR REPLACE TEMP TABLE _keys AS "
                "SELECT resource_type || '/' || id AS key FROM resource WHERE status = 'current'")
    for v in views:
        tbl = quote_ident(v.name)
        for c in v.columns:
            if not c.is_reference_key:
                continue
            col = quote_ident(c.name)
            con.execute(
                f"INSERT INTO unresolved_reference SELECT ?, ?, _rid, {col}, 'unresolvable' "
                f"FROM {tbl} WHERE {_LOOKS_UNRESOLVED.format(c=col)}", [v.name, c.name])
            con.execute(
                f"INSERT INTO unresolved_reference SELECT ?, ?, t._rid, t.{col}, 'target not loaded' "
                f"FROM {tbl} t ANTI JOIN _keys k ON k.key = t.{col} "
                f"WHERE t.{col} IS NOT NULL AND NOT {_LOOKS_UNRESOLVED.format(c='t.' + col)} "
                f"AND t.{col} NOT LIKE '%#%'", [v.name, c.name])
    con.execute("DROP TABLE IF EXISTS _keys")
    return dict(con.execute(
        "SELECT reason, count(*) FROM unresolved_reference GROUP BY 1").fetchall())
