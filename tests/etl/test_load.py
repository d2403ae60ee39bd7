"""Loading: provenance for every line, bad input isolated, versions, deletions, idempotency,
one transaction."""
from __future__ import annotations

import json

import duckdb
import pytest

from etl.errors import LoadAborted
from etl.load import LoadOptions, load
from tests.conftest import write_json, write_ndjson

UUID_P = "5b8f2f3c-8a33-4d1e-9c51-6a1f0e2b7d10"
UUID_O = "0c6e1f7a-2d4b-4e8f-a1c3-9b7d5e3f1a22"


def patient(pid="p1", **kw):
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1952-03", **kw}


def hgb(oid="o1", subject="Patient/p1", value=9.1, **kw):
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
            "subject": {"reference": subject}, "effectiveDateTime": "2004-03-02",
            "valueQuantity": {"value": value, "unit": "g/dL", "system": "http://unitsofmeasure.org",
                              "code": "g/dL"}, **kw}


def q(db, sql, *params):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def statuses(db):
    return dict(((t, i), s) for t, i, s in q(db, "SELECT resource_type, id, status FROM resource "
                                               "WHERE status = 'current' ORDER BY _rid"))


def test_every_line_is_loaded_or_rejected_with_file_line_and_reason(tmp_path):
    f = write_ndjson(tmp_path / "Observation.000.ndjson", [
        hgb("o1"),
        '{"resourceType": "Observation", "id": "o2", "status": "fin',  # truncated
        "[1, 2, 3]",
        json.dumps({"id": "o4", "status": "final"}),  # no resourceType
        json.dumps({"resourceType": "Observaton", "id": "o5"}),  # unknown type
        json.dumps({"resourceType": "Observation", "status": "final"}),  # no id
        hgb("o7"),
    ])
    db = tmp_path / "t.duckdb"
    r = load(db, [f])
    assert r.rejected == 5 and r.loaded == 2
    errors = q(db, "SELECT line, resource_type, resource_id, reason FROM load_error ORDER BY line")
    assert [(e[0], e[3].split(" (")[0]) for e in errors] == [
        (2, "invalid JSON"), (3, "not a JSON object"), (4, "missing resourceType"),
        (5, "unknown resourceType"), (6, "resource without id")]
    assert errors[3][1] is None  # "Observaton" came from the data: never stored
    assert q(db, "SELECT line FROM resource ORDER BY line") == [(1,), (7,)]


def test_error_messages_never_contain_resource_content(tmp_path):
    secret = "Jane Q. Secret-Patient"
    f = write_ndjson(tmp_path / "p.ndjson", [
        '{"resourceType": "Patient", "id": "p1", "name": [{"text": "' + secret + '"}',
        json.dumps({"name": [{"text": secret}]})])
    db = tmp_path / "t.duckdb"
    r = load(db, [f])
    text = json.dumps(q(db, "SELECT * FROM load_error")) + " ".join(r.rejected_sample)
    assert secret not in text and "Secret" not in text


def test_log_files_of_an_export_are_reported_and_skipped(tmp_path):
    write_ndjson(tmp_path / "log.ndjson", [{"exportId": "e1", "eventId": "kickoff"}] * 3)
    write_ndjson(tmp_path / "Patient.000.ndjson", [patient()])
    r = load(tmp_path / "t.duckdb", [tmp_path])
    assert r.rejected == 0 and [p.endswith("log.ndjson") for p in r.non_resource_files] == [True]


def test_resource_type_comes_from_the_line_not_the_file_name(tmp_path):
    f = write_ndjson(tmp_path / "Patient.000.ndjson", [patient(), hgb()])
    db = tmp_path / "t.duckdb"
    load(db, [f])
    assert set(statuses(db)) == {("Patient", "p1"), ("Observation", "o1")}
    assert q(db, "SELECT count(*) FROM observation")[0][0] >= 1


def test_gzip_and_bom_files_load_like_plain_ones(tmp_path):
    write_ndjson(tmp_path / "a" / "Patient.ndjson.gz", [patient("p1")], gz=True)
    write_ndjson(tmp_path / "a" / "More.jsonl", [patient("p2")], bom=True)
    write_json(tmp_path / "a" / "one.json", patient("p3"), bom=True)
    db = tmp_path / "t.duckdb"
    r = load(db, [tmp_path / "a"])
    assert r.rejected == 0
    assert sorted(i for _, i in statuses(db)) == ["p1", "p2", "p3"]


