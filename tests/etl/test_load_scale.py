"""Loads whose size must not matter (issue 15 §1): many files, one huge resource, many
rejected lines. The memory and time figures are in bench/memory_bench.py; these tests check
that what is loaded and what is rejected stays right."""
from __future__ import annotations

import json

import duckdb
import pytest

from etl.errors import SourceError
from etl.load import MAX_RESOURCE_MB, LoadOptions, load
from tests.conftest import write_json, write_ndjson


def patient(pid):
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1952-03"}


def hgb(oid, pid, value=9.1):
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": "2004-03-02",
            "valueQuantity": {"value": value, "unit": "g/dL", "system": "http://unitsofmeasure.org",
                              "code": "g/dL"}}


def report_with_attachment(mb: float, rid="scan"):
    """A DocumentReference whose base64 attachment makes the resource about ``mb`` MB."""
    return {"resourceType": "DocumentReference", "id": rid, "status": "current",
            "subject": {"reference": "Patient/p1"},
            "content": [{"attachment": {"contentType": "application/pdf",
                                        "data": "QUJD" * int(mb * (1 << 20) / 4)}}]}


def q(db, sql):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_many_small_files_load_with_their_counts(tmp_path):
    folder = tmp_path / "per_patient"
    for i in range(150):  # NDJSON and Bundles alternate, as in a per-patient export
        docs = [patient(f"p{i}"), hgb(f"o{i}a", f"p{i}"), hgb(f"o{i}b", f"p{i}", 13.0)]
        if i % 2:
            write_ndjson(folder / f"p{i}.ndjson", docs)
        else:
            write_json(folder / f"p{i}.json", {"resourceType": "Bundle", "type": "collection",
                                               "entry": [{"resource": d} for d in docs]})
    db = tmp_path / "t.duckdb"
    r = load(db, [folder])
    assert (r.files_read, r.rejected) == (150, 0)
    assert {t: c["current"] for t, c in r.by_type.items()} == {
        "Patient": 150, "Observation": 300, "Bundle": 75}  # a collection Bundle is kept too
    assert q(db, "SELECT count(*), count(DISTINCT path) FROM source_file") == [(150, 150)]
    assert q(db, "SELECT sum(records) FROM source_file WHERE kind = 'ndjson'") == [(225,)]
    assert q(db, "SELECT count(*) FROM observation") == [(300,)]


def test_rejected_lines_are_written_in_batches_with_file_line_and_reason(tmp_path):
    lines = []
    for i in range(30_000):  # more than one batch of buffered load_error rows
        lines.append(['{"resourceType": "Observation", "id": "t' + str(i) + '", "status": "fin',
                      json.dumps({"resourceType": "Observation", "status": "final"}),
                      json.dumps({"id": f"n{i}", "status": "final"})][i % 3])
    lines.insert(100, json.dumps(hgb("ok", "p1")))
    f = write_ndjson(tmp_path / "Observation.000.ndjson", lines)
    db = tmp_path / "t.duckdb"
    r = load(db, [f])
    assert (r.loaded, r.rejected) == (1, 30_000)
    rows = q(db, "SELECT line, resource_type, resource_id, split_part(reason, ' (', 1) "
                 "FROM load_error ORDER BY line")
    assert len(rows) == 30_000
    assert rows[:3] == [(1, None, None, "invalid JSON"),
                        (2, "Observation", None, "resource without id"),
                        (3, None, None, "missing resourceType")]
    assert rows[-1] == (30_001, None, None, "missing resourceType")  # line 101 was loaded
    assert (101,) not in {(r[0],) for r in rows}
    assert q(db, "SELECT rejected FROM source_file") == [(30_000,)]


def test_a_resource_over_the_per_resource_limit_is_rejected_alone(tmp_path):
    f = write_ndjson(tmp_path / "DocumentReference.000.ndjson", [
        patient("p1"), report_with_attachment(MAX_RESOURCE_MB + 1), hgb("o1", "p1")])
    db = tmp_path / "t.duckdb"
    r = load(db, [f])
    assert (r.loaded, r.rejected) == (2, 1)
    assert q(db, "SELECT line, resource_type, resource_id, reason FROM load_error") == [
        (2, "DocumentReference", "scan",
         f"resource of {MAX_RESOURCE_MB + 1} MB is over the per-resource limit of "
         f"{MAX_RESOURCE_MB} MB (README: Memory); not loaded")]


def test_an_oversized_resource_in_a_bundle_is_rejected_with_its_entry(tmp_path):
    f = write_json(tmp_path / "docs.json", {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": patient("p1")}, {"resource": report_with_attachment(MAX_RESOURCE_MB + 1)}]})
    db = tmp_path / "t.duckdb"
    r = load(db, [f])
    assert (r.by_type["Patient"]["current"], r.rejected) == (1, 1)
    [(entry, rtype, reason)] = q(db, "SELECT entry, resource_type, reason FROM load_error")
    assert (entry, rtype) == ("entry[1]", "DocumentReference")
    assert reason.startswith(f"resource of {MAX_RESOURCE_MB + 1} MB is over the per-resource")


@pytest.mark.slow
def test_a_resource_just_under_the_limit_is_loaded(tmp_path):
    f = write_ndjson(tmp_path / "DocumentReference.000.ndjson", [
        patient("p1"), report_with_attachment(MAX_RESOURCE_MB - 1)])
    db = tmp_path / "t.duckdb"
    r = load(db, [f])
    assert (r.loaded, r.rejected) == (2, 0)
    assert q(db, "SELECT resource_type, id FROM resource ORDER BY 1") == [
        ("DocumentReference", "scan"), ("Patient", "p1")]


@pytest.mark.parametrize("limit", ["lots", "256", "-1GB"])
def test_a_memory_limit_that_is_not_a_size_is_a_usage_error(tmp_path, limit):
    f = write_ndjson(tmp_path / "Patient.ndjson", [patient("p1")])
    with pytest.raises(SourceError, match="give a size such as 256MB"):
        load(tmp_path / "t.duckdb", [f], LoadOptions(memory_limit=limit))
    assert not (tmp_path / "t.duckdb").exists()

