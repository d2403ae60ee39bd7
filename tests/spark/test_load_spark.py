"""`load_lake`: the Parquet lake built by Spark straight from FHIR NDJSON is the lake that
`bmc load` (DuckDB) followed by `bmc export` writes -- the same declared-table rows, the same
provenance, the same rejections -- and it is put in place atomically.

Lakes are read back with DuckDB (``read_parquet``): no Spark work beyond one build (the
1,000-patient export and a small handcrafted one, together)."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb
import pytest
from lake_compare import assert_same_lake
from small_export import NPI, PLANTED_NAME

from etl.declared import compiled_views
from etl.errors import EtlError, SourceError

VIEWS = compiled_views()


# -- small handcrafted exports: one behaviour each, DuckDB's result as the reference ---------

@pytest.fixture(scope="module")
def lakes(duck_lake, lake, lake_load):
    """The session's one Spark build (conftest: the 1,000-patient export, the committed
    sample and the handcrafted export, written over an older lake that ``overwrite``
    replaces) beside ``bmc export`` of the same inputs loaded by DuckDB -> (DuckDB's export,
    the Spark lake, its summary, its progress messages)."""
    summary, messages = lake_load
    return duck_lake, lake, summary, messages


def test_the_lake_equals_the_duckdb_export_of_the_same_inputs(lakes):
    duck, ours, _, _ = lakes
    assert_same_lake(duck, ours)


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
    (files,) = con.execute(f"SELECT files_read FROM read_parquet('{duck}/load_run/*.parquet')"
                           ).fetchall()[0]
    con.close()
    assert {t: dict(c) for t, c in summary.by_type.items()} == by_type
    assert summary.files_read == files and summary.rejected == 2
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
