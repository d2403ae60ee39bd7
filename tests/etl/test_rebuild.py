"""Tables can be rebuilt from the sources the provenance tables recorded."""
from __future__ import annotations

import duckdb
import pytest

from etl.errors import EtlError
from etl.load import load
from etl.rebuild import rebuild
from tests.conftest import write_ndjson


def obs(oid, value, version):
    return {"resourceType": "Observation", "id": oid, "status": "final", "meta": {"versionId": version},
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2004-03-02",
            "valueQuantity": {"value": value, "unit": "g/dL"}}


def rows(db):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT resource_key, value_quantity FROM observation "
                           "ORDER BY ALL").fetchall()
    finally:
        con.close()


def test_rebuild_replays_loads_in_order_and_gives_the_same_tables(tmp_path):
    db = tmp_path / "t.duckdb"
    load(db, [write_ndjson(tmp_path / "a.ndjson", [{"resourceType": "Patient", "id": "p1"},
                                                    obs("o1", 9.0, "1"), obs("o2", 11.0, "1")])])
    load(db, [write_ndjson(tmp_path / "b.ndjson", [obs("o1", 8.0, "2")])])
    before = rows(db)
    rebuild(db)
    assert rows(db) == before
    assert ("Observation/o1", 8.0) in before


def test_rebuild_refuses_when_a_source_changed(tmp_path):
    db = tmp_path / "t.duckdb"
    f = write_ndjson(tmp_path / "a.ndjson", [obs("o1", 9.0, "1")])
    load(db, [f])
    write_ndjson(f, [obs("o1", 7.0, "1")])
    with pytest.raises(EtlError, match=r"changed since they were loaded"):
        rebuild(db)
    rebuild(db, allow_changed=True)
    assert rows(db) == [("Observation/o1", 7.0)]


def test_files_with_a_bom_or_gzip_are_not_mistaken_for_changed_ones(tmp_path):
    from tests.conftest import write_json
    db = tmp_path / "t.duckdb"
    files = [write_ndjson(tmp_path / "a.ndjson", [obs("o1", 9.0, "1")], bom=True),
             write_ndjson(tmp_path / "b.ndjson.gz", [obs("o2", 8.0, "1")], gz=True, bom=True),
             write_json(tmp_path / "c.json", obs("o3", 7.0, "1"), bom=True)]
    load(db, files)
    result = rebuild(db)
    assert result.changed_files == [] and result.missing_files == []
    assert len(rows(db)) == 3