def test_reloading_the_same_input_changes_nothing(tmp_path):
    f = write_ndjson(tmp_path / "x.ndjson", [patient(), hgb()])
    db = tmp_path / "t.duckdb"
    load(db, [f])
    before = q(db, "SELECT * FROM observation ORDER BY ALL"), q(db, "SELECT * FROM resource ORDER BY _rid")
    r2 = load(db, [f])
    assert r2.files_unchanged and r2.loaded == 0
    # the same content from a copy elsewhere is recognised as a duplicate, not a new version
    copy = write_ndjson(tmp_path / "copy" / "x.ndjson", [patient(), hgb()])
    r3 = load(db, [copy])
    assert r3.loaded == 0 and sum(c["duplicate"] for c in r3.by_type.values()) == 2
    assert q(db, "SELECT * FROM observation ORDER BY ALL") == before[0]
    assert q(db, "SELECT * FROM resource WHERE status = 'current' ORDER BY _rid") == \
        [r for r in before[1] if r[-1] == "current"]


def test_the_latest_version_wins_by_version_id_then_last_updated_then_load_order(tmp_path):
    v2 = hgb(value=8.0, meta={"versionId": "2"})
    v10 = hgb(value=7.0, meta={"versionId": "10"})  # numeric, not string, order
    f = write_ndjson(tmp_path / "a.ndjson", [v10, v2])
    db = tmp_path / "t.duckdb"
    load(db, [f])
    rows = q(db, "SELECT version_id, status FROM resource WHERE id = 'o1' ORDER BY _rid")
    assert rows == [("10", "current"), ("2", "superseded")]
    later = write_ndjson(tmp_path / "b.ndjson", [hgb(value=6.0, meta={"lastUpdated": "2020-01-01T00:00:00Z"})])
    load(db, [later])  # no versionId: loses to versionId 10
    assert q(db, "SELECT version_id FROM resource WHERE id = 'o1' AND status = 'current'") == [("10",)]
    same = write_ndjson(tmp_path / "c.ndjson", [hgb(value=5.0, meta={"versionId": "10"})])
    load(db, [same])  # same version, later in load order: wins
    assert q(db, "SELECT file_id FROM resource WHERE id = 'o1' AND status = 'current'") == \
        q(db, "SELECT file_id FROM source_file WHERE path LIKE '%c.ndjson'")


def test_superseded_versions_leave_no_rows_in_the_tables(tmp_path):
    db = tmp_path / "t.duckdb"
    load(db, [write_ndjson(tmp_path / "a.ndjson", [hgb(meta={"versionId": "1"})])])
    load(db, [write_ndjson(tmp_path / "b.ndjson", [hgb(meta={"versionId": "2"}, status="amended")])])
    rids = q(db, "SELECT DISTINCT o._rid, r.version_id FROM observation o JOIN resource r USING (_rid)")
    assert [v for _, v in rids] == ["2"]


def test_delete_entries_and_deleted_files_remove_resources(tmp_path):
    db = tmp_path / "t.duckdb"
    load(db, [write_ndjson(tmp_path / "a.ndjson", [patient("p1"), patient("p2"), hgb()])])
    write_json(tmp_path / "tx.json", {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "DELETE", "url": "Observation/o1"}}]})
    write_ndjson(tmp_path / "export" / "deleted" / "del.ndjson", [patient("p2")])
    r = load(db, [tmp_path / "tx.json", tmp_path / "export"])
    assert r.deletions == 2 and r.deletions_applied == 2
    assert {k for k in statuses(db) if k[0] != "Bundle"} == {("Patient", "p1")}
    assert q(db, "SELECT count(*) FROM observation") == [(0,)]


def test_transaction_bundle_references_resolve_through_full_urls(tmp_path):
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"urn:uuid:{UUID_P}", "request": {"method": "PUT", "url": f"Patient/{UUID_P}"},
         "resource": patient(UUID_P)},
        {"fullUrl": f"urn:uuid:{UUID_O}", "request": {"method": "POST", "url": "Observation"},
         "resource": {k: v for k, v in hgb(subject=f"urn:uuid:{UUID_P}").items() if k != "id"}}]}
    db = tmp_path / "t.duckdb"
    r = load(db, [write_json(tmp_path / "b.json", bundle)])
    assert r.rejected == 0
    assert ("Observation", UUID_O) in statuses(db)
    assert q(db, "SELECT DISTINCT patient_key FROM observation") == [(f"Patient/{UUID_P}",)]
    assert q(db, "SELECT entry FROM resource WHERE id = ?", UUID_O) == [("entry[1]",)]


