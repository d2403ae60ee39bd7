"""Decide which version of each resource is current after a load.

Rule (documented in README): among every occurrence of the same ``Type/id`` that is current or
was staged by this load, the latest wins -- highest numeric ``meta.versionId``, then latest
``meta.lastUpdated``, then load order (later file, later line). An occurrence with exactly
the same content, versionId and lastUpdated as the current one -- or, within one load, as the
winner -- is a *duplicate* and changes nothing, which is what makes re-loading the same input
a no-op. Content is compared by the hash of the resource text without its line ending, so
where a line sits in a file does not matter. A DELETE (bundle entry or
Bulk ``deleted/`` file) that comes later in load order than the winner removes the resource.
"""
from __future__ import annotations

import duckdb

from .sql import quote_ident
from .store import run_script

_RESOLVE = """
-- Only keys that occur more than once (in this load, or already current) or are deleted need
-- ranking; every other staged row simply becomes current (the common case of a first load).
CREATE OR REPLACE TEMP TABLE _touched AS
    SELECT resource_type, id FROM resource WHERE load_id = $load AND status = 'staged'
    GROUP BY ALL HAVING count(*) > 1
    UNION
    SELECT s.resource_type, s.id FROM resource s
    JOIN resource c ON c.resource_type = s.resource_type AND c.id = s.id AND c.status = 'current'
    WHERE s.load_id = $load AND s.status = 'staged'
    UNION
    SELECT DISTINCT resource_type, id FROM deletion WHERE load_id = $load AND id IS NOT NULL;

UPDATE resource SET status = 'duplicate'
WHERE _rid IN (
    SELECT s._rid FROM resource s
    JOIN resource c ON c.resource_type = s.resource_type AND c.id = s.id AND c.status = 'current'
    WHERE s.load_id = $load AND s.status = 'staged'
      AND s.content_hash = c.content_hash
      AND s.version_id IS NOT DISTINCT FROM c.version_id
      AND s.last_updated IS NOT DISTINCT FROM c.last_updated);

CREATE OR REPLACE TEMP TABLE _ranked AS
SELECT r._rid, r.resource_type, r.id, r.status AS old_status,
       row_number() OVER w AS rn,
       -- an identical copy of the winner (same content, versionId, lastUpdated) is a duplicate
       (r.content_hash, r.version_id, r.last_updated) IS NOT DISTINCT FROM
           first_value((r.content_hash, r.version_id, r.last_updated)) OVER w AS same_as_winner
FROM resource r JOIN _touched t USING (resource_type, id)
WHERE r.status IN ('current', 'staged')
WINDOW w AS (PARTITION BY r.resource_type, r.id
             ORDER BY try_cast(r.version_id AS BIGINT) DESC NULLS LAST,
                      try_cast(r.last_updated AS TIMESTAMPTZ) DESC NULLS LAST,
                      r._rid DESC);

CREATE OR REPLACE TEMP TABLE _last_delete AS
SELECT d.resource_type, d.id, max(d._rid) AS del_rid
FROM deletion d JOIN _touched t USING (resource_type, id)
GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE _decided AS
SELECT k._rid, k.resource_type, k.id, k.old_status,
       CASE WHEN k.rn > 1 AND k.same_as_winner AND k.old_status = 'staged' THEN 'duplicate'
            WHEN k.rn > 1 THEN 'superseded'
            WHEN d.del_rid IS NOT NULL AND d.del_rid > k._rid THEN 'deleted'
            ELSE 'current' END AS new_status
FROM _ranked k LEFT JOIN _last_delete d USING (resource_type, id);

UPDATE resource SET status = d.new_status
FROM _decided d WHERE resource._rid = d._rid AND resource.status <> d.new_status;

UPDATE resource SET status = 'current'
WHERE load_id = $load AND status = 'staged';

UPDATE deletion SET applied = true
WHERE load_id = $load AND EXISTS (
    SELECT 1 FROM _decided d WHERE d.resource_type = deletion.resource_type
      AND d.id = deletion.id AND d.new_status = 'deleted' AND d._rid < deletion._rid);
"""


def resolve(con: duckdb.DuckDBPyConnection, load_id: int, views) -> None:
    """Settle versions for everything this load touched and drop rows that lost."""
    run_script(con, _RESOLVE, {"load": load_id})
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _lost AS
        SELECT _rid FROM _decided WHERE new_status <> 'current'
        UNION ALL
        SELECT _rid FROM resource WHERE load_id = $load AND status = 'duplicate'""",
                {"load": load_id})
    for v in views:
        con.execute(f"DELETE FROM {quote_ident(v.name)} WHERE _rid IN (SELECT _rid FROM _lost)")
    for t in ("_touched", "_ranked", "_last_delete", "_decided", "_lost"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
