"""Reading what a hospital or a careless colleague hands over: every input is loaded, reported
in load_error, or listed as skipped with the reason -- never lost quietly, never a traceback.

Each test is one case of issue 10 (the reading side of the loader)."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from etl.load import LoadOptions, load
from tests.conftest import EXTERNAL, write_json, write_ndjson


def patient(pid: str = "p1", **kw) -> dict:
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1952-03", **kw}


def hgb(oid: str = "o1", subject: str = "Patient/p1", value: float = 9.1) -> dict:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
            "subject": {"reference": subject}, "effectiveDateTime": "2004-03-02",
            "valueQuantity": {"value": value, "unit": "g/dL", "system": "http://unitsofmeasure.org",
                              "code": "g/dL"}}


def q(db: Path, sql: str, *params):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def status_of(db: Path, rtype: str, rid: str) -> list[str]:
    return [s for (s,) in q(db, "SELECT status FROM resource WHERE resource_type = ? AND id = ? "
                                "ORDER BY _rid", rtype, rid)]


def bulk_deletion(*targets: str) -> dict:
    """One line of a Bulk Data deleted/ file as the spec writes it: a transaction Bundle
    without an id whose entries DELETE ``Type/id``."""
    return {"resourceType": "Bundle", "type": "transaction",
            "entry": [{"request": {"method": "DELETE", "url": t}} for t in targets]}


# -- 1. Bulk deleted/ files in the spec's format ------------------------------------------------

def test_a_spec_deleted_bundle_in_a_deleted_folder_removes_its_resources(tmp_path):
    db = tmp_path / "h.duckdb"
    load(db, [write_ndjson(tmp_path / "first" / "Patient.000.ndjson", [patient("p1"), patient("p2")])])
    write_ndjson(tmp_path / "export" / "Observation.000.ndjson", [hgb("o1")])
    write_ndjson(tmp_path / "export" / "deleted" / "del.ndjson",
                 [bulk_deletion("Patient/p2"), bulk_deletion("Observation/o1")])
    r = load(db, [tmp_path / "export"])
    assert (r.rejected, r.deletions, r.deletions_applied) == (0, 2, 2)
    assert status_of(db, "Patient", "p2") == ["deleted"]
    assert status_of(db, "Observation", "o1") == ["deleted"]
    assert status_of(db, "Patient", "p1") == ["current"]  # just outside: not named, kept
    assert q(db, "SELECT count(*) FROM observation") == [(0,)]


def test_a_spec_deleted_bundle_listed_in_a_manifest_is_applied(tmp_path):
    db = tmp_path / "h.duckdb"
    load(db, [write_ndjson(tmp_path / "old" / "Patient.000.ndjson", [patient("p1"), patient("p2")])])
    export = tmp_path / "export"
    write_ndjson(export / "Patient.000.ndjson", [patient("p3")])
    write_ndjson(export / "Bundle.000.ndjson", [bulk_deletion("Patient/p1")])  # not in deleted/
    write_json(export / "manifest.json", {
        "transactionTime": "2024-06-01T00:00:00Z", "request": "https://ehr/fhir/$export?_since=x",
        "requiresAccessToken": True,
        "output": [{"type": "Patient", "url": "https://ehr/files/Patient.000.ndjson"}],
        "deleted": [{"type": "Bundle", "url": "https://ehr/files/Bundle.000.ndjson"}],
        "error": []})
    r = load(db, [export / "manifest.json"])
    assert (r.rejected, r.deletions_applied) == (0, 1)
    assert status_of(db, "Patient", "p1") == ["deleted"]
    assert status_of(db, "Patient", "p2") == status_of(db, "Patient", "p3") == ["current"]


# -- 2. files whose records are not recognised ---------------------------------------------------

def test_a_json_array_of_resources_is_read_as_resources(tmp_path):
    f = write_json(tmp_path / "patients.json", [patient("p1"), patient("p2"), hgb("o1")])
    db = tmp_path / "h.duckdb"
    r = load(db, [f])
    assert (r.loaded, r.rejected, r.non_resource_files) == (3, 0, [])
    assert q(db, "SELECT id, entry FROM resource ORDER BY _rid") == [
        ("p1", "item[0]"), ("p2", "item[1]"), ("o1", "item[2]")]


def test_a_bundle_without_resource_type_is_a_load_error_not_a_skip(tmp_path):
    f = write_json(tmp_path / "bundle.json", {"type": "collection", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": patient("p1")}]})
    db = tmp_path / "h.duckdb"
    r = load(db, [f])
    assert (r.rejected, r.non_resource_files) == (1, [])
    assert q(db, "SELECT reason FROM load_error") == [("missing resourceType",)]


def test_ndjson_whose_lines_all_lack_resource_type_is_rejected_line_by_line(tmp_path):
    f = write_ndjson(tmp_path / "Patient.000.ndjson",
                     [{k: v for k, v in patient(f"p{i}").items() if k != "resourceType"}
                      for i in range(3)])
    db = tmp_path / "h.duckdb"
    r = load(db, [f])
    assert (r.rejected, r.non_resource_files) == (3, [])
    assert q(db, "SELECT line, reason FROM load_error ORDER BY line") == [
        (1, "missing resourceType"), (2, "missing resourceType"), (3, "missing resourceType")]


@pytest.mark.parametrize("name", ["cumulus-etl-simple-input/log.ndjson",
                                  "synthea-bulk-10-patients/log.ndjson"])
def test_a_real_export_log_is_the_one_file_skipped_and_it_is_listed(shared, tmp_path, name):
    log = EXTERNAL / name
    r = load(tmp_path / "h.duckdb", [log])
    assert r.rejected == 0 and [Path(p).name for p in r.non_resource_files] == ["log.ndjson"]


def test_a_json_file_with_no_fhir_record_is_skipped_and_listed(shared, tmp_path):
    """A SQL-on-FHIR test-case file holds resources only inside its own structure."""
    r = load(tmp_path / "h.duckdb", [EXTERNAL / "sql-on-fhir-v2-tests" / "fn_first.json"])
    assert r.rejected == 0 and [Path(p).name for p in r.non_resource_files] == ["fn_first.json"]


# -- 5. unreadable folders and files ---------------------------------------------------------------

def _unprivileged(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run ``argv`` so that file permissions apply: root ignores them unless it drops the
    capabilities that override them (CI runs as root)."""
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: permissions cannot be tested")
        caps = "-dac_override,-dac_read_search"
        argv = [setpriv, "--bounding-set", caps, "--inh-caps", caps, "--", *argv]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)


