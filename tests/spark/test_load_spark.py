"""`load_lake`: the Parquet lake built by Spark straight from FHIR NDJSON is the lake that
`bmc load` (DuckDB) followed by `bmc export` writes -- the same declared-table rows, the same
provenance, the same rejections -- and it is put in place atomically.

Lakes are read back with DuckDB (``read_parquet``): no Spark work beyond one build (the
1,000-patient export and a small handcrafted one, together)."""
from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from etl.declared import compiled_views
from etl.errors import EtlError, SourceError

VIEWS = compiled_views()
PLANTED_NAME = "Quixotefield"  # a patient's family name: must never reach a message


def _lake_rows(root: Path, table: str, columns: list[str]) -> Counter:
    cols = ", ".join(f'"{c}"' for c in columns)
    con = duckdb.connect()
    try:
        rows = con.execute(f"SELECT {cols} FROM read_parquet('{root}/{table}/**/*.parquet', "
                           f"hive_partitioning = false)").fetchall()
    finally:
        con.close()
    return Counter(map(repr, rows))


def _manifest(root: Path) -> dict:
    return {t["name"]: t for t in json.loads((root / "_export.json").read_text())["tables"]}


def _columns(root: Path, table: str, drop=("_rid",)) -> list[str]:
    return [c for c, _ in _manifest(root)[table]["columns"] if c not in drop]


def _resources(root: Path) -> Counter:
    """(type, id, status, source path, line): what the evidence ledger shows."""
    con = duckdb.connect()
    try:
        rows = con.execute(
            f"SELECT r.resource_type, r.id, r.status, f.path, r.line, r.entry "
            f"FROM read_parquet('{root}/resource/*.parquet') r "
            f"JOIN read_parquet('{root}/source_file/*.parquet') f USING (file_id)").fetchall()
    finally:
        con.close()
    return Counter(map(repr, rows))


def _assert_same_lake(duck: Path, spark: Path) -> None:
    theirs, ours = _manifest(duck), _manifest(spark)
    for view in VIEWS:
        assert ours[view.name]["columns"] == theirs[view.name]["columns"], view.name
        assert ours[view.name]["partitioned"] == theirs[view.name]["partitioned"], view.name
        cols = _columns(duck, view.name)
        assert _lake_rows(spark, view.name, cols) == _lake_rows(duck, view.name, cols), view.name
    assert _resources(spark) == _resources(duck)
    for table in ("load_error", "unresolved_reference", "deletion"):
        cols = _columns(duck, table, drop=("_rid", "file_id"))
        assert _lake_rows(spark, table, cols) == _lake_rows(duck, table, cols), table
    for table in ("resource", "source_file", "load_run", "load_error", "deletion"):
        assert ours[table]["columns"] == theirs[table]["columns"], table


# -- small handcrafted exports: one behaviour each, DuckDB's result as the reference ---------

def _obs(oid: str, value: float, version: str | None = None, subject: bool = True,
         updated: str = "2024-03-01T10:00:00Z") -> dict:
    meta = {"lastUpdated": updated} | ({"versionId": version} if version else {})
    res = {"resourceType": "Observation", "id": oid, "meta": meta, "status": "final",
           "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                               "observation-category", "code": "laboratory"}]}],
           "code": {"coding": [{"system": "http://loinc.org", "code": "718-7",
                                "display": "Hemoglobin [Mass/volume] in Blood"}]},
           "effectiveDateTime": "2024-03-01T09:30:00Z",
           "valueQuantity": {"value": value, "unit": "g/dL",
                             "system": "http://unitsofmeasure.org", "code": "g/dL"}}
    if subject:
        res["subject"] = {"reference": "Patient/pat-1"}
    return res


def _ndjson(path: Path, resources: list, gz: bool = False) -> None:
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in resources)
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)


NPI = "http://hl7.org/fhir/sid/us-npi"