def test_unresolved_references_are_listed_not_dropped(tmp_path):
    db = tmp_path / "t.duckdb"
    r = load(db, [write_ndjson(tmp_path / "a.ndjson", [hgb(subject="urn:uuid:nowhere"),
                                                        hgb("o2", subject="Patient/absent")])])
    assert r.unresolved == {"unresolvable": 1, "target not loaded": 1} or \
        sum(r.unresolved.values()) >= 2
    refs = {x[0] for x in q(db, "SELECT reference FROM unresolved_reference")}
    assert {"urn:uuid:nowhere", "Patient/absent"} <= refs


def test_strict_rejects_the_whole_load_and_changes_nothing(tmp_path):
    db = tmp_path / "t.duckdb"
    load(db, [write_ndjson(tmp_path / "a.ndjson", [patient("p0")])])
    before = q(db, "SELECT * FROM resource")
    bad = write_ndjson(tmp_path / "b.ndjson", [patient("p1"), "{oops"])
    with pytest.raises(LoadAborted, match=r"b.ndjson line 2: invalid JSON"):
        load(db, [bad], LoadOptions(strict=True))
    assert q(db, "SELECT * FROM resource") == before
    assert q(db, "SELECT count(*) FROM load_run") == [(1,)]


def test_a_crash_mid_load_rolls_everything_back(tmp_path, monkeypatch):
    db = tmp_path / "t.duckdb"
    load(db, [write_ndjson(tmp_path / "a.ndjson", [patient("p0")])])
    import etl.versions

    def boom(*a, **k):
        raise RuntimeError("simulated crash")
    monkeypatch.setattr(etl.versions, "resolve", boom)
    with pytest.raises(RuntimeError):
        load(db, [write_ndjson(tmp_path / "b.ndjson", [patient("p1"), hgb()])])
    assert statuses(db) == {("Patient", "p0"): "current"}
    assert q(db, "SELECT count(*) FROM source_file") == [(1,)]


def test_validate_lists_invalid_r4_with_the_element_path_and_keeps_the_resource(tmp_path):
    f = write_ndjson(tmp_path / "a.ndjson", [patient("p1"), patient("p2", birthDate="1952-13-45")])
    db = tmp_path / "t.duckdb"
    r = load(db, [f], LoadOptions(validate=True, validate_workers=1))
    assert r.rejected == 0 and r.loaded == 2
    [(line, rid, path, reason)] = q(db, "SELECT line, resource_id, path, reason FROM load_issue "
                                        "WHERE kind = 'validation'")
    assert (line, rid, path) == (2, "p2", "Patient.birthDate")
    assert reason.startswith("invalid FHIR R4: ") and "1952-13-45" not in reason  # never echoed


def test_validate_reports_missing_required_elements(tmp_path):
    obs = {k: v for k, v in hgb().items() if k != "code"}
    db = tmp_path / "t.duckdb"
    r = load(db, [write_ndjson(tmp_path / "a.ndjson", [obs])], LoadOptions(validate=True))
    assert r.rejected == 0 and r.issues == {"validation": 1}
    assert q(db, "SELECT path, reason FROM load_issue") == [
        ("Observation.code", "invalid FHIR R4: Field required")]


def test_a_line_that_is_not_utf8_is_rejected_and_its_neighbours_load(tmp_path):
    f = tmp_path / "p.ndjson"
    f.write_bytes(b'{"resourceType":"Patient","id":"p1"}\n{"resourceType":"Patient","id":"p\xe9"}\n'
                  b'{"resourceType":"Patient","id":"p3"}\n')
    db = tmp_path / "t.duckdb"
    r = load(db, [f])
    assert (r.loaded, r.rejected) == (2, 1)
    assert q(db, "SELECT line, reason FROM load_error") == [(2, "invalid JSON (str is not valid UTF-8, at character 0)")]