def _bmc() -> list[str]:
    return [sys.executable, "-m", "cohort.cli"]


@pytest.fixture
def locked(tmp_path):
    """Folders/files made unreadable by a test, readable again at teardown."""
    paths: list[Path] = []
    yield paths
    for p in paths:
        p.chmod(0o755)


def test_an_unreadable_subfolder_is_reported_and_the_rest_loads_with_exit_3(tmp_path, locked):
    write_ndjson(tmp_path / "export" / "Patient.000.ndjson", [patient("p1")])
    write_ndjson(tmp_path / "export" / "more" / "Patient.001.ndjson", [patient("p2")])
    (tmp_path / "export" / "more").chmod(0)
    locked.append(tmp_path / "export" / "more")
    p = _unprivileged([*_bmc(), "load", "export", "--db", "h.duckdb"], tmp_path)
    assert p.returncode == 3, p.stderr
    assert "Traceback" not in p.stderr
    assert "rejected: export/more: the folder cannot be read (Permission denied)" in p.stderr
    assert q(tmp_path / "h.duckdb", "SELECT id FROM resource") == [("p1",)]
    assert q(tmp_path / "h.duckdb", "SELECT file, reason FROM load_error") == [
        ("export/more", "the folder cannot be read (Permission denied)")]


def test_an_unreadable_json_file_is_reported_and_the_rest_loads(tmp_path, locked):
    write_ndjson(tmp_path / "export" / "Patient.000.ndjson", [patient("p1")])
    secret = write_json(tmp_path / "export" / "bundle.json", patient("p2"))
    secret.chmod(0)
    locked.append(secret)
    p = _unprivileged([*_bmc(), "load", "export", "--db", "h.duckdb"], tmp_path)
    assert p.returncode == 3, p.stderr
    assert "Traceback" not in p.stderr
    assert "rejected: export/bundle.json: the file cannot be read (permission denied)" in p.stderr