@pytest.fixture(scope="module")
def small_export(tmp_path_factory) -> Path:
    """A hospital export in miniature: two versions of one Observation, a Bulk deleted/ file,
    an Observation without subject, a line cut mid-record, a conditional reference to a
    Practitioner, a gzip file, and a transaction Bundle (POSTs without ids referring to each
    other by urn:uuid, a DELETE of a resource never loaded)."""
    root = tmp_path_factory.mktemp("small") / "export"
    _ndjson(root / "Patient.000.ndjson", [
        {"resourceType": "Patient", "id": "pat-1", "gender": "female", "birthDate": "1961-04-02",
         "name": [{"family": PLANTED_NAME, "given": ["Ada"]}],
         "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "MRN-4471"}]},
        '{"resourceType": "Patient", "id": "pat-2", "name": [{"family": "' + PLANTED_NAME,
    ])
    _ndjson(root / "Practitioner.000.ndjson", [
        {"resourceType": "Practitioner", "id": "pr-1",
         "identifier": [{"system": NPI, "value": "9999912345"}],
         "name": [{"family": "Okafor", "prefix": ["Dr."]}]},
    ])
    _ndjson(root / "Observation.000.ndjson", [
        _obs("hb-1", 12.4, version="2", updated="2024-03-01T10:00:00Z"),
        "",
        _obs("hb-1", 9.1, version="1", updated="2024-03-02T10:00:00Z"),
        _obs("hb-orphan", 11.0, subject=False),
        _obs("hb-withdrawn", 8.0),
    ])
    _ndjson(root / "Encounter.000.ndjson.gz", [
        {"resourceType": "Encounter", "id": "enc-1", "status": "finished",
         "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
         "subject": {"reference": "Patient/pat-1"},
         "participant": [{"individual": {"reference": f"Practitioner?identifier={NPI}|9999912345"}},
                         {"individual": {"reference": f"Practitioner?identifier={NPI}|0000000000"}}],
         "period": {"start": "2024-03-01T09:00:00Z", "end": "2024-03-01T09:40:00Z"}},
    ], gz=True)
    _ndjson(root / "deleted" / "Observation.000.ndjson", [
        {"resourceType": "Observation", "id": "hb-withdrawn"}])
    patient_url = "urn:uuid:7d1f0c2e-3b7a-4f0e-9a51-2c6e8b4d9f10"
    (root / "bundles").mkdir()
    (root / "bundles" / "transaction.json").write_text(json.dumps({
        "resourceType": "Bundle", "id": "tx-1", "type": "transaction", "entry": [
            {"fullUrl": patient_url,
             "resource": {"resourceType": "Patient", "gender": "female",
                          "birthDate": "1958-11-20", "name": [{"family": "Lindqvist"}]},
             "request": {"method": "POST", "url": "Patient"}},
            {"fullUrl": "urn:uuid:0b6d6c1e-8f0a-4a7e-b1d4-5e2f9c3a7b21",
             "resource": {"resourceType": "Condition",
                          "clinicalStatus": {"coding": [{
                              "system": "http://terminology.hl7.org/CodeSystem/"
                                        "condition-clinical", "code": "active"}]},
                          "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm",
                                               "code": "C50.912"}]},
                          "subject": {"reference": patient_url},
                          "onsetDateTime": "2009-05-14"},
             "request": {"method": "POST", "url": "Condition"}},
            {"request": {"method": "DELETE", "url": "Procedure/proc-never-loaded"}},
        ]}))
    return root


@pytest.fixture(scope="module")
def lakes(spark, bulk_1000, small_export, tmp_path_factory):
    """One Spark build for every test here (each build costs seconds): the 1,000-patient
    export and the handcrafted one, loaded together by both engines -> (DuckDB's export, the
    Spark lake, its summary, its progress messages). The Spark lake is written over an older
    lake, which ``overwrite`` replaces as a whole."""
    from etl.export import export_parquet
    from etl.load import load
    from etl.spark.load import load_lake

    work = tmp_path_factory.mktemp("lakes")
    load(work / "db.duckdb", [bulk_1000, small_export])
    export_parquet(work / "db.duckdb", work / "duck")
    ours = work / "spark"
    (ours / "stale_table").mkdir(parents=True)
    (ours / "_export.json").write_text("{}")
    messages: list[str] = []
    summary = load_lake(spark, [bulk_1000, small_export], ours, overwrite=True,
                        progress=messages.append)
    return work / "duck", ours, summary, messages