def test_a_truncated_gzip_file_keeps_its_complete_lines_and_reports_the_cut(tmp_path):
    import gzip
    full = gzip.compress(("\n".join(json.dumps(patient(f"p{i}")) for i in range(2000)) + "\n").encode())
    f = tmp_path / "Patient.ndjson.gz"
    f.write_bytes(full[: len(full) * 2 // 3])
    db = tmp_path / "t.duckdb"
    r = load(db, [f])
    assert r.loaded > 0 and r.rejected >= 1
    reasons = [x[0] for x in q(db, "SELECT reason FROM load_error ORDER BY line NULLS LAST")]
    assert reasons[-1].startswith("truncated compressed file: nothing readable after line")


def test_an_empty_json_file_is_rejected_with_its_name(tmp_path):
    (tmp_path / "empty.json").write_bytes(b"")
    db = tmp_path / "t.duckdb"
    r = load(db, [tmp_path / "empty.json"])
    assert r.rejected == 1 and r.rejected_sample[0].endswith("empty.json: invalid JSON "
                                                            "(Input is a zero-length, empty document, at character 0)")


def test_a_resource_missing_what_its_table_needs_is_rejected_with_the_reason(tmp_path):
    orphan = {k: v for k, v in hgb("o2").items() if k != "subject"}
    db = tmp_path / "t.duckdb"
    r = load(db, [write_ndjson(tmp_path / "Observation.ndjson", [hgb("o1"), orphan])])
    assert (r.loaded, r.rejected) == (1, 1)
    [(line, rtype, rid, reason)] = q(db, "SELECT line, resource_type, resource_id, reason FROM load_error")
    assert (line, rtype, rid) == (2, "Observation", "o2")
    assert reason.startswith("table observation needs patient_key")
    assert q(db, "SELECT DISTINCT resource_key FROM observation") == [("Observation/o1",)]
    assert q(db, "SELECT status FROM resource WHERE id = 'o2'") == [("rejected",)]


def test_validate_spreads_a_big_file_over_worker_processes(tmp_path):
    docs = [patient(f"p{i}") for i in range(1500)]
    docs[1234] = patient("bad", birthDate="1952-13-45")
    db = tmp_path / "t.duckdb"
    r = load(db, [write_ndjson(tmp_path / "Patient.ndjson", docs)],
             LoadOptions(validate=True, validate_workers=2))
    assert (r.loaded, r.rejected) == (1500, 0)
    assert q(db, "SELECT line, resource_id FROM load_issue WHERE kind = 'validation'") == [(1235, "bad")]


def test_a_reference_whose_target_arrives_in_a_later_load_is_no_longer_listed(tmp_path):
    db = tmp_path / "t.duckdb"
    r1 = load(db, [write_ndjson(tmp_path / "a.ndjson", [hgb(subject="Patient/later")])])
    assert r1.unresolved == {"target not loaded": 1}
    r2 = load(db, [write_ndjson(tmp_path / "b.ndjson", [patient("later")])])
    assert r2.unresolved == {}
    assert q(db, "SELECT count(*) FROM unresolved_reference") == [(0,)]
    # and a urn:uuid reference resolved by a Bundle of a later load is rewritten in place
    load(db, [write_ndjson(tmp_path / "c.ndjson", [hgb("o9", subject=f"urn:uuid:{UUID_P}")])])
    load(db, [write_json(tmp_path / "d.json", {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": f"urn:uuid:{UUID_P}", "resource": patient(UUID_P)}]})])
    assert q(db, "SELECT DISTINCT patient_key FROM observation WHERE resource_key = 'Observation/o9'") == \
        [(f"Patient/{UUID_P}",)]
    assert q(db, "SELECT count(*) FROM unresolved_reference") == [(0,)]


def test_a_truncated_gzip_json_document_is_rejected_not_a_crash(tmp_path):
    import gzip
    full = gzip.compress(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": patient(f"p{i}")} for i in range(300)]}).encode())
    f = tmp_path / "bundle.json.gz"
    f.write_bytes(full[: len(full) // 2])
    db = tmp_path / "t.duckdb"
    r = load(db, [f])
    assert r.loaded == 0 and r.rejected == 1
    assert r.rejected_sample[0].endswith(
        "bundle.json.gz: truncated compressed file: the compressed stream ends early")


def test_ndjson_saved_with_a_json_name_is_read_line_by_line(tmp_path):
    f = tmp_path / "Patient.json"
    f.write_text("\n".join(json.dumps(patient(f"p{i}")) for i in range(3)) + "\n{oops\n")
    db = tmp_path / "t.duckdb"
    r = load(db, [f])
    assert (r.loaded, r.rejected) == (3, 1)
    assert q(db, "SELECT line FROM load_error") == [(4,)]