def test_an_unreadable_folder_given_alone_is_a_usage_error_naming_it(tmp_path, locked):
    write_ndjson(tmp_path / "export" / "Patient.000.ndjson", [patient("p1")])
    (tmp_path / "export").chmod(0)
    locked.append(tmp_path / "export")
    p = _unprivileged([*_bmc(), "load", "export", "--db", "h.duckdb"], tmp_path)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines() == [
        "error: export: the folder cannot be read (Permission denied)"]


# -- 7. content_hash does not depend on where a line sits ----------------------------------------

@pytest.mark.parametrize("position", ["first", "middle", "last"])
def test_the_same_resource_elsewhere_in_another_file_is_a_duplicate(tmp_path, position):
    others = [patient("p2"), patient("p3")]
    where = {"first": 0, "middle": 1, "last": 2}
    db = tmp_path / "h.duckdb"
    load(db, [write_ndjson(tmp_path / "a.ndjson", [patient("p1"), *others])])  # p1 first
    docs = list(others)
    docs.insert(where[position], patient("p1"))
    r = load(db, [write_ndjson(tmp_path / "b.ndjson", docs)])
    assert r.by_type["Patient"] == {"duplicate": 3}
    assert status_of(db, "Patient", "p1") == ["current", "duplicate"]


def test_a_changed_copy_in_another_file_is_a_new_version_not_a_duplicate(tmp_path):
    db = tmp_path / "h.duckdb"
    load(db, [write_ndjson(tmp_path / "a.ndjson", [patient("p1"), patient("p2")])])
    load(db, [write_ndjson(tmp_path / "b.ndjson", [patient("p2"), patient("p1", gender="male")])])
    assert status_of(db, "Patient", "p1") == ["superseded", "current"]


def test_identical_copies_within_one_load_are_duplicates_not_superseded(tmp_path):
    db = tmp_path / "h.duckdb"
    r = load(db, [write_ndjson(tmp_path / "a.ndjson", [patient("p1"), hgb("o1"), patient("p1")]),
                  write_ndjson(tmp_path / "b.ndjson", [patient("p1")])])
    assert r.by_type["Patient"] == {"current": 1, "duplicate": 2}
    assert q(db, "SELECT count(*) FROM patient") == [(1,)]


def test_a_line_followed_by_blank_lines_or_crlf_hashes_like_the_plain_line(tmp_path):
    db = tmp_path / "h.duckdb"
    load(db, [write_ndjson(tmp_path / "a.ndjson", [patient("p1"), "", "  ", patient("p2")])])
    r = load(db, [write_ndjson(tmp_path / "b.ndjson", [patient("p1"), patient("p2")], crlf=True)])
    assert r.by_type["Patient"] == {"duplicate": 2}


# -- 9. GET entries of batch/transaction Bundles ------------------------------------------------

def test_get_entries_of_a_batch_are_skipped_entries_not_rejections(tmp_path):
    f = write_json(tmp_path / "batch.json", {"resourceType": "Bundle", "id": "b1", "type": "batch",
                                             "entry": [
        {"request": {"method": "GET", "url": "Patient?identifier=urn:mrn|4471"}},
        {"request": {"method": "HEAD", "url": "Patient/p1"}},
        {"fullUrl": "urn:uuid:0b6d6c1e-8f0a-4a7e-b1d4-5e2f9c3a7b21", "resource": patient("p1"),
         "request": {"method": "PUT", "url": "Patient/p1"}}]})
    r = load(tmp_path / "h.duckdb", [f])
    assert (r.rejected, r.skipped_entries, r.loaded) == (0, 2, 2)  # the Bundle and p1


def test_a_post_entry_without_a_resource_is_still_rejected(tmp_path):
    f = write_json(tmp_path / "tx.json", {"resourceType": "Bundle", "id": "t1", "type": "transaction",
                                          "entry": [{"request": {"method": "POST", "url": "Patient"}}]})
    r = load(tmp_path / "h.duckdb", [f])
    assert (r.rejected, r.skipped_entries) == (1, 0)


# -- 10. whitespace-only lines --------------------------------------------------------------------

def test_a_whitespace_only_line_is_a_blank_line_without_an_empty_line_near_it(tmp_path):
    f = write_ndjson(tmp_path / "Patient.ndjson", [patient("p1"), " \t ", patient("p2")])
    db = tmp_path / "h.duckdb"
    r = load(db, [f])
    assert (r.loaded, r.rejected) == (2, 0)
    assert q(db, "SELECT lines, blank_lines FROM source_file") == [(3, 1)]
    assert q(db, "SELECT line FROM resource ORDER BY line") == [(1,), (3,)]