def test_the_lake_equals_the_duckdb_export_of_the_same_inputs(lakes):
    duck, ours, _, _ = lakes
    _assert_same_lake(duck, ours)


def test_the_bulk_export_part_equals_the_duckdb_export_of_it_alone(lakes, bulk_1000,
                                                                    parquet_1000):
    _, ours, _, _ = lakes
    con = duckdb.connect()
    mine = (f"SELECT _rid FROM read_parquet('{ours}/resource/*.parquet') JOIN "
            f"read_parquet('{ours}/source_file/*.parquet') USING (file_id) "
            f"WHERE starts_with(path, '{Path(bulk_1000).resolve()}/')")
    for view in VIEWS:
        cols = ", ".join(f'"{c}"' for c in _columns(parquet_1000, view.name))
        got = con.execute(f"SELECT {cols} FROM read_parquet('{ours}/{view.name}/**/*.parquet', "
                          f"hive_partitioning = false) WHERE _rid IN ({mine})").fetchall()
        want = con.execute(f"SELECT {cols} FROM read_parquet('{parquet_1000}/{view.name}/"
                           f"**/*.parquet', hive_partitioning = false)").fetchall()
        assert Counter(map(repr, got)) == Counter(map(repr, want)), view.name
    con.close()
    bulk = {r for r in _resources(ours) if str(Path(bulk_1000).resolve()) + "/" in r}
    assert Counter(bulk) == _resources(parquet_1000)


def test_every_rid_leads_to_its_resource_and_keeps_the_load_order(lakes):
    """The evidence ledger joins a row's ``_rid`` to ``resource`` for file and line; tie-breaks
    in the cohort SQL order by ``_rid``: both hold on the Spark lake as on DuckDB's."""
    duck, ours, _, _ = lakes
    con = duckdb.connect()
    for view in VIEWS:
        (orphans,) = con.execute(
            f"SELECT count(*) FROM read_parquet('{ours}/{view.name}/**/*.parquet') t "
            f"LEFT JOIN read_parquet('{ours}/resource/*.parquet') r ON r._rid = t._rid "
            f"AND r.resource_type || '/' || r.id = t.resource_key AND r.status = 'current' "
            f"WHERE r._rid IS NULL").fetchall()[0]
        assert orphans == 0, view.name

    def order(root):
        return [tuple(r) for r in con.execute(
            f"SELECT resource_type, id FROM read_parquet('{root}/resource/*.parquet') "
            f"ORDER BY _rid").fetchall()]
    assert order(ours) == order(duck)
    con.close()


def test_summary_has_what_bmc_load_prints(lakes):
    from etl.load import LoadResult

    duck, _, summary, _ = lakes
    con = duckdb.connect()
    by_type: dict = {}
    for t, s, n in con.execute(f"SELECT resource_type, status, count(*) FROM "
                               f"read_parquet('{duck}/resource/*.parquet') GROUP BY ALL"
                               ).fetchall():
        by_type.setdefault(t, {})[s] = n
    con.close()
    assert {t: dict(c) for t, c in summary.by_type.items()} == by_type
    assert summary.files_read == 13 and summary.rejected == 2
    assert len(summary.rejected_sample) == 2
    assert summary.bytes_read > 20e6 and summary.seconds > 0 and summary.mb_per_s > 0
    # every field the CLI's load summary reads is there
    for name in LoadResult.__dataclass_fields__:
        assert hasattr(summary, name), name