def test_a_long_whitespace_only_line_is_blank_too(tmp_path):
    f = write_ndjson(tmp_path / "Patient.ndjson", [patient("p1"), " " * 500, "", patient("p2")])
    r = load(tmp_path / "h.duckdb", [f])
    assert (r.loaded, r.rejected) == (2, 0)


# -- 11. bmc view evaluates resources without id --------------------------------------------------

def _sof(name: str) -> dict:
    return json.loads((EXTERNAL / "sql-on-fhir-v2-tests" / name).read_text())


def test_bmc_view_evaluates_the_fn_first_resources_that_have_no_id(shared, tmp_path):
    suite = _sof("fn_first.json")
    data = write_ndjson(tmp_path / "patients.ndjson", suite["resources"])
    assert all("id" not in r for r in suite["resources"])
    for case in suite["tests"]:
        view = write_json(tmp_path / "view.json", case["view"])
        p = subprocess.run([*_bmc(), "view", str(view), str(data), "--format", "json"],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout) == case["expect"], case["title"]


def test_bmc_view_shows_no_made_up_id_for_a_resource_without_one(tmp_path):
    from etl.adhoc import run_view

    data = write_ndjson(tmp_path / "p.ndjson", [
        {k: v for k, v in patient().items() if k != "id"}, patient("p2")])
    view = {"resourceType": "ViewDefinition", "resource": "Patient", "status": "active",
            "select": [{"column": [{"path": "id", "name": "id"}, {"path": "gender", "name": "g"}]}]}
    assert run_view(view, [data]) == (["id", "g"], [(None, "female"), ("p2", "female")])


def test_bmc_load_still_needs_ids_and_says_so_per_record(tmp_path):
    data = write_ndjson(tmp_path / "p.ndjson", [{k: v for k, v in patient().items() if k != "id"}])
    db = tmp_path / "h.duckdb"
    r = load(db, [data])
    assert r.rejected == 1 and q(db, "SELECT line, reason FROM load_error") == [(1, "resource without id")]


# -- never a traceback ----------------------------------------------------------------------------

def _deep_patient(levels: int, rid: str) -> str:
    node = '{"url":"http://example.org/x","valueString":"v"}'
    for _ in range(levels):
        node = '{"url":"http://example.org/x","extension":[' + node + "]}"
    return f'{{"resourceType":"Patient","id":"{rid}","extension":[{node}]}}'


def test_a_json_document_nested_300_levels_loads_like_the_same_ndjson_line(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "deep.json").write_text(_deep_patient(300, "deep1"))
    (tmp_path / "in" / "deep.ndjson").write_text(_deep_patient(300, "deep2") + "\n")
    db = tmp_path / "h.duckdb"
    r = load(db, [tmp_path / "in"])
    assert (r.loaded, r.rejected) == (2, 0)


def test_a_json_document_nested_too_deeply_to_parse_is_one_load_error(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "deep.json").write_text(_deep_patient(2000, "deep"))
    write_ndjson(tmp_path / "in" / "Patient.ndjson", [patient("p1")])
    db = tmp_path / "h.duckdb"
    r = load(db, [tmp_path / "in"])
    assert (r.loaded, r.rejected) == (1, 1)
    assert q(db, "SELECT reason FROM load_error") == [
        ("the document is nested too deeply to be read (over 1,000 levels of JSON)",)]


def test_dangling_and_looping_symlinks_are_skipped_and_the_folder_loads(tmp_path):
    folder = tmp_path / "export"
    write_ndjson(folder / "Patient.000.ndjson", [patient("p1")])
    os.symlink(tmp_path / "gone.ndjson", folder / "Observation.000.ndjson")
    os.symlink(folder / "Loop.ndjson", folder / "Loop.ndjson")
    r = load(tmp_path / "h.duckdb", [folder])
    assert (r.loaded, r.rejected) == (1, 0)
    assert [(Path(f).name, why) for f, why in r.skipped] == [
        ("Loop.ndjson", "a symlink loop"),
        ("Observation.000.ndjson", "a symlink to nothing (dangling)")]