def _one(root: Path, sql: str):
    con = duckdb.connect()
    try:
        return con.execute(sql.replace("{root}", str(root))).fetchall()
    finally:
        con.close()


def test_the_higher_version_id_wins_over_the_later_last_updated(lakes):
    _, ours, _, _ = lakes
    assert _one(ours, "SELECT value_quantity FROM read_parquet('{root}/observation/**/*.parquet')"
                      " WHERE resource_key = 'Observation/hb-1'") == [(12.4,)]
    assert sorted(_one(ours, "SELECT version_id, status, line FROM "
                             "read_parquet('{root}/resource/*.parquet') WHERE id = 'hb-1'")) \
        == [("1", "superseded", 3), ("2", "current", 1)]


def test_a_deleted_file_removes_the_resource(lakes):
    _, ours, summary, _ = lakes
    assert _one(ours, "SELECT count(*) FROM read_parquet('{root}/observation/**/*.parquet') "
                      "WHERE resource_key = 'Observation/hb-withdrawn'") == [(0,)]
    assert _one(ours, "SELECT status FROM read_parquet('{root}/resource/*.parquet') "
                      "WHERE id = 'hb-withdrawn'") == [("deleted",)]
    assert sorted(_one(ours, "SELECT id, applied FROM read_parquet('{root}/deletion/*.parquet')")) \
        == [("hb-withdrawn", True), ("proc-never-loaded", False)]
    assert (summary.deletions, summary.deletions_applied) == (2, 1)


def test_an_observation_without_subject_is_rejected_with_the_table_rule(lakes):
    _, ours, summary, _ = lakes
    [(file, line, rtype, rid, reason)] = _one(
        ours, "SELECT file, line, resource_type, resource_id, reason FROM "
              "read_parquet('{root}/load_error/*.parquet') WHERE resource_id = 'hb-orphan'")
    assert file.endswith("Observation.000.ndjson") and (line, rtype, rid) == (
        4, "Observation", "hb-orphan")
    assert reason == "table observation needs patient_key; the resource has none (e.g. no subject)"
    assert summary.by_type["Observation"]["rejected"] == 1


def test_a_line_cut_mid_record_is_reported_with_file_and_line(lakes):
    _, ours, summary, _ = lakes
    [(file, line, reason)] = _one(
        ours, "SELECT file, line, reason FROM read_parquet('{root}/load_error/*.parquet') "
              "WHERE reason LIKE 'invalid JSON%'")
    assert file.endswith("Patient.000.ndjson") and line == 2 and reason.startswith("invalid JSON (")
    assert summary.rejected == 2
    assert any("Patient.000.ndjson line 2: invalid JSON" in s for s in summary.rejected_sample)


def test_a_conditional_reference_resolves_to_the_one_practitioner(lakes):
    _, ours, summary, _ = lakes
    [(keys,)] = _one(ours, "SELECT participant_keys FROM "
                           "read_parquet('{root}/encounter/**/*.parquet') "
                           "WHERE resource_key = 'Encounter/enc-1'")
    assert keys[0] == "Practitioner/pr-1"
    assert keys[1] == f"Practitioner?identifier={NPI}|0000000000"  # no match: kept, listed
    assert summary.unresolved == {"unresolvable": 1}


def test_a_transaction_bundle_gets_derived_ids_and_urn_references_resolved(lakes):
    _, ours, _, _ = lakes
    patient = "Patient/7d1f0c2e-3b7a-4f0e-9a51-2c6e8b4d9f10"
    assert _one(ours, "SELECT code, patient_key FROM read_parquet('{root}/condition/**/*.parquet') "
                      "WHERE resource_key = 'Condition/0b6d6c1e-8f0a-4a7e-b1d4-5e2f9c3a7b21'") \
        == [("C50.912", patient)]
    assert sorted(_one(ours, "SELECT entry, resource_type, id_derived, line FROM "
                             "read_parquet('{root}/resource/*.parquet') WHERE entry IS NOT NULL "
                             "OR resource_type = 'Bundle'"), key=repr) == sorted([
        ("entry[0]", "Patient", True, None), ("entry[1]", "Condition", True, None),
        (None, "Bundle", False, None)], key=repr)


def test_a_gzip_file_is_read_with_its_line_numbers(lakes):
    _, ours, _, _ = lakes
    assert _one(ours, "SELECT r.line, f.kind, f.lines FROM read_parquet('{root}/resource/*.parquet') r "
                      "JOIN read_parquet('{root}/source_file/*.parquet') f USING (file_id) "
                      "WHERE r.id = 'enc-1'") == [(1, "ndjson", 1)]


def test_no_message_or_error_row_holds_patient_data(lakes):
    _, ours, summary, messages = lakes
    text = "\n".join([*messages, *summary.rejected_sample, *map(str, summary.rejected_records)])
    text += repr(_one(ours, "SELECT * FROM read_parquet('{root}/load_error/*.parquet')"))
    assert PLANTED_NAME not in text and "MRN-4471" not in text
    assert messages and summary.rejected_records[0].reason


def test_overwrite_replaces_the_old_lake_as_a_whole(lakes):
    _, ours, _, _ = lakes
    assert not (ours / "stale_table").exists()
    assert not [p for p in ours.parent.iterdir() if p.name.startswith(".")]
    assert not list(ours.rglob("_SUCCESS")) and not list(ours.rglob("*.crc"))


# -- the output folder rule -----------------------------------------------------------------

def test_a_non_empty_folder_is_refused_without_overwrite(spark, small_export, tmp_path):
    from etl.spark.load import LakeError, load_lake

    (tmp_path / "lake").mkdir()
    (tmp_path / "lake" / "notes.txt").write_text("mine")
    with pytest.raises(LakeError, match="not empty; choose a new folder or pass --overwrite"):
        load_lake(spark, [small_export], tmp_path / "lake")
    with pytest.raises(LakeError, match="only replaces a lake"):
        load_lake(spark, [small_export], tmp_path / "lake", overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["lake"]
    assert issubclass(LakeError, EtlError)


def test_a_failure_midway_leaves_the_old_lake_and_no_temporary_folder(spark, small_export,
                                                                      tmp_path, monkeypatch):
    from etl.spark import load as lake_load

    def interrupted(self, view, parsed):
        raise KeyboardInterrupt

    monkeypatch.setattr(lake_load._Build, "_view_rows", interrupted)
    (tmp_path / "lake").mkdir()
    (tmp_path / "lake" / "_export.json").write_text('{"tables": []}')
    with pytest.raises(KeyboardInterrupt):
        lake_load.load_lake(spark, [small_export], tmp_path / "lake", overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["lake"]
    assert (tmp_path / "lake" / "_export.json").read_text() == '{"tables": []}'


def test_a_missing_input_is_a_source_error(spark, tmp_path):
    from etl.spark.load import load_lake

    with pytest.raises(SourceError, match="no such file or folder"):
        load_lake(spark, [tmp_path / "nowhere"], tmp_path / "lake")
    assert not (tmp_path / "lake").exists()


def test_a_gzip_file_cut_short_stops_the_build_naming_the_file(spark, tmp_path):
    """DuckDB keeps the lines before the cut and lists the file in load_error; Spark's reader
    fails the job, so the lake is not written and the message says which file to look at."""
    from etl.spark.load import LakeError, load_lake

    patients = "".join(json.dumps({"resourceType": "Patient", "id": f"pat-{i}",
                                   "gender": "female", "birthDate": "1950-01-01"}) + "\n"
                       for i in range(3000))
    data = gzip.compress(patients.encode())
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "Patient.000.ndjson.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(LakeError, match=r"Patient\.000\.ndjson\.gz.*cut short") as e:
        load_lake(spark, [tmp_path / "in"], tmp_path / "lake")
    assert "_work" not in str(e.value) and "pat-" not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]