def test_a_dangling_symlink_given_by_name_is_a_usage_error(tmp_path):
    os.symlink(tmp_path / "gone.ndjson", tmp_path / "Patient.ndjson")
    p = subprocess.run([*_bmc(), "load", "Patient.ndjson", "--db", "h.duckdb"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2
    assert p.stderr.strip() == "error: Patient.ndjson: a symlink to nothing (dangling)"


def test_a_fifo_named_ndjson_is_skipped_and_said_so(tmp_path):
    folder = tmp_path / "export"
    write_ndjson(folder / "Patient.000.ndjson", [patient("p1")])
    os.mkfifo(folder / "Observation.000.ndjson")
    p = subprocess.run([*_bmc(), "load", "export", "--db", "h.duckdb"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "skipped: export/Observation.000.ndjson: a FIFO (named pipe), not a regular file" in p.stderr
    assert q(tmp_path / "h.duckdb", "SELECT id FROM resource") == [("p1",)]


def test_a_file_cut_short_while_being_read_is_a_load_error_not_a_crash(tmp_path):
    """The progress callback truncates the file after the first chunk, as a copy that is
    still being written or a rotation would; run in a child so a SIGBUS cannot end the tests."""
    f = write_ndjson(tmp_path / "Patient.ndjson", [patient(f"p{i:05d}") for i in range(20000)])
    script = textwrap.dedent(f"""
        import os
        from etl.load import LoadOptions, load
        cut = []
        def progress(done, total, name):
            if not cut:
                cut.append(1)
                os.truncate({str(f)!r}, 4096)
        r = load({str(tmp_path / 'h.duckdb')!r}, [{str(f)!r}], LoadOptions(chunk_bytes=1 << 16),
                 progress)
        print(r.loaded, r.rejected)
        print(r.rejected_sample[-1])
    """)
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, (p.returncode, p.stderr[-2000:])
    loaded, rejected = map(int, p.stdout.splitlines()[0].split())
    assert loaded > 0 and rejected == 1
    assert "the file was cut short while being read: nothing readable after line" in p.stdout


@pytest.mark.parametrize(("codec", "what"), [
    ("utf-16", "UTF-16 (little-endian) text"),  # with a byte-order mark
    ("utf-16-be", "UTF-16 (big-endian) text"),  # without one
    ("utf-32", "UTF-32 (little-endian) text"),
])
def test_a_utf16_or_utf32_file_is_named_as_such_once(tmp_path, codec, what):
    text = "".join(json.dumps(patient(f"p{i}")) + "\n" for i in range(3))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "Patient.ndjson").write_bytes(text.encode(codec))
    (tmp_path / "in" / "one.json").write_bytes(json.dumps(patient("p9")).encode(codec))
    write_ndjson(tmp_path / "in" / "ok.ndjson", [patient("ok")])
    db = tmp_path / "h.duckdb"
    r = load(db, [tmp_path / "in"])
    assert (r.loaded, r.rejected) == (1, 2)
    assert q(db, "SELECT line, reason FROM load_error ORDER BY file") == [
        (None, f"the file is {what}; FHIR JSON must be UTF-8 (re-save it as UTF-8)")] * 2


def test_cr_only_line_endings_are_named_once_for_the_file(tmp_path):
    f = tmp_path / "Patient.ndjson"
    f.write_bytes(b"\r".join(json.dumps(patient(f"p{i}")).encode() for i in range(3)) + b"\r")
    db = tmp_path / "h.duckdb"
    r = load(db, [f])
    assert (r.loaded, r.rejected) == (0, 1)
    [(line, reason)] = q(db, "SELECT line, reason FROM load_error")
    assert line is None and reason.startswith("the file's lines end with a lone CR")


def test_a_single_line_ending_in_cr_is_still_read(tmp_path):
    """Just inside: one record ending with CR (no LF anywhere) is one CRLF-style line."""
    f = tmp_path / "Patient.ndjson"
    f.write_bytes(json.dumps(patient("p1")).encode() + b"\r")
    assert load(tmp_path / "h.duckdb", [f]).loaded == 1


def test_a_gzip_utf16_file_is_named_too(tmp_path):
    f = tmp_path / "Patient.ndjson.gz"
    f.write_bytes(gzip.compress((json.dumps(patient()) + "\n").encode("utf-16")))
    r = load(tmp_path / "h.duckdb", [f], LoadOptions())
    assert r.rejected == 1 and "UTF-16 (little-endian) text" in r.rejected_sample[0]
